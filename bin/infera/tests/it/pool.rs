//! Transaction admission: invalid transactions are rejected with the usual messages,
//! pending state is visible, and the node keeps working.

use std::time::Duration;

use alloy_primitives::U256;
use serde_json::json;

use crate::http::{RpcError, b256, hex, post, qty};
use crate::node::Node;
use crate::wallet::{GWEI, Wallet, eip1559, ether, legacy};
use crate::ws::Ws;
use crate::{block_of, send_ok};

fn expect_rejected(
    res: Result<alloy_primitives::B256, RpcError>,
    what: &str,
    needles: &[&str],
) -> RpcError {
    let e = match res {
        Ok(h) => panic!("{what}: node accepted the transaction ({h})"),
        Err(e) => e,
    };
    let msg = e.message.to_lowercase();
    assert!(
        needles.iter().any(|n| msg.contains(n)),
        "{what}: error message {:?} (code {}) should mention one of {needles:?}",
        e.message,
        e.code
    );
    assert!(
        e.code == -32602 || e.code == -32003 || (-32099..=-32000).contains(&e.code),
        "{what}: code {}",
        e.code
    );
    e
}

#[test]
fn invalid_transactions_are_rejected() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("pool/bob");

    // Malformed RLP / envelopes.
    for raw in ["0xdeadbeef", "0x02", "0x02c0", "0xf8", "0x7f00"] {
        let e = rpc
            .request("eth_sendRawTransaction", json!([raw]))
            .expect_err(raw);
        assert!(
            e.message.to_lowercase().contains("decod"),
            "{raw}: error should mention decoding: {e:?}"
        );
    }
    let e = rpc
        .request("eth_sendRawTransaction", json!(["0x"]))
        .expect_err("empty raw tx");
    assert!(
        e.code == -32602
            || e.message.to_lowercase().contains("decod")
            || e.message.to_lowercase().contains("empty"),
        "{e:?}"
    );

    // Wrong chain id (EIP-1559 and legacy EIP-155).
    let mut t = eip1559(0, Some(bob.address), U256::from(1), vec![], 21_000);
    t.chain_id = 1;
    expect_rejected(
        rpc.send_raw(&alice.sign_1559(t).raw),
        "EIP-1559 tx for chain 1",
        &["chain id", "chainid", "chain-id"],
    );
    let mut t = legacy(0, Some(bob.address), U256::from(1), 2 * GWEI, 21_000);
    t.chain_id = Some(6175);
    expect_rejected(
        rpc.send_raw(&alice.sign_legacy(t).raw),
        "legacy tx for chain 6175",
        &["chain id", "chainid", "chain-id"],
    );

    // Max fee below the base fee (1 gwei at genesis).
    let mut t = eip1559(0, Some(bob.address), U256::from(1), vec![], 21_000);
    t.max_fee_per_gas = 1_000;
    t.max_priority_fee_per_gas = 1_000;
    expect_rejected(
        rpc.send_raw(&alice.sign_1559(t).raw),
        "max fee below base fee",
        &["underpriced", "base fee"],
    );
    let t = legacy(0, Some(bob.address), U256::from(1), 1_000, 21_000);
    expect_rejected(
        rpc.send_raw(&alice.sign_legacy(t).raw),
        "legacy gas price below base fee",
        &["underpriced", "base fee"],
    );
    // Tip above max fee is invalid.
    let mut t = eip1559(0, Some(bob.address), U256::from(1), vec![], 21_000);
    t.max_priority_fee_per_gas = t.max_fee_per_gas + 1;
    assert!(
        rpc.send_raw(&alice.sign_1559(t).raw).is_err(),
        "maxPriorityFeePerGas > maxFeePerGas must be rejected"
    );

    // Insufficient funds: an unfunded sender, and a funded one sending more than it has.
    expect_rejected(
        rpc.send_raw(&bob.transfer(0, alice.address, U256::from(1)).raw),
        "unfunded sender",
        &["insufficient funds"],
    );
    expect_rejected(
        rpc.send_raw(&alice.transfer(0, bob.address, ether(10_001)).raw),
        "value > balance",
        &["insufficient funds"],
    );

    // Gas limit below the intrinsic 21000, and above the block gas limit.
    assert!(
        rpc.send_raw(
            &alice
                .tx(0, Some(bob.address), U256::from(1), vec![], 20_999)
                .raw
        )
        .is_err(),
        "gas < intrinsic must be rejected"
    );
    assert!(
        rpc.send_raw(
            &alice
                .tx(0, Some(bob.address), U256::from(1), vec![], 1_000_000_000)
                .raw
        )
        .is_err(),
        "gas > block gas limit must be rejected"
    );

    // Osaka: EIP-7825 caps a transaction's gas limit at 2^24.
    assert!(
        rpc.send_raw(
            &alice
                .tx(0, Some(bob.address), U256::from(1), vec![], (1 << 24) + 1)
                .raw
        )
        .is_err(),
        "gas limit 2^24 + 1 must be rejected (EIP-7825)"
    );
    // EIP-3860: init code larger than 49152 bytes.
    let initcode = vec![0u8; 49_153];
    assert!(
        rpc.send_raw(&alice.tx(0, None, U256::ZERO, initcode, 16_000_000).raw)
            .is_err(),
        "init code over 49152 bytes must be rejected (EIP-3860)"
    );

    // Nothing above was included.
    assert_eq!(rpc.block_number(), 0);
    assert_eq!(rpc.nonce(alice.address, "pending"), 0);

    // Nonce too low.
    let r = send_ok(rpc, &alice.transfer(0, bob.address, U256::from(5)));
    assert_eq!(block_of(&r), 1);
    expect_rejected(
        rpc.send_raw(&alice.transfer(0, bob.address, U256::from(6)).raw),
        "nonce too low",
        &["nonce too low"],
    );
    // Re-sending the very same mined tx is also refused (known or nonce too low).
    assert!(
        rpc.send_raw(&alice.transfer(0, bob.address, U256::from(5)).raw)
            .is_err(),
        "re-sent mined tx must be rejected"
    );

    // The node still accepts a valid transaction.
    let r = send_ok(rpc, &alice.transfer(1, bob.address, U256::from(6)));
    assert_eq!(block_of(&r), 2);
    assert_eq!(rpc.balance(bob.address, "latest"), U256::from(11));
}

