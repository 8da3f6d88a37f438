// viem against a fresh infera dev node, through its high-level API
// (public and wallet clients, a local account, getContract, http and webSocket transports).
import fs from "node:fs";
import {
  BaseError,
  ContractFunctionRevertedError,
  FeeCapTooLowError,
  InsufficientFundsError,
  IntrinsicGasTooLowError,
  NonceTooLowError,
  TipAboveFeeCapError,
  createPublicClient,
  createWalletClient,
  decodeErrorResult,
  defineChain,
  encodeDeployData,
  getContract,
  http,
  keccak256,
  parseAbiItem,
  parseEventLogs,
  toHex,
  parseEther,
  recoverMessageAddress,
  recoverTypedDataAddress,
  webSocket,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  ADDR0, ADDR1, ADDR2, CHAIN_ID, GENESIS_BALANCE, HTTP, KEY0, KEY1, WS,
  assert, contracts, deferred, run, step, within,
} from "./lib.mjs";

const { abi, bytecode } = contracts.ClientCheck;

const infera = defineChain({
  id: CHAIN_ID,
  name: "infera dev",
  nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
  rpcUrls: { default: { http: [HTTP], webSocket: [WS] } },
});

/** The ContractFunctionRevertedError inside a viem error chain (or fails). */
function revertedError(err) {
  assert.ok(err instanceof BaseError, `not a viem error: ${err}`);
  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  assert.ok(reverted instanceof ContractFunctionRevertedError, `no ContractFunctionRevertedError in: ${err.message}`);
  return reverted;
}

