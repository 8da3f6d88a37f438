//! Malformed requests: the node answers with the right JSON-RPC errors and keeps serving.

use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{self, q, qty};
use crate::node::Node;
use crate::ws::Ws;

fn post_json(node: &Node, body: &str) -> (u16, Value) {
    let r = http::post(node.http, body.as_bytes(), Duration::from_secs(30)).expect("HTTP request");
    let v = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("non-JSON body (HTTP {}): {e}: {}", r.status, r.text()));
    (r.status, v)
}

fn assert_serving(node: &Node) {
    assert_eq!(
        qty(&node.rpc.ok("eth_chainId", json!([]))),
        6174,
        "node still serves"
    );
}

#[test]
fn malformed_requests_keep_node_serving() {
    let node = Node::start();
    let rpc = &node.rpc;

    // Unknown method.
    let e = rpc.err("eth_noSuchMethod", json!([]));
    assert_eq!(e.code, -32601, "{e:?}");

    // Invalid params.
    for (m, p) in [
        ("eth_getBalance", json!(["0xnot-an-address", "latest"])),
        ("eth_getBalance", json!(["0x1234", "latest"])),
        ("eth_getTransactionByHash", json!(["0x1234"])),
        ("eth_getBlockByNumber", json!(["0x1", "yes"])),
        ("eth_getBlockByNumber", json!([{"not": "a block"}, false])),
        ("eth_sendRawTransaction", json!([12])),
        ("eth_call", json!(["not an object", "latest"])),
    ] {
        let e = rpc.err(m, p.clone());
        assert_eq!(e.code, -32602, "{m}({p}): {e:?}");
    }

    // Invalid JSON: parse error -32700.
    let (_, v) = post_json(&node, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_serving(&node);

    // Batch: responses for every request, matched by id.
    let (status, v) = post_json(
        &node,
        &json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": "two", "method": "eth_blockNumber", "params": []},
            {"jsonrpc": "2.0", "id": 3, "method": "eth_noSuchMethod", "params": []},
            {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "latest"]},
        ])
        .to_string(),
    );
    assert_eq!(status, 200);
    let arr = v
        .as_array()
        .unwrap_or_else(|| panic!("batch response must be an array: {v}"));
    assert_eq!(arr.len(), 4, "{v}");
    let by_id = |id: Value| {
        arr.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no response for id {id}: {v}"))
    };
    assert_eq!(by_id(json!(1))["result"], "0x181e");
    assert_eq!(by_id(json!("two"))["result"], "0x0");
    assert_eq!(by_id(json!(3))["error"]["code"], -32601);
    assert_eq!(
        by_id(json!(4))["result"],
        "0x21e19e0c9bab2400000",
        "10,000 ETH"
    );

    // Empty batch: a single Invalid Request error.
    let (_, v) = post_json(&node, "[]");
    assert_eq!(v["error"]["code"], -32600, "empty batch: {v}");

    // Oversized body (21 MiB): rejected with HTTP 413 or a JSON-RPC error, never served.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_sendRawTransaction\",\"params\":[\"0x{}\"]}}",
        "ab".repeat(21 * 1024 * 1024 / 2)
    );
    match http::post(node.http, big.as_bytes(), Duration::from_secs(60)) {
        Ok(r) if r.status == 413 => eprintln!("oversized request: HTTP 413 {}", r.text()),
        Ok(r) => {
            let v: Value = serde_json::from_slice(&r.body)
                .unwrap_or_else(|_| panic!("oversized request: HTTP {} {}", r.status, r.text()));
            let code = v["error"]["code"]
                .as_i64()
                .unwrap_or_else(|| panic!("oversized request was not rejected: {v}"));
            assert!(
                [-32600, -32603, -32007, -32000].contains(&code)
                    || (-32099..=-32000).contains(&code),
                "oversized request error: {v}"
            );
        }
        // The server may reset the connection while we are still writing the body.
        Err(e) => eprintln!("oversized request: connection error {e} (accepted)"),
    }
    assert_serving(&node);

    // Malformed WebSocket input does not kill the connection or the node.
    let mut ws = Ws::connect(node.ws);
    ws.send_text("{not json");
    assert_eq!(ws.ok("eth_chainId", json!([])), json!("0x181e"));
    let e = ws.request("eth_noSuchMethod", json!([])).unwrap_err();
    assert_eq!(e.code, -32601);
    assert_eq!(ws.ok("eth_blockNumber", json!([])), json!(q(0u64)));
    assert_serving(&node);
}

/// eth_getLogs parameter validation as in geth/reth: an inverted block range and
/// `blockHash` together with `fromBlock`/`toBlock` (EIP-234) are errors, not empty results.
#[test]
fn get_logs_rejects_invalid_ranges() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = crate::wallet::Wallet::dev(0);
    for i in 0..2 {
        crate::send_ok(
            rpc,
            &alice.transfer(i, alice.address, alloy_primitives::U256::from(1)),
        );
    }
    assert_eq!(
        rpc.ok(
            "eth_getLogs",
            json!([{"fromBlock": "0x1", "toBlock": "0x2"}])
        ),
        json!([])
    );
    let e = rpc.err(
        "eth_getLogs",
        json!([{"fromBlock": "0x2", "toBlock": "0x1"}]),
    );
    assert!(
        e.code == -32602 || (-32099..=-32000).contains(&e.code),
        "{e:?}"
    );
    let hash = rpc.block("0x1", false)["hash"].clone();
    let e = rpc.err(
        "eth_getLogs",
        json!([{"blockHash": hash, "fromBlock": "0x1"}]),
    );
    assert!(
        e.code == -32602 || (-32099..=-32000).contains(&e.code),
        "{e:?}"
    );
    assert_serving(&node);
}
