use alloy_primitives::{Address, B256, U256};
use serde_json::json;

use crate::http::{b256, is_quantity, qty, qty_u128};
use crate::node::{CHAIN_ID, Node};
use crate::wallet::{DEV_ADDRESSES, ether};

#[test]
fn rpc_basics_and_genesis() {
    let node = Node::start();
    let rpc = &node.rpc;

    let v = rpc.ok("web3_clientVersion", json!([]));
    assert!(
        v.as_str().is_some_and(|s| !s.is_empty()),
        "web3_clientVersion: {v}"
    );
    assert_eq!(
        rpc.ok("net_version", json!([])),
        json!(CHAIN_ID.to_string())
    );
    // A dev node runs no peer-to-peer network: nothing listens for peers.
    assert_eq!(rpc.ok("net_listening", json!([])), json!(false));
    assert_eq!(rpc.ok("net_peerCount", json!([])), json!("0x0"));
    assert_eq!(rpc.ok("eth_chainId", json!([])), json!("0x181e"));
    assert_eq!(rpc.ok("eth_blockNumber", json!([])), json!("0x0"));
    assert_eq!(rpc.ok("eth_syncing", json!([])), json!(false));
    assert!(rpc.ok("eth_accounts", json!([])).is_array());

    // The ten mnemonic accounts hold 10,000 ETH each, at "latest", at block 0 and "earliest".
    for a in DEV_ADDRESSES {
        let a: Address = a.parse().unwrap();
        assert_eq!(
            rpc.balance(a, "latest"),
            ether(10_000),
            "genesis balance of {a}"
        );
        assert_eq!(
            rpc.balance(a, "0x0"),
            ether(10_000),
            "genesis balance of {a} at 0x0"
        );
        assert_eq!(
            rpc.balance(a, "earliest"),
            ether(10_000),
            "genesis balance of {a} at earliest"
        );
        assert_eq!(rpc.nonce(a, "latest"), 0);
        assert_eq!(rpc.nonce(a, "pending"), 0);
        assert_eq!(rpc.ok("eth_getCode", json!([a, "latest"])), json!("0x"));
    }
    let nobody = Address::repeat_byte(0x42);
    assert_eq!(
        rpc.ok("eth_getBalance", json!([nobody, "latest"])),
        json!("0x0")
    );
    assert_eq!(
        rpc.ok("eth_getStorageAt", json!([nobody, "0x0", "latest"])),
        json!(format!("0x{}", "0".repeat(64)))
    );

    // Genesis block.
    let g = rpc.block("0x0", false);
    assert_eq!(g["number"], "0x0");
    assert_eq!(b256(&g["parentHash"]), B256::ZERO);
    assert!(
        qty(&g["gasLimit"]) >= 60_000_000,
        "block gas limit {}",
        g["gasLimit"]
    );
    assert_eq!(g["gasUsed"], "0x0");
    assert_eq!(
        qty_u128(&g["baseFeePerGas"]),
        1_000_000_000,
        "initial base fee is 1 gwei"
    );
    assert_eq!(g["transactions"], json!([]));
    let gh = b256(&g["hash"]);
    assert_eq!(
        rpc.block_by_hash(gh, false),
        g,
        "eth_getBlockByHash(genesis) == eth_getBlockByNumber(0)"
    );
    assert_eq!(rpc.block("earliest", false), g);
    assert_eq!(rpc.block("latest", false), g);
    for k in [
        "number",
        "gasLimit",
        "gasUsed",
        "timestamp",
        "baseFeePerGas",
    ] {
        assert!(
            is_quantity(g[k].as_str().unwrap_or("")),
            "genesis {k} is not a canonical quantity: {}",
            g[k]
        );
    }
    assert_eq!(
        rpc.ok("eth_getBlockTransactionCountByNumber", json!(["0x0"])),
        json!("0x0")
    );
    assert_eq!(
        rpc.ok("eth_getBlockTransactionCountByHash", json!([gh])),
        json!("0x0")
    );

    // Unknown things are null, not errors.
    assert!(
        rpc.block("0x3e8", false).is_null(),
        "block 1000 does not exist"
    );
    assert!(rpc.block_by_hash(B256::repeat_byte(7), false).is_null());
    assert!(rpc.tx(B256::repeat_byte(7)).is_null());
    assert!(rpc.receipt(B256::repeat_byte(7)).is_null());

    // Fee suggestions are well-formed.
    let gp = qty_u128(&rpc.ok("eth_gasPrice", json!([])));
    assert!(gp > 0, "eth_gasPrice must be positive");
    let tip = rpc.ok("eth_maxPriorityFeePerGas", json!([]));
    assert!(
        is_quantity(tip.as_str().unwrap_or("")),
        "eth_maxPriorityFeePerGas: {tip}"
    );
    // A transaction priced at eth_gasPrice must be includable in the next block.
    assert!(
        U256::from(gp) >= U256::from(875_000_000u64),
        "eth_gasPrice {gp} below the next base fee"
    );
}
