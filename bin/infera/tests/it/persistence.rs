//! Restarts: clean (SIGTERM) and crash (SIGKILL) on the same datadir.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use serde_json::{Value, json};

use crate::abi::{self, calldata, w};
use crate::http::{addr, b256, hex, q, qty, qty_u256};
use crate::node::Node;
use crate::wallet::{Wallet, ether};
use crate::{block_of, deploy, fee_paid, send_ok};

#[test]
fn restart_keeps_state() {
    let mut node = Node::start();
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("restart/bob");
    let mut code = abi::storage().bytecode;
    code.extend_from_slice(w(5).as_slice());

    let r1 = send_ok(&node.rpc, &alice.transfer(0, bob.address, ether(2)));
    let (c, r2) = deploy(&node.rpc, &alice, 1, code, 1_000_000);
    let r3 = send_ok(
        &node.rpc,
        &alice.tx(
            2,
            Some(c),
            U256::ZERO,
            calldata("set(uint256)", &[w(77)]),
            200_000,
        ),
    );
    let rpc = &node.rpc;
    let head = rpc.block_number();
    assert_eq!(head, 3);
    let blocks: Vec<Value> = (0..=head).map(|n| rpc.block(q(n), true)).collect();
    let alice_bal = rpc.balance(alice.address, "latest");
    let receipts = [r1, r2, r3];
    let logs = rpc.ok("eth_getLogs", json!([{"fromBlock": "0x0", "address": c}]));

    let status = node.stop();
    assert!(
        status.success(),
        "SIGTERM must shut down cleanly (exit 0), got {status}"
    );
    node.restart();
    let rpc = &node.rpc;

    assert_eq!(rpc.block_number(), head, "head survives a restart");
    for (n, b) in blocks.iter().enumerate() {
        assert_eq!(&rpc.block(q(n as u64), true), b, "block {n} after restart");
    }
    assert_eq!(rpc.balance(alice.address, "latest"), alice_bal);
    assert_eq!(rpc.balance(bob.address, "latest"), ether(2));
    for r in &receipts {
        let h = b256(&r["transactionHash"]);
        assert_eq!(&rpc.receipt(h), r, "receipt of {h} after restart");
        assert!(!rpc.tx(h).is_null());
    }
    assert_eq!(rpc.code(c, "latest"), abi::storage().deployed);
    assert_eq!(rpc.storage(c, w(0), "latest"), w(77));
    assert_eq!(
        rpc.storage(c, w(0), q(block_of(&receipts[1]))),
        w(5),
        "historical state after restart"
    );
    assert_eq!(
        rpc.ok("eth_getLogs", json!([{"fromBlock": "0x0", "address": c}])),
        logs
    );
    assert_eq!(rpc.nonce(alice.address, "latest"), 3);
    assert_eq!(rpc.nonce(alice.address, "pending"), 3);

    // The chain continues on top of the old head.
    let r = send_ok(rpc, &alice.transfer(3, bob.address, U256::from(1)));
    assert_eq!(block_of(&r), head + 1);
    assert_eq!(
        rpc.block(q(head + 1), false)["parentHash"],
        blocks[head as usize]["hash"]
    );

    // A second clean restart also works.
    assert!(node.stop().success());
    node.restart();
    assert_eq!(node.rpc.block_number(), head + 1);
    assert_eq!(
        node.rpc.balance(bob.address, "latest"),
        ether(2) + U256::from(1)
    );
}

