// ethers v6 against a fresh infera dev node, through its high-level API
// (JsonRpcProvider, Wallet, ContractFactory, Contract, WebSocketProvider).
import {
  Contract,
  ContractFactory,
  JsonRpcProvider,
  Wallet,
  WebSocketProvider,
  hexlify,
  isCallException,
  keccak256,
  parseEther,
  verifyMessage,
  verifyTypedData,
} from "ethers";
import fs from "node:fs";
import {
  ADDR0, ADDR1, ADDR2, CHAIN_ID, GENESIS_BALANCE, HTTP, KEY0, KEY1, WS,
  assert, contracts, deferred, run, step, within,
} from "./lib.mjs";

const { abi, bytecode } = contracts.ClientCheck;

run("ethers v6", async () => {
  // ethers v6 answers an identical request from a 250 ms cache, so on a chain that seals
  // a block per transaction (like Hardhat/Anvil automine) back-to-back sends would reuse
  // a stale "pending" nonce: a client-side behaviour, turned off as ethers documents.
  const provider = new JsonRpcProvider(HTTP, undefined, { cacheTimeout: -1 });
  const wallet = new Wallet(KEY0, provider);
  const other = new Wallet(KEY1, provider);

  await step("connect: chain id and web3_clientVersion", async () => {
    const net = await provider.getNetwork();
    assert.equal(net.chainId, BigInt(CHAIN_ID));
    const version = await provider.send("web3_clientVersion", []);
    assert.match(version, /^infera\//);
    assert.equal(await provider.getBlockNumber(), 0);
  });

  await step("balances and nonces at latest and pending", async () => {
    assert.equal(await provider.getBalance(ADDR0, "latest"), GENESIS_BALANCE);
    assert.equal(await provider.getBalance(ADDR0, "pending"), GENESIS_BALANCE);
    assert.equal(await provider.getTransactionCount(ADDR0, "latest"), 0);
    assert.equal(await provider.getTransactionCount(ADDR0, "pending"), 0);
    assert.equal(await wallet.getNonce(), 0);
    const latest = await provider.getBlock("latest");
    assert.equal(latest.number, 0);
    const pending = await provider.getBlock("pending");
    assert.ok(pending, "getBlock('pending') returned null");
  });

  await step("fee suggestions (EIP-1559 and legacy)", async () => {
    const fees = await provider.getFeeData();
    assert.ok(fees.gasPrice > 0n, `gasPrice ${fees.gasPrice}`);
    assert.ok(fees.maxFeePerGas > 0n, `maxFeePerGas ${fees.maxFeePerGas}`);
    assert.ok(fees.maxPriorityFeePerGas !== null, "maxPriorityFeePerGas");
    assert.ok(fees.maxFeePerGas >= fees.maxPriorityFeePerGas);
    const block = await provider.getBlock("latest");
    assert.ok(block.baseFeePerGas > 0n);
    assert.ok(fees.maxFeePerGas >= block.baseFeePerGas);
  });

  await step("send an EIP-1559 transfer and wait for the receipt", async () => {
    const before = await provider.getBalance(ADDR2);
    const tx = await wallet.sendTransaction({ to: ADDR2, value: parseEther("1.5") });
    assert.equal(tx.type, 2);
    const receipt = await tx.wait();
    assert.equal(receipt.status, 1);
    assert.equal(receipt.hash, tx.hash);
    assert.equal(receipt.gasUsed, 21000n);
    assert.equal(await provider.getBalance(ADDR2, receipt.blockNumber), before + parseEther("1.5"));
    assert.equal(await provider.getBalance(ADDR2, receipt.blockNumber - 1), before);
    assert.equal(await provider.getTransactionCount(ADDR0, "latest"), 1);
    assert.equal(await provider.getTransactionCount(ADDR0, "pending"), 1);
    const fetched = await provider.getTransaction(tx.hash);
    assert.equal(fetched.from, ADDR0);
    assert.equal(fetched.blockNumber, receipt.blockNumber);
    // the sender paid value + gas: the effective gas price is what the receipt says
    const spent = GENESIS_BALANCE - (await provider.getBalance(ADDR0, receipt.blockNumber));
    assert.equal(spent, parseEther("1.5") + receipt.gasUsed * receipt.gasPrice);
  });

  await step("send a legacy (type 0) transfer with gasPrice", async () => {
    const { gasPrice } = await provider.getFeeData();
    const tx = await other.sendTransaction({ to: ADDR2, value: 1n, gasPrice, type: 0 });
    assert.equal(tx.type, 0);
    const receipt = await tx.wait();
    assert.equal(receipt.status, 1);
    assert.equal(receipt.type, 0);
  });

  await step("rejected transactions map to ethers error codes", async () => {
    const broke = Wallet.createRandom(provider);
    await assert.rejects(broke.sendTransaction({ to: ADDR1, value: 1n, gasLimit: 21000n }), (err) => {
      assert.equal(err.code, "INSUFFICIENT_FUNDS", err.message);
      return true;
    });
    await assert.rejects(wallet.sendTransaction({ to: ADDR1, value: 1n, nonce: 0 }), (err) => {
      assert.equal(err.code, "NONCE_EXPIRED", err.message);
      return true;
    });
  });

  let contract;
  await step("deploy a contract compiled from source (ContractFactory)", async () => {
    const factory = new ContractFactory(abi, bytecode, wallet);
    contract = await factory.deploy(5n);
    await contract.waitForDeployment();
    const address = await contract.getAddress();
    assert.notEqual(await provider.getCode(address), "0x");
    const receipt = await contract.deploymentTransaction().wait();
    assert.equal(receipt.contractAddress, address);
  });

  await step("read the contract", async () => {
    assert.equal(await contract.value(), 5n);
    assert.equal(await contract.owner(), ADDR0);
    assert.equal(await contract.checkSmall(4n), 8n);
  });

  let storeReceipt;
  await step("write the contract and read the event from the receipt", async () => {
    const tx = await contract.store(7n, "hello");
    storeReceipt = await tx.wait();
    assert.equal(storeReceipt.status, 1);
    assert.equal(await contract.value(), 7n);
    assert.equal(await contract.note(), "hello");
    const [ev] = storeReceipt.logs;
    assert.equal(ev.eventName, "Stored");
    assert.deepEqual([...ev.args], [ADDR0, 7n, "hello"]);
  });

  await step("estimate gas", async () => {
    const gas = await contract.store.estimateGas(8n, "estimate");
    assert.ok(gas > 21000n && gas < 200000n, `estimate ${gas}`);
    const transfer = await provider.estimateGas({ from: ADDR0, to: ADDR1, value: 1n });
    assert.equal(transfer, 21000n);
    // the estimate is enough: a transaction with exactly that limit succeeds
    const tx = await contract.store(8n, "estimate", { gasLimit: gas });
    assert.equal((await tx.wait()).status, 1);
  });

  await step("revert reason: require(…, reason) on a call", async () => {
    await assert.rejects(contract.checkSmall(11n), (err) => {
      assert.ok(isCallException(err), `not a CALL_EXCEPTION: ${err.code} ${err.message}`);
      assert.equal(err.reason, "value too large");
      assert.equal(err.revert?.name, "Error");
      return true;
    });
  });

  await step("revert reason: custom error on a write (gas estimation)", async () => {
    const asOther = contract.connect(other);
    // ethers decodes custom errors of a write only in err.data (its provider has no ABI)
    await assert.rejects(asOther.ownerStore(1n), (err) => {
      assert.ok(isCallException(err), `not a CALL_EXCEPTION: ${err.code} ${err.message}`);
      const decoded = contract.interface.parseError(err.data);
      assert.equal(decoded?.name, "Unauthorized", `data ${err.data}`);
      assert.deepEqual([...decoded.args], [ADDR1, 7n]);
      return true;
    });
    await assert.rejects(asOther.ownerStore.staticCall(1n), (err) => {
      assert.ok(isCallException(err));
      assert.equal(err.revert?.name, "Unauthorized");
      assert.deepEqual([...err.revert.args], [ADDR1, 7n]);
      return true;
    });
  });

  await step("a mined transaction that reverts: status 0 and CALL_EXCEPTION from wait()", async () => {
    const asOther = contract.connect(other);
    const tx = await asOther.ownerStore(1n, { gasLimit: 100000n });
    await assert.rejects(tx.wait(), (err) => {
      assert.ok(isCallException(err), `not a CALL_EXCEPTION: ${err.code} ${err.message}`);
      assert.equal(err.receipt?.status, 0);
      return true;
    });
    assert.equal(await contract.value(), 8n);
  });

  await step("past events: eth_getLogs and Contract.queryFilter", async () => {
    const address = await contract.getAddress();
    const logs = await provider.getLogs({ address, fromBlock: 0, toBlock: "latest" });
    assert.equal(logs.length, 2); // store(7), store(8)
    const events = await contract.queryFilter(contract.filters.Stored(ADDR0, 7n), 0, "latest");
    assert.equal(events.length, 1);
    assert.equal(events[0].args.note, "hello");
    assert.equal(events[0].transactionHash, storeReceipt.hash);
    const byHash = await provider.getLogs({ address, blockHash: storeReceipt.blockHash });
    assert.equal(byHash.length, 1);
  });

  await step("filters: eth_newFilter / eth_getFilterChanges", async () => {
    const address = await contract.getAddress();
    const topic = contract.interface.getEvent("Stored").topicHash;
    const id = await provider.send("eth_newFilter", [{ address, topics: [topic] }]);
    const history = await provider.send("eth_newFilter", [{ address, topics: [topic], fromBlock: "0x0" }]);
    const blockFilter = await provider.send("eth_newBlockFilter", []);
    assert.deepEqual(await provider.send("eth_getFilterChanges", [id]), []);
    const rc = await (await contract.store(9n, "filtered")).wait();
    const changes = await provider.send("eth_getFilterChanges", [id]);
    assert.equal(changes.length, 1);
    assert.equal(changes[0].transactionHash, rc.hash);
    assert.deepEqual(await provider.send("eth_getFilterChanges", [id]), []);
    const blocks = await provider.send("eth_getFilterChanges", [blockFilter]);
    assert.deepEqual(blocks, [rc.blockHash]);
    assert.equal((await provider.send("eth_getFilterLogs", [id])).length, 1); // fromBlock latest
    assert.equal((await provider.send("eth_getFilterLogs", [history])).length, 3);
    for (const f of [id, history, blockFilter]) {
      assert.equal(await provider.send("eth_uninstallFilter", [f]), true);
    }
    assert.equal(await provider.send("eth_uninstallFilter", [id]), false);
  });

  await step("ethers' own event filter over HTTP: contract.on (filter polling)", async () => {
    const got = deferred();
    provider.pollingInterval = 200;
    await contract.on("Stored", (from, value, note, payload) => {
      got.resolve({ from, value, note, payload });
    });
    const rc = await (await contract.store(10n, "polled")).wait();
    const ev = await within(15000, "contract.on('Stored') over HTTP", got.promise);
    assert.equal(ev.value, 10n);
    assert.equal(ev.note, "polled");
    assert.equal(ev.payload.log.transactionHash, rc.hash);
    await contract.removeAllListeners();
  });

  await step("WebSocket: newHeads (provider.on('block')) and logs (contract.on)", async () => {
    const ws = new WebSocketProvider(WS);
    try {
      assert.equal((await ws.getNetwork()).chainId, BigInt(CHAIN_ID));
      const wsContract = new Contract(await contract.getAddress(), abi, ws);
      const block = deferred();
      const event = deferred();
      await ws.on("block", (n) => block.resolve(n));
      await wsContract.on("Stored", (from, value, note) => event.resolve({ from, value, note }));
      // let the eth_subscribe calls land before sending
      await new Promise((r) => setTimeout(r, 300));
      const rc = await (await contract.store(11n, "over ws")).wait();
      const n = await within(15000, "a newHeads block over WebSocket", block.promise);
      assert.ok(n >= rc.blockNumber - 1, `block ${n}`);
      const ev = await within(15000, "a Stored log over WebSocket", event.promise);
      assert.deepEqual([ev.from, ev.value, ev.note], [ADDR0, 11n, "over ws"]);
      assert.equal(await ws.getBalance(ADDR0, "pending"), await provider.getBalance(ADDR0, "latest"));
    } finally {
      await ws.destroy();
    }
  });

  await step("unlocked dev accounts: provider.getSigner() sends, deploys and signs", async () => {
    const accounts = await provider.listAccounts();
    assert.equal(accounts.length, 10);
    assert.equal(accounts[0].address, ADDR0);
    const signer = await provider.getSigner(5);
    const from = await signer.getAddress();
    const to = Wallet.createRandom().address;
    // eth_sendTransaction with no nonce and no fees: the node fills them.
    const tx = await signer.sendTransaction({ to, value: parseEther("0.25") });
    const receipt = await tx.wait();
    assert.equal(receipt.status, 1);
    assert.equal(receipt.from, from);
    assert.equal(await provider.getBalance(to), parseEther("0.25"));
    // A contract deployed and written through the node's signer.
    const deployed = await new ContractFactory(abi, bytecode, signer).deploy(3n);
    await deployed.waitForDeployment();
    assert.equal(await deployed.owner(), from);
    await (await deployed.store(9n, "unlocked")).wait();
    assert.equal(await deployed.value(), 9n);
    // personal_sign and eth_signTypedData_v4 recover to the account.
    const signature = await signer.signMessage("hello infera");
    assert.equal(verifyMessage("hello infera", signature), from);
    const domain = { name: "infera", version: "1", chainId: CHAIN_ID };
    const types = { Greeting: [{ name: "text", type: "string" }, { name: "to", type: "address" }] };
    const value = { text: "gm", to };
    const typed = await signer.signTypedData(domain, types, value);
    assert.equal(verifyTypedData(domain, types, value, typed), from);
  });

  await step("AI precompile through the Infera library: register the digits model, DigitClassifier, typed errors", async () => {
    const registry = new Contract(
      "0x00000000000000000000000000000000000a1001", contracts.IModelRegistry.abi, wallet,
    );
    const model = hexlify(fs.readFileSync(new URL("../../kernels/models/digits/digits.infera", import.meta.url)));
    const id = await registry.register.staticCall(model);
    assert.equal(id, keccak256(model));
    const registered = await (await registry.register(model)).wait();
    assert.equal(registered.status, 1);
    const ev = registered.logs.map((l) => registry.interface.parseLog(l)).find((e) => e?.name === "ModelRegistered");
    assert.equal(ev.args.id, id);
    assert.equal((await registry.modelInfo(id)).inputBytes, 64n);

    const { abi: dcAbi, bytecode: dcCode } = contracts.DigitClassifier;
    const dc = await new ContractFactory(dcAbi, dcCode, wallet).deploy(id);
    await dc.waitForDeployment();
    const image = hexlify(Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 128));
    const label = await dc.predict(image);
    assert.ok(label < 10n, `label ${label}`);
    const receipt = await (await dc.classify(image)).wait();
    const classified = receipt.logs.map((l) => dc.interface.parseLog(l)).find((e) => e?.name === "Classified");
    assert.equal(classified.args.label, label);
    // The precompile's custom error, bubbled up by the library, decoded by ethers on a call.
    await assert.rejects(dc.predict(hexlify(new Uint8Array(63))), (err) => {
      assert.ok(isCallException(err), err.message);
      assert.equal(err.revert?.name, "InvalidInputLength", err.message);
      assert.deepEqual([...err.revert.args], [id, 64n, 63n]);
      return true;
    });
  });

  provider.destroy();
});