/// With a long block time, transactions wait in the pool: pending nonce, replacement rules,
/// newPendingTransactions.
#[test]
fn pending_pool_and_replacement() {
    let node = Node::start_with_block_time(3600);
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("replace/bob");

    let mut ws = Ws::connect(node.ws);
    let pending_sub = ws.subscribe(json!(["newPendingTransactions"]));

    let tx0 = alice.transfer(0, bob.address, U256::from(1));
    assert_eq!(rpc.send_raw(&tx0.raw).unwrap(), tx0.hash);
    let tx1 = alice.transfer(1, bob.address, U256::from(2));
    assert_eq!(rpc.send_raw(&tx1.raw).unwrap(), tx1.hash);
    assert_eq!(rpc.nonce(alice.address, "latest"), 0);
    assert_eq!(
        rpc.nonce(alice.address, "pending"),
        2,
        "pending nonce counts pool transactions"
    );
    assert_eq!(rpc.block_number(), 0);

    // Pending transactions are visible by hash, without a block.
    let t = rpc.tx(tx0.hash);
    assert_eq!(b256(&t["hash"]), tx0.hash);
    assert!(
        t["blockNumber"].is_null() && t["blockHash"].is_null(),
        "pending tx has no block: {t}"
    );
    assert!(
        rpc.receipt(tx0.hash).is_null(),
        "no receipt for a pending tx"
    );

    // newPendingTransactions announces both hashes.
    let got = ws.collect(&pending_sub, 2, Duration::from_secs(10));
    assert_eq!(
        got,
        vec![json!(tx0.hash), json!(tx1.hash)],
        "newPendingTransactions"
    );

    // Same nonce, same fees: replacement underpriced. Same tx again: already known.
    let same_fee = alice.transfer(0, bob.address, U256::from(3));
    expect_rejected(
        rpc.send_raw(&same_fee.raw),
        "replacement with equal fees",
        &["replacement transaction underpriced", "underpriced"],
    );
    let mut t = eip1559(0, Some(bob.address), U256::from(4), vec![], 21_000);
    t.max_fee_per_gas = t.max_fee_per_gas * 105 / 100;
    t.max_priority_fee_per_gas = t.max_priority_fee_per_gas * 105 / 100;
    expect_rejected(
        rpc.send_raw(&alice.sign_1559(t).raw),
        "replacement with +5% fees",
        &["underpriced"],
    );
    assert!(
        rpc.send_raw(&tx0.raw).is_err(),
        "re-sending a pooled tx is rejected (already known)"
    );

    // +100% fees replaces it.
    let mut t = eip1559(0, Some(bob.address), U256::from(5), vec![], 21_000);
    t.max_fee_per_gas *= 2;
    t.max_priority_fee_per_gas *= 2;
    let replacement = alice.sign_1559(t);
    assert_eq!(rpc.send_raw(&replacement.raw).unwrap(), replacement.hash);
    assert_eq!(rpc.nonce(alice.address, "pending"), 2);
    let t = rpc.tx(replacement.hash);
    assert_eq!(qty(&t["nonce"]), 0);
    assert!(
        rpc.tx(tx0.hash).is_null(),
        "the replaced transaction is gone"
    );

    // eth_call / eth_estimateGas default to latest and do not see pool state.
    assert_eq!(rpc.balance(bob.address, "latest"), U256::ZERO);
    assert_eq!(
        rpc.ok(
            "eth_estimateGas",
            json!([{"from": alice.address, "to": bob.address, "value": "0x1"}])
        ),
        json!("0x5208")
    );
}

