"""web3.py against a fresh infera dev node, through its high-level API
(Web3 + HTTPProvider, a local account with the signing middleware, contract
objects and their event API, AsyncWeb3 + WebSocketProvider subscriptions).

Run through tests/clients/run.sh, which sets INFERA_HTTP, INFERA_WS and INFERA_CONTRACTS.
"""

import asyncio
import json
import os
import sys
import time
import traceback

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.providers.persistent import WebSocketProvider
from web3.utils.subscriptions import LogsSubscription, NewHeadsSubscription

HTTP = os.environ["INFERA_HTTP"]
WS = os.environ["INFERA_WS"]
CHAIN_ID = 6174
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
ADDR2 = Web3.to_checksum_address("0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC")
GENESIS_BALANCE = 10_000 * 10**18

with open(os.environ["INFERA_CONTRACTS"]) as f:
    CONTRACTS = json.load(f)
ARTIFACT = CONTRACTS["ClientCheck"]
REGISTRY = Web3.to_checksum_address("0x00000000000000000000000000000000000a1001")
DIGITS_MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "kernels", "models", "digits", "digits.infera")

current = "(setup)"


def step(name):
    """Decorator: runs the function now as one named check."""

    def run(fn):
        global current
        current = name
        start = time.monotonic()
        fn()
        print(f"  ok  {name} ({(time.monotonic() - start) * 1000:.0f} ms)", flush=True)
        return fn

    return run


def expect_raises(exc_type, fn):
    """Calls fn, which must raise exc_type; returns the exception."""
    try:
        fn()
    except exc_type as e:  # noqa: PERF203
        return e
    raise AssertionError(f"expected {exc_type.__name__}, nothing was raised")


