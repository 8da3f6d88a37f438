use std::time::Duration;

use alloy_primitives::{B256, Bloom, BloomInput, U256};
use serde_json::{Value, json};

use crate::abi::{self, calldata, topic, w, wa};
use crate::http::{addr, b256, bytes, q, qty};
use crate::node::Node;
use crate::wallet::Wallet;
use crate::ws::Ws;
use crate::{block_of, deploy, send_ok};

fn storage_code() -> Vec<u8> {
    let mut code = abi::storage().bytecode;
    code.extend_from_slice(w(0).as_slice());
    code
}

/// The identifying fields of a log, for comparisons across APIs.
fn key(l: &Value) -> (String, Value, String, u64, B256, u64, B256) {
    (
        addr(&l["address"]).to_string(),
        l["topics"].clone(),
        l["data"].as_str().unwrap().to_lowercase(),
        qty(&l["blockNumber"]),
        b256(&l["transactionHash"]),
        qty(&l["logIndex"]),
        b256(&l["blockHash"]),
    )
}

#[test]
fn logs_filters_and_subscriptions() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::dev(1);
    let sig = topic("ValueChanged(address,uint256,uint256)");

    let (c, r) = deploy(rpc, &alice, 0, storage_code(), 1_000_000);
    let deploy_block = block_of(&r);
    // A second contract whose logs must not leak into address-filtered queries.
    let (c2, _) = deploy(rpc, &bob, 0, storage_code(), 1_000_000);
    send_ok(
        rpc,
        &bob.tx(
            1,
            Some(c2),
            U256::ZERO,
            calldata("set(uint256)", &[w(99)]),
            200_000,
        ),
    );

    // Subscriptions on the dedicated WS port and on the HTTP port (WS upgrade).
    let mut ws = Ws::connect(node.ws);
    let heads = ws.subscribe(json!(["newHeads"]));
    let log_sub = ws.subscribe(json!(["logs", {"address": c, "topics": [sig]}]));
    let bob_sub =
        ws.subscribe(json!(["logs", {"address": c, "topics": [Value::Null, wa(bob.address)]}]));
    let mut ws_http = Ws::connect(node.http);
    let heads2 = ws_http.subscribe(json!(["newHeads"]));
    // Polling filters.
    let log_filter = rpc.ok("eth_newFilter", json!([{"address": c}]));
    let block_filter = rpc.ok("eth_newBlockFilter", json!([]));
    assert_eq!(
        rpc.ok("eth_getFilterChanges", json!([log_filter])),
        json!([])
    );
    assert_eq!(
        rpc.ok("eth_getFilterChanges", json!([block_filter])),
        json!([])
    );

    // set(1), set(2), set(3) by alice, set(4) by bob: one block each.
    let mut receipts = Vec::new();
    for (i, (who, nonce, v)) in [
        (&alice, 1u64, 1u64),
        (&alice, 2, 2),
        (&alice, 3, 3),
        (&bob, 2, 4),
    ]
    .into_iter()
    .enumerate()
    {
        let r = send_ok(
            rpc,
            &who.tx(
                nonce,
                Some(c),
                U256::ZERO,
                calldata("set(uint256)", &[w(v)]),
                200_000,
            ),
        );
        if i > 0 {
            assert_eq!(block_of(&r), block_of(&receipts[i - 1]) + 1);
        }
        receipts.push(r);
    }
    let blocks: Vec<u64> = receipts.iter().map(block_of).collect();
    let receipt_logs: Vec<Value> = receipts.iter().map(|r| r["logs"][0].clone()).collect();
    for (i, l) in receipt_logs.iter().enumerate() {
        let setter = if i < 3 { alice.address } else { bob.address };
        let old = if i == 0 { 0 } else { i as u64 };
        assert_eq!(addr(&l["address"]), c);
        assert_eq!(l["topics"], json!([sig, wa(setter), w(i as u64 + 1)]));
        assert_eq!(bytes(&l["data"]), w(old).to_vec());
        assert_eq!(l["logIndex"], "0x0");
        assert_eq!(l["transactionIndex"], "0x0");
        assert_eq!(l["removed"], json!(false));
        assert_eq!(l["blockHash"], receipts[i]["blockHash"]);
    }
    // logsBloom of receipts and blocks contain the log's address and topics.
    for (r, l) in receipts.iter().zip(&receipt_logs) {
        let block = rpc.block(r["blockNumber"].clone(), false);
        for bloom in [&r["logsBloom"], &block["logsBloom"]] {
            let bloom = Bloom::from_slice(&bytes(bloom));
            assert!(
                bloom.contains_input(BloomInput::Raw(c.as_slice())),
                "bloom lacks the address"
            );
            for t in l["topics"].as_array().unwrap() {
                assert!(
                    bloom.contains_input(BloomInput::Raw(b256(t).as_slice())),
                    "bloom lacks topic {t}"
                );
            }
        }
    }
    let keys: Vec<_> = receipt_logs.iter().map(key).collect();
    let get_logs = |filter: Value| -> Vec<_> {
        let v = rpc.ok("eth_getLogs", json!([filter]));
        v.as_array()
            .unwrap_or_else(|| panic!("eth_getLogs({filter}) = {v}"))
            .iter()
            .map(key)
            .collect()
    };

    // eth_getLogs: address, topics (positional, null wildcard, OR), block ranges, blockHash.
    let all = json!({"fromBlock": q(deploy_block), "toBlock": "latest", "address": c});
    assert_eq!(get_logs(all), keys, "all logs of the contract, in order");
    assert_eq!(
        get_logs(json!({"fromBlock": "0x0", "toBlock": "latest", "address": [c]})),
        keys
    );
    assert_eq!(
        get_logs(json!({"fromBlock": "0x0", "address": c, "topics": [sig]})),
        keys
    );
    assert_eq!(
        get_logs(json!({"fromBlock": "0x0", "topics": [sig, wa(bob.address)], "address": c})),
        keys[3..].to_vec()
    );
    assert_eq!(
        get_logs(json!({"fromBlock": "0x0", "topics": [Value::Null, Value::Null, w(2)]})),
        keys[1..2].to_vec()
    );
    assert_eq!(
        get_logs(
            json!({"fromBlock": "0x0", "address": c, "topics": [sig, [wa(alice.address), wa(bob.address)]]})
        ),
        keys
    );
    assert_eq!(
        get_logs(json!({"fromBlock": q(blocks[1]), "toBlock": q(blocks[2]), "address": c})),
        keys[1..3].to_vec()
    );
    assert_eq!(
        get_logs(json!({"fromBlock": q(blocks[3]), "toBlock": q(blocks[3])})),
        keys[3..].to_vec()
    );
    assert_eq!(
        get_logs(json!({"blockHash": receipts[2]["blockHash"]})),
        keys[2..3].to_vec()
    );
    assert_eq!(
        get_logs(json!({"fromBlock": "0x0", "address": c, "topics": [B256::repeat_byte(1)]})),
        vec![]
    );
    // Both contracts, no address filter: c2's set(99) comes first.
    let both = get_logs(json!({"fromBlock": "0x0", "topics": [sig]}));
    assert_eq!(both.len(), 5);
    assert_eq!(both[0].0, c2.to_string());
    assert_eq!(both[1..].to_vec(), keys);
    assert_eq!(
        get_logs(json!({"fromBlock": "0x0", "address": c2})).len(),
        1
    );

    // Polling filters.
    let changes = rpc.ok("eth_getFilterChanges", json!([log_filter]));
    assert_eq!(
        changes
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>(),
        keys
    );
    assert_eq!(
        rpc.ok("eth_getFilterChanges", json!([log_filter])),
        json!([]),
        "changes are consumed"
    );
    // eth_getFilterLogs over an explicit range (a filter without fromBlock means "latest").
    let range_filter = rpc.ok(
        "eth_newFilter",
        json!([{"fromBlock": q(deploy_block), "toBlock": "latest", "address": c}]),
    );
    let filter_logs = rpc.ok("eth_getFilterLogs", json!([range_filter]));
    assert_eq!(
        filter_logs
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect::<Vec<_>>(),
        keys
    );
    let block_hashes: Vec<Value> = receipts.iter().map(|r| r["blockHash"].clone()).collect();
    assert_eq!(
        rpc.ok("eth_getFilterChanges", json!([block_filter])),
        json!(block_hashes)
    );
    assert_eq!(
        rpc.ok("eth_getFilterChanges", json!([block_filter])),
        json!([])
    );
    assert_eq!(
        rpc.ok("eth_uninstallFilter", json!([log_filter])),
        json!(true)
    );
    assert_eq!(
        rpc.ok("eth_uninstallFilter", json!([log_filter])),
        json!(false)
    );
    assert_eq!(
        rpc.ok("eth_uninstallFilter", json!([block_filter])),
        json!(true)
    );
    rpc.err("eth_getFilterChanges", json!([log_filter]));

    // WS newHeads: one notification per block, matching eth_getBlockByNumber.
    let t = Duration::from_secs(10);
    for (sub, conn) in [(&heads, &mut ws), (&heads2, &mut ws_http)] {
        let got = conn.collect(sub, 4, t);
        assert_eq!(got.len(), 4, "newHeads notifications: {got:?}");
        for (h, n) in got.iter().zip(&blocks) {
            let b = rpc.block(q(*n), false);
            assert_eq!(qty(&h["number"]), *n);
            for k in [
                "hash",
                "parentHash",
                "stateRoot",
                "receiptsRoot",
                "transactionsRoot",
                "gasUsed",
                "gasLimit",
                "timestamp",
                "baseFeePerGas",
                "logsBloom",
                "miner",
            ] {
                assert_eq!(h[k], b[k], "newHeads field {k} of block {n}");
            }
        }
    }
    // WS logs.
    let got = ws.collect(&log_sub, 4, t);
    assert_eq!(
        got.iter().map(key).collect::<Vec<_>>(),
        keys,
        "logs subscription"
    );
    let got = ws.collect(&bob_sub, 1, t);
    assert_eq!(
        got.iter().map(key).collect::<Vec<_>>(),
        keys[3..].to_vec(),
        "topic-filtered logs subscription"
    );
    assert!(
        ws.next(&bob_sub, Duration::from_millis(300)).is_none(),
        "only bob's log matches"
    );

    // Unsubscribe: true once, then false; no further notifications.
    assert_eq!(ws.ok("eth_unsubscribe", json!([heads])), json!(true));
    assert_eq!(ws.ok("eth_unsubscribe", json!([log_sub])), json!(true));
    let again = ws.request("eth_unsubscribe", json!([heads]));
    assert!(
        matches!(&again, Ok(v) if *v == json!(false)) || again.is_err(),
        "second eth_unsubscribe: {again:?}"
    );
    send_ok(
        rpc,
        &alice.tx(
            4,
            Some(c),
            U256::ZERO,
            calldata("set(uint256)", &[w(5)]),
            200_000,
        ),
    );
    assert!(
        ws.next(&heads, Duration::from_millis(500)).is_none(),
        "no newHeads after unsubscribe"
    );
    assert!(
        ws.next(&log_sub, Duration::from_millis(100)).is_none(),
        "no logs after unsubscribe"
    );
    assert_eq!(
        ws_http.collect(&heads2, 1, t).len(),
        1,
        "the other connection still gets heads"
    );
}

/// Ethereum nodes (geth, reth, erigon, nethermind) use hex-string subscription ids, and
/// typed clients (e.g. alloy's pubsub, which parses them as U256 from hex) depend on it.
#[test]
fn subscription_ids_are_hex_strings() {
    let node = Node::start();
    let mut ws = Ws::connect(node.ws);
    for params in [
        json!(["newHeads"]),
        json!(["logs", {}]),
        json!(["newPendingTransactions"]),
    ] {
        let id = ws.subscribe(params.clone());
        let s = id
            .as_str()
            .unwrap_or_else(|| panic!("eth_subscribe({params}) returned a non-string id {id}"));
        let hex = s
            .strip_prefix("0x")
            .unwrap_or_else(|| panic!("subscription id {s} lacks 0x"));
        assert!(
            !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "subscription id {s}"
        );
        // jsonrpsee 0.26 answers eth_subscribe before it registers the
        // subscription (its issue #1052), so an unsubscribe sent the same
        // instant can race it on a loaded machine. Retry for a bounded time:
        // a registration that never lands still fails the test.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            ws.ok("eth_chainId", json!([]));
            if ws.ok("eth_unsubscribe", json!([id])) == json!(true) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "eth_unsubscribe({id}) never succeeded"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