/// Periodic sealing: transactions sent within one period share a block, in nonce order,
/// with consistent cumulative gas.
#[test]
fn interval_sealing_packs_transactions() {
    let node = Node::start_with_block_time(1);
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::dev(1);
    let to = Wallet::fresh("interval/to").address;

    // Align with the sealing clock: wait until a block boundary has just passed... if the node
    // does not seal empty blocks, a first transaction provides the boundary.
    send_ok(rpc, &alice.transfer(0, to, U256::from(1)));
    let txs = [
        alice.transfer(1, to, U256::from(2)),
        alice.transfer(2, to, U256::from(3)),
        bob.sign_legacy(legacy(0, Some(to), U256::from(4), 5 * GWEI, 21_000)),
        alice.transfer(3, to, U256::from(5)),
    ];
    for t in &txs {
        assert_eq!(rpc.send_raw(&t.raw).unwrap(), t.hash);
    }
    assert_eq!(rpc.nonce(alice.address, "pending"), 4);
    let receipts: Vec<_> = txs.iter().map(|t| rpc.wait_receipt(t.hash)).collect();
    for r in &receipts {
        assert_eq!(r["status"], "0x1");
    }
    // Alice's transactions are mined in nonce order.
    let pos = |r: &serde_json::Value| (block_of(r), qty(&r["transactionIndex"]));
    assert!(pos(&receipts[0]) < pos(&receipts[1]) && pos(&receipts[1]) < pos(&receipts[3]));

    // Every block holding them is self-consistent.
    let first = receipts.iter().map(block_of).min().unwrap();
    let last = receipts.iter().map(block_of).max().unwrap();
    let mut packed = false;
    for n in first..=last {
        let b = rpc.block(crate::http::q(n), true);
        let list = b["transactions"].as_array().unwrap();
        packed |= list.len() > 1;
        let mut cumulative = 0;
        for (i, t) in list.iter().enumerate() {
            let r = rpc.receipt(b256(&t["hash"]));
            assert_eq!(qty(&r["transactionIndex"]), i as u64);
            assert_eq!(qty(&t["transactionIndex"]), i as u64);
            cumulative += qty(&r["gasUsed"]);
            assert_eq!(
                qty(&r["cumulativeGasUsed"]),
                cumulative,
                "cumulativeGasUsed of tx {i} in block {n}"
            );
            assert_eq!(r["blockHash"], b["hash"]);
        }
        assert_eq!(qty(&b["gasUsed"]), cumulative);
    }
    assert!(
        packed,
        "with a 1 s block time, 4 transactions sent at once should share a block"
    );
    assert_eq!(rpc.balance(to, "latest"), U256::from(1 + 2 + 3 + 4 + 5));
}

