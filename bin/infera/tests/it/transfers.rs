use alloy_primitives::U256;
use serde_json::json;

use crate::http::{addr, b256, is_quantity, q, qty, qty_u128, qty_u256};
use crate::node::{CHAIN_ID, Node};
use crate::wallet::{GWEI, MAX_FEE, TIP, Wallet, ether, legacy};
use crate::{block_of, fee_paid, send_and_wait, send_ok};

#[test]
fn eip1559_transfer() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("eip1559_transfer/bob");
    let value = ether(1) + ether(1) / U256::from(2); // 1.5 ETH

    let before = rpc.balance(alice.address, "latest");
    let tx = alice.transfer(0, bob.address, value);
    let r = send_and_wait(rpc, &tx);

    // Receipt.
    assert_eq!(r["status"], "0x1", "{r}");
    assert_eq!(r["type"], "0x2");
    assert_eq!(qty(&r["gasUsed"]), 21_000);
    assert_eq!(qty(&r["cumulativeGasUsed"]), 21_000);
    assert_eq!(r["transactionIndex"], "0x0");
    assert_eq!(addr(&r["from"]), alice.address);
    assert_eq!(addr(&r["to"]), bob.address);
    assert!(r["contractAddress"].is_null());
    assert_eq!(r["logs"], json!([]));
    let n = block_of(&r);
    assert_eq!(
        n, 1,
        "first transaction of a block-time-0 dev chain goes into block 1"
    );
    for k in [
        "blockNumber",
        "gasUsed",
        "cumulativeGasUsed",
        "effectiveGasPrice",
        "transactionIndex",
        "status",
        "type",
    ] {
        assert!(
            is_quantity(r[k].as_str().unwrap_or("")),
            "receipt {k} not a canonical quantity: {}",
            r[k]
        );
    }

    // Block.
    let block = rpc.block(q(n), false);
    assert_eq!(block["transactions"], json!([tx.hash]));
    assert_eq!(r["blockHash"], block["hash"]);
    assert_eq!(qty(&block["gasUsed"]), 21_000);
    let base_fee = qty_u128(&block["baseFeePerGas"]);
    assert_eq!(rpc.block_number(), 1);
    assert_eq!(
        rpc.ok("eth_getBlockTransactionCountByNumber", json!([q(n)])),
        json!("0x1")
    );
    assert_eq!(
        rpc.ok("eth_getBlockTransactionCountByHash", json!([block["hash"]])),
        json!("0x1")
    );

    // effectiveGasPrice = min(maxFee, baseFee + tip); balances change by exactly value + fee.
    assert_eq!(
        qty_u128(&r["effectiveGasPrice"]),
        MAX_FEE.min(base_fee + TIP)
    );
    let fee = fee_paid(&r);
    assert_eq!(rpc.balance(alice.address, "latest"), before - value - fee);
    assert_eq!(rpc.balance(bob.address, "latest"), value);
    assert_eq!(
        rpc.balance(alice.address, "0x0"),
        before,
        "balance at the parent block is unchanged"
    );
    assert_eq!(rpc.balance(bob.address, "0x0"), U256::ZERO);
    assert_eq!(rpc.nonce(alice.address, "latest"), 1);
    assert_eq!(rpc.nonce(alice.address, "pending"), 1);
    assert_eq!(rpc.nonce(alice.address, "0x0"), 0);

    // Transaction object.
    let t = rpc.tx(tx.hash);
    assert_eq!(b256(&t["hash"]), tx.hash);
    assert_eq!(t["type"], "0x2");
    assert_eq!(qty(&t["chainId"]), CHAIN_ID);
    assert_eq!(t["nonce"], "0x0");
    assert_eq!(addr(&t["from"]), alice.address);
    assert_eq!(addr(&t["to"]), bob.address);
    assert_eq!(qty_u256(&t["value"]), value);
    assert_eq!(qty(&t["gas"]), 21_000);
    assert_eq!(qty_u128(&t["maxFeePerGas"]), MAX_FEE);
    assert_eq!(qty_u128(&t["maxPriorityFeePerGas"]), TIP);
    assert_eq!(t["input"], "0x");
    assert_eq!(t["blockHash"], block["hash"]);
    assert_eq!(qty(&t["blockNumber"]), n);
    assert_eq!(t["transactionIndex"], "0x0");
    assert_eq!(qty_u256(&t["r"]), tx.signature.r());
    assert_eq!(qty_u256(&t["s"]), tx.signature.s());
    let parity = if tx.signature.v() { 1 } else { 0 };
    assert_eq!(qty(&t["yParity"]), parity);

    // A second transfer increments the nonce again and goes into block 2.
    let r2 = send_ok(rpc, &alice.transfer(1, bob.address, U256::from(7)));
    assert_eq!(block_of(&r2), 2);
    assert_eq!(rpc.nonce(alice.address, "latest"), 2);
    assert_eq!(rpc.balance(bob.address, "latest"), value + U256::from(7));
    assert_eq!(
        rpc.balance(bob.address, "0x1"),
        value,
        "historical balance at block 1"
    );
    assert_eq!(
        rpc.balance(alice.address, "latest"),
        before - value - fee - U256::from(7) - fee_paid(&r2)
    );
}