def main():
    w3 = Web3(Web3.HTTPProvider(HTTP, request_kwargs={"timeout": 30}))
    acct = Account.from_key(KEY0)
    other = Account.from_key(KEY1)
    # sign locally and send raw, for both accounts
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build([acct, other]), layer=0)
    w3.eth.default_account = acct.address

    @step("connect: chain id and web3_clientVersion")
    def _():
        assert w3.is_connected()
        assert w3.eth.chain_id == CHAIN_ID, w3.eth.chain_id
        assert w3.client_version.startswith("infera/"), w3.client_version
        assert w3.net.version == str(CHAIN_ID), w3.net.version
        assert w3.eth.block_number == 0

    @step("balances and nonces at latest and pending")
    def _():
        for tag in ("latest", "pending"):
            assert w3.eth.get_balance(acct.address, tag) == GENESIS_BALANCE
            assert w3.eth.get_transaction_count(acct.address, tag) == 0
        latest = w3.eth.get_block("latest")
        assert latest["number"] == 0 and latest["baseFeePerGas"] > 0
        pending = w3.eth.get_block("pending")
        assert pending["baseFeePerGas"] > 0

    @step("fee suggestions (EIP-1559 and legacy)")
    def _():
        assert w3.eth.gas_price > 0
        assert w3.eth.max_priority_fee >= 0
        history = w3.eth.fee_history(1, "latest", [25, 75])
        assert len(history["baseFeePerGas"]) == 2, history
        assert len(history["reward"]) == 1 and len(history["reward"][0]) == 2, history
        # what build_transaction fills in by default: EIP-1559 fields
        tx = w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"]).constructor(
            1
        ).build_transaction({"from": acct.address})
        assert tx["maxFeePerGas"] >= tx["maxPriorityFeePerGas"] >= 0, tx
        assert tx["chainId"] == CHAIN_ID and tx["gas"] > 21000, tx

    state = {}

    @step("send an EIP-1559 transfer and wait for the receipt")
    def _():
        before = w3.eth.get_balance(ADDR2)
        tx_hash = w3.eth.send_transaction({"to": ADDR2, "value": w3.to_wei(1.5, "ether")})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1 and receipt["gasUsed"] == 21000, receipt
        assert receipt["type"] == 2, receipt
        assert w3.eth.get_balance(ADDR2) == before + w3.to_wei(1.5, "ether")
        assert w3.eth.get_transaction_count(acct.address, "pending") == 1
        tx = w3.eth.get_transaction(tx_hash)
        assert tx["from"] == acct.address and tx["blockNumber"] == receipt["blockNumber"], tx
        spent = GENESIS_BALANCE - w3.eth.get_balance(acct.address)
        assert spent == w3.to_wei(1.5, "ether") + receipt["gasUsed"] * receipt["effectiveGasPrice"]
        block = w3.eth.get_block(receipt["blockNumber"], full_transactions=True)
        assert block["transactions"][0]["hash"] == tx_hash, block

    @step("send a legacy transfer with gasPrice (manually signed)")
    def _():
        # Signed by hand with eth_account, as a wallet that holds its own key
        # does, rather than by the sign-and-send middleware the EIP-1559
        # transfer above goes through: both raw-transaction paths are covered.
        tx = {
            "to": ADDR2,
            "value": 1,
            "gas": 21000,
            "gasPrice": w3.eth.gas_price,
            "nonce": w3.eth.get_transaction_count(other.address, "pending"),
            "chainId": CHAIN_ID,
        }
        signed = other.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1 and receipt["type"] == 0, receipt

    @step("rejected transactions raise Web3RPCError with the node's reason")
    def _():
        broke = Account.create()
        tx = {"to": ADDR2, "value": 1, "gas": 21000, "gasPrice": w3.eth.gas_price, "nonce": 0, "chainId": CHAIN_ID}
        e = expect_raises(Web3RPCError, lambda: w3.eth.send_raw_transaction(broke.sign_transaction(tx).raw_transaction))
        assert "insufficient funds" in str(e), repr(e)
        e = expect_raises(Web3RPCError, lambda: w3.eth.send_raw_transaction(other.sign_transaction(tx).raw_transaction))
        assert "nonce too low" in str(e), repr(e)

    @step("deploy a contract compiled from source (contract constructor)")
    def _():
        factory = w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"])
        tx_hash = factory.constructor(5).transact()
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1 and receipt["contractAddress"], receipt
        state["contract"] = w3.eth.contract(address=receipt["contractAddress"], abi=ARTIFACT["abi"])
        assert len(w3.eth.get_code(receipt["contractAddress"])) > 0

    c = None

    @step("read the contract")
    def _():
        nonlocal c
        c = state["contract"]
        assert c.functions.value().call() == 5
        assert c.functions.owner().call() == acct.address
        assert c.functions.checkSmall(4).call() == 8
        assert c.functions.value().call(block_identifier="pending") == 5

    @step("write the contract and decode the event from the receipt")
    def _():
        tx_hash = c.functions.store(7, "hello").transact()
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1
        (event,) = c.events.Stored().process_receipt(receipt)
        assert event["args"]["from"] == acct.address
        assert (event["args"]["value"], event["args"]["note"]) == (7, "hello"), event
        assert c.functions.value().call() == 7 and c.functions.note().call() == "hello"
        state["store_receipt"] = receipt

    @step("estimate gas")
    def _():
        gas = c.functions.store(8, "estimate").estimate_gas()
        assert 21000 < gas < 200000, gas
        assert w3.eth.estimate_gas({"from": acct.address, "to": ADDR2, "value": 1}) == 21000
        tx_hash = c.functions.store(8, "estimate").transact({"gas": gas})
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)["status"] == 1

    @step("revert reason: require(…, reason) raises ContractLogicError")
    def _():
        e = expect_raises(ContractLogicError, lambda: c.functions.checkSmall(11).call())
        assert "value too large" in str(e.message), repr(e)
        assert not isinstance(e, ContractCustomError)
        # the same on gas estimation of a write
        e = expect_raises(ContractLogicError, lambda: c.functions.checkSmall(11).estimate_gas())
        assert "value too large" in str(e.message), repr(e)

    @step("revert reason: custom error raises ContractCustomError with the error data")
    def _():
        selector = Web3.keccak(text="Unauthorized(address,uint256)")[:4]

        def check(e):
            data = bytes.fromhex(str(e.data).removeprefix("0x"))
            assert data[:4] == selector, repr(e)
            caller, code = w3.codec.decode(["address", "uint256"], data[4:])
            assert (Web3.to_checksum_address(caller), code) == (other.address, 7), (caller, code)

        check(expect_raises(ContractCustomError, lambda: c.functions.ownerStore(1).call({"from": other.address})))
        check(
            expect_raises(
                ContractCustomError, lambda: c.functions.ownerStore(1).transact({"from": other.address})
            )
        )

    @step("a mined transaction that reverts: receipt status 0")
    def _():
        tx_hash = c.functions.ownerStore(1).transact({"from": other.address, "gas": 100000})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 0, receipt
        assert c.functions.value().call() == 8

    @step("past events: eth_getLogs and contract.events.Stored.get_logs")
    def _():
        logs = w3.eth.get_logs({"address": c.address, "fromBlock": 0, "toBlock": "latest"})
        assert len(logs) == 2, logs
        events = c.events.Stored.get_logs(from_block=0, argument_filters={"value": 7})
        assert len(events) == 1 and events[0]["args"]["note"] == "hello", events
        receipt = state["store_receipt"]
        assert events[0]["transactionHash"] == receipt["transactionHash"]
        by_hash = w3.eth.get_logs({"address": c.address, "blockHash": receipt["blockHash"]})
        assert len(by_hash) == 1, by_hash

    @step("filters: contract event filter, block filter, eth_getFilterChanges")
    def _():
        event_filter = c.events.Stored.create_filter(from_block="latest")
        history = c.events.Stored.create_filter(from_block=0)
        block_filter = w3.eth.filter("latest")
        raw_filter = w3.eth.filter({"address": c.address})
        assert event_filter.get_new_entries() == []
        assert block_filter.get_new_entries() == []
        tx_hash = c.functions.store(9, "filtered").transact()
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        new = event_filter.get_new_entries()
        assert len(new) == 1 and new[0]["args"]["note"] == "filtered", new
        assert new[0]["transactionHash"] == tx_hash
        assert event_filter.get_new_entries() == []
        assert block_filter.get_new_entries() == [receipt["blockHash"]]
        raw = w3.eth.get_filter_changes(raw_filter.filter_id)
        assert len(raw) == 1 and raw[0]["transactionHash"] == tx_hash, raw
        assert [e["args"]["value"] for e in history.get_all_entries()] == [7, 8, 9]
        for f in (event_filter, history, block_filter, raw_filter):
            assert w3.eth.uninstall_filter(f.filter_id) is True

    @step("WebSocket: newHeads and logs subscriptions (AsyncWeb3 + WebSocketProvider)")
    def _():
        asyncio.run(websocket_checks(w3, c))

    @step("unlocked dev accounts: w3.eth.accounts[7] sends and deploys with transact(), signs")
    def _():
        # No middleware, no key: the node signs (eth_sendTransaction, eth_sign...).
        node_w3 = Web3(Web3.HTTPProvider(HTTP, request_kwargs={"timeout": 30}))
        accounts = node_w3.eth.accounts
        assert len(accounts) == 10 and accounts[0] == acct.address, accounts
        sender = accounts[7]
        to = Account.create().address
        tx_hash = node_w3.eth.send_transaction({"from": sender, "to": to, "value": 10**17})
        receipt = node_w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1 and receipt["from"] == sender, receipt
        assert node_w3.eth.get_balance(to) == 10**17
        factory = node_w3.eth.contract(abi=ARTIFACT["abi"], bytecode=ARTIFACT["bytecode"])
        tx_hash = factory.constructor(6).transact({"from": sender})
        receipt = node_w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1, receipt
        deployed = node_w3.eth.contract(address=receipt["contractAddress"], abi=ARTIFACT["abi"])
        tx_hash = deployed.functions.store(12, "unlocked").transact({"from": sender})
        assert node_w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)["status"] == 1
        assert deployed.functions.owner().call() == sender
        assert deployed.functions.value().call() == 12
        signature = node_w3.eth.sign(sender, text="hello infera")
        assert Account.recover_message(encode_defunct(text="hello infera"), signature=signature) == sender
        typed = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                ],
                "Greeting": [{"name": "text", "type": "string"}, {"name": "to", "type": "address"}],
            },
            "primaryType": "Greeting",
            "domain": {"name": "infera", "version": "1", "chainId": CHAIN_ID},
            "message": {"text": "gm", "to": to},
        }
        signature = node_w3.eth.sign_typed_data(sender, typed)
        assert Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == sender

    @step("AI precompile through the Infera library: register the digits model, DigitClassifier, typed errors")
    def _():
        registry = w3.eth.contract(address=REGISTRY, abi=CONTRACTS["IModelRegistry"]["abi"])
        with open(DIGITS_MODEL, "rb") as f:
            model = f.read()
        model_id = registry.functions.register(model).call()
        assert model_id == Web3.keccak(model), model_id.hex()
        receipt = w3.eth.wait_for_transaction_receipt(registry.functions.register(model).transact(), timeout=30)
        assert receipt["status"] == 1, receipt
        registered = registry.events.ModelRegistered().process_receipt(receipt)
        assert len(registered) == 1 and registered[0]["args"]["id"] == model_id, registered
        # ModelInfo comes back as a tuple in the struct's field order.
        info = registry.functions.modelInfo(model_id).call()
        assert (info[0], info[1], list(info[6]), info[9]) == (model_id, len(model), [1, 1, 8, 8], 64), info

        dc_artifact = CONTRACTS["DigitClassifier"]
        factory = w3.eth.contract(abi=dc_artifact["abi"], bytecode=dc_artifact["bytecode"])
        deployed = w3.eth.wait_for_transaction_receipt(factory.constructor(model_id).transact(), timeout=30)
        dc = w3.eth.contract(address=deployed["contractAddress"], abi=dc_artifact["abi"])
        image = bytes((i * 37) % 128 for i in range(64))
        label = dc.functions.predict(image).call()
        assert 0 <= label < 10, label
        receipt = w3.eth.wait_for_transaction_receipt(dc.functions.classify(image).transact(), timeout=30)
        classified = dc.events.Classified().process_receipt(receipt)
        assert len(classified) == 1 and classified[0]["args"]["label"] == label, classified

        # The precompile's typed error, bubbled up by the library: web3.py
        # raises ContractCustomError with the ABI-encoded error as its data.
        e = expect_raises(ContractCustomError, lambda: dc.functions.predict(bytes(63)).call())
        data = bytes.fromhex(str(e.data).removeprefix("0x"))
        assert data[:4] == Web3.keccak(text="InvalidInputLength(bytes32,uint256,uint256)")[:4], repr(e)
        assert w3.codec.decode(["bytes32", "uint256", "uint256"], data[4:]) == (model_id, 64, 63), repr(e)

    @step("admin namespace (w3.geth.admin) on a dev node, which runs no peer-to-peer network")
    def _():
        info = w3.geth.admin.node_info()
        assert info["name"].startswith("infera/"), info
        assert info["id"] is None and info["enode"] is None and info["listenAddrs"] == [], info
        chain = info["protocols"]["infera"]
        assert chain["chainId"] == CHAIN_ID and chain["network"] == CHAIN_ID, chain
        assert chain["genesis"] == w3.eth.get_block(0)["hash"].to_0x_hex(), chain
        latest = w3.eth.get_block("latest")
        assert chain["headNumber"] == latest["number"] > 0, chain
        assert chain["head"] == latest["hash"].to_0x_hex(), chain
        assert w3.geth.admin.peers() == []
        assert w3.net.peer_count == 0
        assert w3.net.listening is False
        peer = "/ip4/127.0.0.1/tcp/30303/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
        e = expect_raises(Web3RPCError, lambda: w3.geth.admin.add_peer(peer))
        assert "no peer-to-peer network" in str(e), e
        removed = w3.provider.make_request("admin_removePeer", [peer])
        assert "no peer-to-peer network" in removed["error"]["message"], removed

    @step("waiting for an unknown transaction times out")
    def _():
        unknown = "0x" + "00" * 32
        expect_raises(TimeExhausted, lambda: w3.eth.wait_for_transaction_receipt(unknown, timeout=0.3, poll_latency=0.1))