/// Waits until `address`'s mined nonce reaches `nonce` (the sealer keeps
/// sealing while the pool has pending transactions).
fn wait_nonce(rpc: &crate::http::Rpc, address: alloy_primitives::Address, nonce: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mined = rpc.nonce(address, "latest");
        if mined >= nonce {
            assert_eq!(mined, nonce, "{address}: more transactions mined than sent");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{address}: only {mined} of {nonce} transactions mined after 120 s; pool: {}",
            rpc.ok("txpool_status", json!([]))
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// 64 transactions queued behind a nonce gap, then the one that fills it: it
/// is admitted (not refused for the full queue), and all 65 are mined.
#[test]
fn gap_filler_after_64_queued_transactions_gets_all_mined() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let to = Wallet::fresh("pool/gap/to").address;
    let txs: Vec<_> = (0..=64u64)
        .map(|nonce| alice.transfer(nonce, to, U256::from(nonce + 1)))
        .collect();
    for t in &txs[1..] {
        assert_eq!(rpc.send_raw(&t.raw).unwrap(), t.hash);
    }
    let status = rpc.ok("txpool_status", json!([]));
    assert_eq!(qty(&status["queued"]), 64, "{status}");
    assert_eq!(rpc.block_number(), 0, "nothing is executable yet");
    assert_eq!(rpc.send_raw(&txs[0].raw).unwrap(), txs[0].hash);
    wait_nonce(rpc, alice.address, 65);
    for t in &txs {
        assert_eq!(rpc.wait_receipt(t.hash)["status"], "0x1");
    }
    assert_eq!(rpc.balance(to, "latest"), U256::from(65 * 66 / 2));
    let status = rpc.ok("txpool_status", json!([]));
    assert_eq!((qty(&status["pending"]), qty(&status["queued"])), (0, 0));
}

/// Ten senders each post one JSON-RPC batch of 200 eth_sendRawTransaction at
/// the same time: every call is accepted and every transaction mined, over
/// as many blocks as it takes.
#[test]
fn batches_of_200_transactions_from_10_senders_are_all_mined() {
    const SENDERS: usize = 10;
    const PER_SENDER: u64 = 200;
    let node = Node::start();
    let rpc = &node.rpc;
    let funder = Wallet::dev(0);
    let to = Wallet::fresh("pool/batch/to").address;
    let senders: Vec<Wallet> = (0..SENDERS)
        .map(|i| Wallet::fresh(&format!("pool/batch/sender-{i}")))
        .collect();
    let funding: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(i, w)| funder.transfer(i as u64, w.address, ether(1)))
        .collect();
    for t in &funding {
        assert_eq!(rpc.send_raw(&t.raw).unwrap(), t.hash);
    }
    for t in &funding {
        assert_eq!(rpc.wait_receipt(t.hash)["status"], "0x1");
    }

    let batches: Vec<(Vec<_>, String)> = senders
        .iter()
        .map(|w| {
            let txs: Vec<_> = (0..PER_SENDER)
                .map(|nonce| w.transfer(nonce, to, U256::from(1)))
                .collect();
            let body: Vec<_> = txs
                .iter()
                .enumerate()
                .map(|(id, t)| {
                    json!({"jsonrpc": "2.0", "id": id, "method": "eth_sendRawTransaction", "params": [hex(&t.raw)]})
                })
                .collect();
            (txs, serde_json::Value::Array(body).to_string())
        })
        .collect();
    let first_block = rpc.block_number();
    std::thread::scope(|scope| {
        for (txs, body) in &batches {
            let addr = node.http;
            scope.spawn(move || {
                let response = post(addr, body.as_bytes(), Duration::from_secs(60)).unwrap();
                assert_eq!(response.status, 200, "{}", response.text());
                let answers: Vec<serde_json::Value> =
                    serde_json::from_slice(&response.body).unwrap();
                assert_eq!(answers.len(), txs.len());
                for answer in answers {
                    let id = answer["id"].as_u64().unwrap() as usize;
                    assert_eq!(
                        answer["result"],
                        json!(txs[id].hash),
                        "call {id} of the batch: {answer}"
                    );
                }
            });
        }
    });
    for w in &senders {
        wait_nonce(rpc, w.address, PER_SENDER);
    }
    for (txs, _) in &batches {
        for t in txs {
            assert_eq!(rpc.receipt(t.hash)["status"], "0x1", "{}", t.hash);
        }
    }
    assert_eq!(
        rpc.balance(to, "latest"),
        U256::from(SENDERS as u64 * PER_SENDER)
    );
    let status = rpc.ok("txpool_status", json!([]));
    assert_eq!((qty(&status["pending"]), qty(&status["queued"])), (0, 0));
    assert!(rpc.block_number() > first_block);
}