#[test]
fn crash_during_load_recovers_consistently() {
    let mut node = Node::start();
    let senders = [Wallet::dev(0), Wallet::dev(1)];
    let recipients = [
        Wallet::fresh("crash/r0").address,
        Wallet::fresh("crash/r1").address,
    ];
    let sent = AtomicUsize::new(0);
    let mut durable_block = 0;
    let mut head_before_kill = 0;

    std::thread::scope(|s| {
        for (i, w) in senders.iter().enumerate() {
            let (rpc, sent, to) = (&node.rpc, &sent, recipients[i]);
            s.spawn(move || {
                for nonce in 0..100_000u64 {
                    let tx = w.transfer(nonce, to, U256::from(1_000 + nonce));
                    match rpc.try_request("eth_sendRawTransaction", json!([hex(&tx.raw)])) {
                        Ok(Ok(_)) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => panic!("valid tx {nonce} from {} rejected: {e:?}", w.address),
                        Err(_) => break, // the node is gone
                    }
                }
            });
        }
        // Let some blocks land, note one whose receipt was served, keep loading, then SIGKILL
        // while both senders are still pushing transactions.
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.load(Ordering::Relaxed) < 10 {
            assert!(Instant::now() < deadline, "senders made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        let probe = senders[0]
            .transfer(0, recipients[0], U256::from(1_000))
            .hash;
        durable_block = block_of(&node.rpc.wait_receipt(probe));
        let target = sent.load(Ordering::Relaxed) + 30;
        while sent.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        head_before_kill = node.rpc.block_number();
        node.signal("KILL");
    });
    node.kill9();

    node.restart();
    let rpc = &node.rpc;
    let head = rpc.block_number();
    eprintln!(
        "crash test: {} txs accepted before SIGKILL, receipt seen in block {durable_block}, \
         head {head_before_kill} just before the kill, {head} after restart",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        head >= durable_block,
        "after the crash the head ({head}) is below block {durable_block}, whose receipt was served before the crash"
    );

    // Every block up to the head is complete: all its transactions and receipts are queryable
    // and consistent; the sender balances equal genesis minus the sum over mined txs.
    let mut cost: HashMap<Address, U256> = HashMap::new();
    let mut received: HashMap<Address, U256> = HashMap::new();
    let mut nonces: HashMap<Address, Vec<u64>> = HashMap::new();
    let mut parent = b256(&rpc.block("0x0", false)["hash"]);
    for n in 1..=head {
        let b = rpc.block(q(n), true);
        assert!(!b.is_null(), "block {n} <= head {head} is missing");
        assert_eq!(b256(&b["parentHash"]), parent, "block {n} parent");
        parent = b256(&b["hash"]);
        let mut cumulative = 0;
        for (i, t) in b["transactions"].as_array().unwrap().iter().enumerate() {
            let h: B256 = b256(&t["hash"]);
            let r = rpc.receipt(h);
            assert!(
                !r.is_null(),
                "receipt of {h} in block {n} missing after the crash"
            );
            assert_eq!(r["blockHash"], b["hash"], "receipt block hash of {h}");
            assert_eq!(qty(&r["transactionIndex"]), i as u64);
            assert_eq!(r["status"], "0x1");
            cumulative = qty(&r["cumulativeGasUsed"]);
            let t2 = rpc.tx(h);
            assert_eq!(&t2, t, "eth_getTransactionByHash == full block tx for {h}");
            let from = addr(&t["from"]);
            let value = qty_u256(&t["value"]);
            *cost.entry(from).or_default() += value + fee_paid(&r);
            *received.entry(addr(&t["to"])).or_default() += value;
            nonces.entry(from).or_default().push(qty(&t["nonce"]));
        }
        assert_eq!(
            qty(&b["gasUsed"]),
            cumulative,
            "block {n} gasUsed == last cumulativeGasUsed"
        );
    }
    for w in &senders {
        let mined = nonces.remove(&w.address).unwrap_or_default();
        assert_eq!(
            mined,
            (0..mined.len() as u64).collect::<Vec<_>>(),
            "mined nonces of {} are 0..n in order",
            w.address
        );
        assert_eq!(rpc.nonce(w.address, "latest"), mined.len() as u64);
        assert_eq!(
            rpc.balance(w.address, "latest"),
            ether(10_000) - cost.get(&w.address).copied().unwrap_or_default(),
            "balance of {} == genesis - sum(value + fee) over its mined txs",
            w.address
        );
    }
    for r in recipients {
        assert_eq!(
            rpc.balance(r, "latest"),
            received.get(&r).copied().unwrap_or_default(),
            "balance of recipient {r}"
        );
    }

    // The node serves and extends the chain.
    let alice = &senders[0];
    let nonce = rpc.nonce(alice.address, "pending");
    let r = send_ok(rpc, &alice.transfer(nonce, recipients[1], U256::from(1)));
    assert!(block_of(&r) > head);
}