run("viem", async () => {
  // a local chain: poll every 200 ms (viem's default, 4 s, is for public chains)
  const client = createPublicClient({ chain: infera, transport: http(HTTP), pollingInterval: 200 });
  const account = privateKeyToAccount(KEY0);
  const otherAccount = privateKeyToAccount(KEY1);
  const wallet = createWalletClient({ account, chain: infera, transport: http(HTTP), pollingInterval: 200 });
  const otherWallet = createWalletClient({ account: otherAccount, chain: infera, transport: http(HTTP) });

  await step("connect: chain id and web3_clientVersion", async () => {
    assert.equal(await client.getChainId(), CHAIN_ID);
    assert.equal(await wallet.getChainId(), CHAIN_ID);
    assert.match(await client.request({ method: "web3_clientVersion" }), /^infera\//);
    assert.equal(await client.getBlockNumber({ cacheTime: 0 }), 0n);
  });

  await step("balances and nonces at latest and pending", async () => {
    for (const blockTag of ["latest", "pending"]) {
      assert.equal(await client.getBalance({ address: ADDR0, blockTag }), GENESIS_BALANCE);
      assert.equal(await client.getTransactionCount({ address: ADDR0, blockTag }), 0);
    }
    const pending = await client.getBlock({ blockTag: "pending" });
    assert.ok(pending.baseFeePerGas > 0n);
  });

  await step("fee suggestions (EIP-1559 and legacy)", async () => {
    const fees = await client.estimateFeesPerGas();
    assert.ok(fees.maxFeePerGas > 0n && fees.maxPriorityFeePerGas >= 0n);
    assert.ok(fees.maxFeePerGas >= fees.maxPriorityFeePerGas);
    const legacy = await client.estimateFeesPerGas({ type: "legacy" });
    assert.ok(legacy.gasPrice > 0n);
    assert.ok((await client.getGasPrice()) > 0n);
    assert.ok((await client.estimateMaxPriorityFeePerGas()) >= 0n);
    const history = await client.getFeeHistory({ blockCount: 1, rewardPercentiles: [25, 75] });
    assert.equal(history.baseFeePerGas.length, 2);
  });

  await step("send an EIP-1559 transfer and wait for the receipt", async () => {
    const before = await client.getBalance({ address: ADDR2 });
    const hash = await wallet.sendTransaction({ to: ADDR2, value: parseEther("1.5") });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    assert.equal(receipt.type, "eip1559");
    assert.equal(receipt.gasUsed, 21000n);
    assert.equal(await client.getBalance({ address: ADDR2 }), before + parseEther("1.5"));
    assert.equal(await client.getTransactionCount({ address: ADDR0, blockTag: "pending" }), 1);
    const tx = await client.getTransaction({ hash });
    assert.equal(tx.from.toLowerCase(), ADDR0.toLowerCase());
    assert.equal(tx.chainId, CHAIN_ID);
    const spent = GENESIS_BALANCE - (await client.getBalance({ address: ADDR0 }));
    assert.equal(spent, parseEther("1.5") + receipt.gasUsed * receipt.effectiveGasPrice);
  });

  await step("send a legacy transfer with gasPrice", async () => {
    const gasPrice = await client.getGasPrice();
    const hash = await otherWallet.sendTransaction({ to: ADDR2, value: 1n, type: "legacy", gasPrice });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    assert.equal(receipt.type, "legacy");
  });

  await step("rejected transactions map to viem's node errors", async () => {
    const broke = createWalletClient({
      account: privateKeyToAccount("0x" + "11".repeat(32)), chain: infera, transport: http(HTTP),
    });
    const { baseFeePerGas } = await client.getBlock();
    const cases = [
      ["insufficient funds", InsufficientFundsError, () => broke.sendTransaction({ to: ADDR1, value: 1n, gas: 21000n })],
      ["nonce too low", NonceTooLowError, () => wallet.sendTransaction({ to: ADDR1, value: 1n, nonce: 0 })],
      ["intrinsic gas too low", IntrinsicGasTooLowError, () => wallet.sendTransaction({ to: ADDR1, value: 1n, gas: 20000n })],
      // the pool's check (gas given) and the estimate's (no gas: eth_estimateGas runs first)
      ["fee cap below base fee (pool)", FeeCapTooLowError,
        () => wallet.sendTransaction({ to: ADDR1, value: 1n, gas: 21000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n })],
      ["fee cap below base fee (estimate)", FeeCapTooLowError,
        () => client.estimateGas({ account, to: ADDR1, value: 1n, maxFeePerGas: baseFeePerGas - 1n, maxPriorityFeePerGas: 0n })],
    ];
    for (const [what, kind, send] of cases) {
      await assert.rejects(send(), (err) => {
        assert.ok(err instanceof BaseError, `${what}: ${err}`);
        assert.ok(err.walk((e) => e instanceof kind), `${what}: no ${kind.name} in: ${err.message}`);
        return true;
      });
    }
    // viem refuses a tip above the fee cap before sending; the node's answer to one
    // must still match the message viem maps to TipAboveFeeCapError
    const params = [{ from: ADDR0, to: ADDR1, maxFeePerGas: "0x3b9aca00", maxPriorityFeePerGas: "0x77359400" }];
    await assert.rejects(client.request({ method: "eth_estimateGas", params }), (err) => {
      assert.match(err.details, TipAboveFeeCapError.nodeMessage);
      return true;
    });
  });

  let address;
  await step("deploy a contract compiled from source (deployContract)", async () => {
    const hash = await wallet.deployContract({ abi, bytecode, args: [5n] });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    address = receipt.contractAddress;
    assert.ok(address, "no contractAddress in the receipt");
    assert.ok((await client.getCode({ address })).length > 2);
  });

  const contract = () => getContract({ address, abi, client: { public: client, wallet } });

  await step("read the contract", async () => {
    const c = contract();
    assert.equal(await c.read.value(), 5n);
    assert.equal((await c.read.owner()).toLowerCase(), ADDR0.toLowerCase());
    assert.equal(await c.read.checkSmall([4n]), 8n);
  });

  let storeReceipt;
  await step("write the contract (simulate, write, receipt)", async () => {
    const { request } = await client.simulateContract({
      account, address, abi, functionName: "store", args: [7n, "hello"],
    });
    const hash = await wallet.writeContract(request);
    storeReceipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(storeReceipt.status, "success");
    assert.equal(storeReceipt.logs.length, 1);
    assert.equal(await contract().read.value(), 7n);
    assert.equal(await contract().read.note(), "hello");
  });

  await step("estimate gas", async () => {
    const gas = await contract().estimateGas.store([8n, "estimate"], { account });
    assert.ok(gas > 21000n && gas < 200000n, `estimate ${gas}`);
    assert.equal(await client.estimateGas({ account, to: ADDR1, value: 1n }), 21000n);
    const hash = await contract().write.store([8n, "estimate"], { gas });
    assert.equal((await client.waitForTransactionReceipt({ hash })).status, "success");
  });

  await step("revert reason: require(…, reason) on a read", async () => {
    await assert.rejects(contract().read.checkSmall([11n]), (err) => {
      const reverted = revertedError(err);
      assert.equal(reverted.reason, "value too large");
      assert.equal(reverted.data?.errorName, "Error");
      return true;
    });
  });

  await step("revert reason: custom error on a write (simulate and gas estimation)", async () => {
    const check = (err) => {
      const reverted = revertedError(err);
      assert.equal(reverted.data?.errorName, "Unauthorized", err.message);
      assert.deepEqual(reverted.data.args.map(String), [ADDR1, "7"]);
      return true;
    };
    await assert.rejects(
      client.simulateContract({ account: otherAccount, address, abi, functionName: "ownerStore", args: [1n] }),
      check,
    );
    const asOther = getContract({ address, abi, client: { public: client, wallet: otherWallet } });
    await assert.rejects(asOther.write.ownerStore([1n]), check);
  });

  await step("a mined transaction that reverts: receipt status 'reverted'", async () => {
    const asOther = getContract({ address, abi, client: { public: client, wallet: otherWallet } });
    const hash = await asOther.write.ownerStore([1n], { gas: 100000n });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "reverted");
    assert.equal(await contract().read.value(), 8n);
  });

  const stored = parseAbiItem("event Stored(address indexed from, uint256 indexed value, string note)");
  await step("past events: eth_getLogs, getContractEvents", async () => {
    const logs = await client.getLogs({ address, event: stored, args: { from: ADDR0 }, fromBlock: 0n });
    assert.equal(logs.length, 2);
    assert.deepEqual([logs[0].args.value, logs[0].args.note], [7n, "hello"]);
    const events = await client.getContractEvents({
      address, abi, eventName: "Stored", args: { value: 8n }, fromBlock: "earliest", toBlock: "latest",
    });
    assert.equal(events.length, 1);
    assert.equal(events[0].args.note, "estimate");
    const byHash = await client.getLogs({ address, blockHash: storeReceipt.blockHash });
    assert.equal(byHash.length, 1);
    assert.equal(byHash[0].transactionHash, storeReceipt.transactionHash);
  });

  await step("filters: createContractEventFilter / createBlockFilter / getFilterChanges", async () => {
    const filter = await client.createContractEventFilter({ address, abi, eventName: "Stored" });
    const eventFilter = await client.createEventFilter({ address, event: stored, fromBlock: 0n });
    const blockFilter = await client.createBlockFilter();
    assert.deepEqual(await client.getFilterChanges({ filter }), []);
    const hash = await contract().write.store([9n, "filtered"]);
    const receipt = await client.waitForTransactionReceipt({ hash });
    const changes = await client.getFilterChanges({ filter });
    assert.equal(changes.length, 1);
    assert.equal(changes[0].eventName, "Stored");
    assert.equal(changes[0].args.note, "filtered");
    assert.deepEqual(await client.getFilterChanges({ filter }), []);
    assert.deepEqual(await client.getFilterChanges({ filter: blockFilter }), [receipt.blockHash]);
    const all = await client.getFilterLogs({ filter: eventFilter });
    assert.deepEqual(all.map((l) => l.args.value), [7n, 8n, 9n]);
    for (const f of [filter, eventFilter, blockFilter]) {
      assert.equal(await client.uninstallFilter({ filter: f }), true);
    }
  });

  await step("viem's own event watching over HTTP: watchContractEvent (filter polling)", async () => {
    const got = deferred();
    const unwatch = client.watchContractEvent({
      address, abi, eventName: "Stored", poll: true, pollingInterval: 200,
      onLogs: (logs) => got.resolve(logs),
      onError: (e) => got.resolve(e),
    });
    try {
      await new Promise((r) => setTimeout(r, 400)); // the filter gets installed on the first poll
      const hash = await contract().write.store([10n, "polled"]);
      const logs = await within(15000, "watchContractEvent over HTTP", got.promise);
      assert.ok(Array.isArray(logs), `watchContractEvent error: ${logs}`);
      assert.equal(logs[0].args.note, "polled");
      assert.equal(logs[0].transactionHash, hash);
    } finally {
      unwatch();
    }
  });

  await step("AI precompile through the Infera library: register a model, deploy DigitClassifier, classify", async () => {
    const registry = "0x00000000000000000000000000000000000a1001";
    const registryAbi = contracts.IModelRegistry.abi;
    const model = toHex(fs.readFileSync(new URL("../../kernels/models/digits/digits.infera", import.meta.url)));
    const { result: id, request } = await client.simulateContract({
      account, address: registry, abi: registryAbi, functionName: "register", args: [model],
    });
    assert.equal(id, keccak256(model));
    const registered = await client.waitForTransactionReceipt({ hash: await wallet.writeContract(request) });
    assert.equal(registered.status, "success");
    const [ev] = parseEventLogs({ abi: registryAbi, logs: registered.logs, eventName: "ModelRegistered" });
    assert.equal(ev.args.id, id);
    const info = await client.readContract({ address: registry, abi: registryAbi, functionName: "modelInfo", args: [id] });
    assert.equal(info.inputBytes, 64);

    const { abi: dcAbi, bytecode: dcCode } = contracts.DigitClassifier;
    const deployed = await client.waitForTransactionReceipt({
      hash: await wallet.deployContract({ abi: dcAbi, bytecode: dcCode, args: [id] }),
    });
    const dc = getContract({ address: deployed.contractAddress, abi: dcAbi, client: { public: client, wallet } });
    const image = toHex(Uint8Array.from({ length: 64 }, (_, i) => (i * 37) % 128));
    const label = await dc.read.predict([image]);
    assert.ok(label < 10n, `label ${label}`);
    const classified = await client.waitForTransactionReceipt({ hash: await dc.write.classify([image]) });
    assert.equal(classified.status, "success");
    const [c] = parseEventLogs({ abi: dcAbi, logs: classified.logs, eventName: "Classified" });
    assert.equal(c.args.label, label);
    assert.equal(await dc.read.labelOf([0n]), label);

    // the precompile's typed errors, bubbled up by the library, decoded by viem
    await assert.rejects(dc.read.predict([toHex(new Uint8Array(63))]), (err) => {
      const reverted = revertedError(err);
      assert.equal(reverted.data?.errorName, "InvalidInputLength", err.message);
      assert.deepEqual(reverted.data.args, [id, 64n, 63n]);
      return true;
    });
    const unknown = keccak256("0x01");
    const deployData = encodeDeployData({ abi: dcAbi, bytecode: dcCode, args: [unknown] });
    await assert.rejects(client.call({ account, data: deployData }), (err) => {
      const raw = err.walk((e) => typeof e.data === "string" && e.data.startsWith("0x"));
      assert.ok(raw, `no revert data in: ${err.message}`);
      const decoded = decodeErrorResult({ abi: dcAbi, data: raw.data });
      assert.equal(decoded.errorName, "UnknownModel");
      assert.deepEqual(decoded.args, [unknown]);
      return true;
    });
  });

  await step("WebSocket: watchBlocks (newHeads) and watchContractEvent (logs)", async () => {
    const ws = createPublicClient({ chain: infera, transport: webSocket(WS) });
    const block = deferred();
    const event = deferred();
    const unwatchBlocks = ws.watchBlocks({ onBlock: (b) => block.resolve(b), onError: (e) => block.resolve(e) });
    const unwatchEvents = ws.watchContractEvent({
      address, abi, eventName: "Stored",
      onLogs: (logs) => event.resolve(logs),
      onError: (e) => event.resolve(e),
    });
    try {
      assert.equal(await ws.getChainId(), CHAIN_ID);
      await new Promise((r) => setTimeout(r, 300)); // let the eth_subscribe calls land
      const hash = await contract().write.store([11n, "over ws"]);
      const receipt = await client.waitForTransactionReceipt({ hash });
      const b = await within(15000, "a newHeads block over WebSocket", block.promise);
      assert.ok(!(b instanceof Error), `watchBlocks error: ${b}`);
      assert.equal(b.number, receipt.blockNumber);
      assert.equal(b.hash, receipt.blockHash);
      assert.ok(b.baseFeePerGas > 0n);
      const logs = await within(15000, "a Stored log over WebSocket", event.promise);
      assert.ok(Array.isArray(logs), `watchContractEvent error: ${logs}`);
      assert.deepEqual([logs[0].args.from, logs[0].args.value, logs[0].args.note], [ADDR0, 11n, "over ws"]);
      assert.equal(logs[0].transactionHash, hash);
    } finally {
      unwatchBlocks();
      unwatchEvents();
      await ws.transport.getRpcClient().then((c) => c.close());
    }
  });

  await step("unlocked dev accounts: a JSON-RPC account sends, deploys and signs", async () => {
    // No local key: viem asks the node to sign (eth_sendTransaction, personal_sign...).
    const rpcWallet = createWalletClient({ chain: infera, transport: http(HTTP), pollingInterval: 200 });
    const addresses = await rpcWallet.getAddresses();
    assert.equal(addresses.length, 10);
    assert.equal(addresses[0], ADDR0);
    const from = addresses[6];
    const to = privateKeyToAccount("0x" + "42".repeat(32)).address;
    const hash = await rpcWallet.sendTransaction({ account: from, to, value: parseEther("0.5") });
    const receipt = await client.waitForTransactionReceipt({ hash });
    assert.equal(receipt.status, "success");
    assert.equal(receipt.from.toLowerCase(), from.toLowerCase());
    assert.equal(await client.getBalance({ address: to }), parseEther("0.5"));
    const deployHash = await rpcWallet.deployContract({ account: from, abi, bytecode, args: [4n] });
    const deployed = await client.waitForTransactionReceipt({ hash: deployHash });
    assert.equal(deployed.status, "success");
    const owner = await client.readContract({ address: deployed.contractAddress, abi, functionName: "owner" });
    assert.equal(owner, from);
    const signature = await rpcWallet.signMessage({ account: from, message: "hello infera" });
    assert.equal(await recoverMessageAddress({ message: "hello infera", signature }), from);
    const typedData = {
      domain: { name: "infera", version: "1", chainId: CHAIN_ID },
      types: { Greeting: [{ name: "text", type: "string" }, { name: "to", type: "address" }] },
      primaryType: "Greeting",
      message: { text: "gm", to },
    };
    const typed = await rpcWallet.signTypedData({ account: from, ...typedData });
    assert.equal(await recoverTypedDataAddress({ ...typedData, signature: typed }), from);
  });
});