async def websocket_checks(w3, c):
    got = {"heads": [], "logs": []}
    done = asyncio.Event()

    async def on_head(ctx):
        got["heads"].append(ctx.result)
        if got["logs"]:
            done.set()

    async def on_log(ctx):
        got["logs"].append(ctx.result)
        if got["heads"]:
            done.set()

    topic = Web3.keccak(text="Stored(address,uint256,string)")
    async with AsyncWeb3(WebSocketProvider(WS)) as aw3:
        assert await aw3.eth.chain_id == CHAIN_ID
        await aw3.subscription_manager.subscribe(
            [
                NewHeadsSubscription(label="heads", handler=on_head),
                LogsSubscription(label="logs", address=c.address, topics=[topic], handler=on_log),
            ]
        )
        handler = asyncio.create_task(aw3.subscription_manager.handle_subscriptions())

        def send():
            tx_hash = c.functions.store(11, "over ws").transact()
            return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)

        receipt = await asyncio.to_thread(send)
        try:
            await asyncio.wait_for(done.wait(), timeout=15)
        except TimeoutError:
            raise AssertionError(f"no newHeads and logs over WebSocket within 15 s: {got}") from None
        assert await aw3.subscription_manager.unsubscribe_all()
        await asyncio.wait_for(handler, timeout=10)

    head = got["heads"][0]
    assert head["number"] == receipt["blockNumber"] and head["hash"] == receipt["blockHash"], head
    assert head["baseFeePerGas"] > 0, head
    log = got["logs"][0]
    assert log["transactionHash"] == receipt["transactionHash"], log
    event = c.events.Stored().process_log(log)
    assert (event["args"]["value"], event["args"]["note"]) == (11, "over ws"), event


if __name__ == "__main__":
    print("web3.py", flush=True)
    try:
        main()
    except Exception:
        print(f'FAIL web3.py: step "{current}":', file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print("web3.py: all checks passed")