#[test]
fn legacy_eip155_transfer() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(1);
    let bob = Wallet::fresh("legacy/bob");
    let gas_price = 3 * GWEI;
    let value = U256::from(123_456_789u64);
    let before = rpc.balance(alice.address, "latest");

    let tx = alice.sign_legacy(legacy(0, Some(bob.address), value, gas_price, 21_000));
    let r = send_and_wait(rpc, &tx);
    assert_eq!(r["status"], "0x1", "{r}");
    assert_eq!(r["type"], "0x0");
    assert_eq!(qty(&r["gasUsed"]), 21_000);
    assert_eq!(
        qty_u128(&r["effectiveGasPrice"]),
        gas_price,
        "legacy tx pays exactly its gas price"
    );
    assert_eq!(
        rpc.balance(alice.address, "latest"),
        before - value - U256::from(21_000u64 * gas_price as u64)
    );
    assert_eq!(rpc.balance(bob.address, "latest"), value);
    assert_eq!(rpc.nonce(alice.address, "latest"), 1);

    let t = rpc.tx(tx.hash);
    assert_eq!(t["type"], "0x0");
    assert_eq!(qty_u128(&t["gasPrice"]), gas_price);
    assert_eq!(qty(&t["chainId"]), CHAIN_ID);
    let parity = if tx.signature.v() { 1 } else { 0 };
    assert_eq!(qty(&t["v"]), CHAIN_ID * 2 + 35 + parity, "EIP-155 v");
    assert_eq!(qty_u256(&t["r"]), tx.signature.r());
    assert_eq!(qty_u256(&t["s"]), tx.signature.s());
}

#[test]
fn block_with_full_transactions_vs_hashes() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(2);
    let bob = Wallet::fresh("blocks/bob");
    let mut prev = rpc.block("0x0", false);
    for i in 0..3u64 {
        let tx = alice.transfer(i, bob.address, U256::from(1000 + i));
        let r = send_ok(rpc, &tx);
        let n = block_of(&r);
        assert_eq!(n, i + 1);

        let hashes = rpc.block(q(n), false);
        let full = rpc.block(q(n), true);
        assert_eq!(hashes["transactions"], json!([tx.hash]));
        let txs = full["transactions"]
            .as_array()
            .expect("full transactions array");
        assert_eq!(txs.len(), 1);
        assert_eq!(
            txs[0],
            rpc.tx(tx.hash),
            "full tx object == eth_getTransactionByHash"
        );
        // Apart from `transactions`, both forms are identical, and ByHash == ByNumber.
        let (mut a, mut b) = (hashes.clone(), full.clone());
        a.as_object_mut().unwrap().remove("transactions");
        b.as_object_mut().unwrap().remove("transactions");
        assert_eq!(a, b);
        assert_eq!(rpc.block_by_hash(b256(&full["hash"]), true), full);
        assert_eq!(rpc.block_by_hash(b256(&full["hash"]), false), hashes);

        // Header chain.
        assert_eq!(hashes["number"], json!(q(n)));
        assert_eq!(
            hashes["parentHash"], prev["hash"],
            "parentHash links to the previous block"
        );
        assert!(
            qty(&hashes["timestamp"]) > qty(&prev["timestamp"]),
            "timestamps strictly increase"
        );
        assert_eq!(qty(&hashes["gasUsed"]), 21_000);
        assert_eq!(hashes["transactionsRoot"].as_str().map(str::len), Some(66));
        assert_eq!(hashes["logsBloom"].as_str().map(str::len), Some(2 + 512));
        assert_ne!(
            hashes["stateRoot"], prev["stateRoot"],
            "state root changes with a transfer"
        );
        prev = hashes;
    }
    assert_eq!(rpc.block("latest", false), prev);
    assert_eq!(
        rpc.balance(bob.address, "latest"),
        U256::from(1000 + 1001 + 1002)
    );
    assert_eq!(rpc.balance(bob.address, "0x1"), U256::from(1000));
    assert_eq!(rpc.balance(bob.address, "0x2"), U256::from(2001));
}
