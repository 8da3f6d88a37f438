use alloy_primitives::U256;
use serde_json::{Value, json};

use crate::http::{q, qty, qty_u128};
use crate::node::Node;
use crate::wallet::{TIP, Wallet};
use crate::{block_of, send_ok};

/// EIP-1559 base fee of the child of a block (elasticity 2, denominator 8).
fn next_base_fee(gas_used: u64, gas_limit: u64, base_fee: u128) -> u128 {
    let target = (gas_limit / 2) as u128;
    let used = gas_used as u128;
    if used == target {
        base_fee
    } else if used > target {
        base_fee + (base_fee * (used - target) / target / 8).max(1)
    } else {
        base_fee - base_fee * (target - used) / target / 8
    }
}

#[test]
fn base_fee_and_fee_history() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("fees/bob");
    for i in 0..3 {
        let r = send_ok(rpc, &alice.transfer(i, bob.address, U256::from(1)));
        assert_eq!(block_of(&r), i + 1);
    }
    assert_eq!(rpc.block_number(), 3);

    // Base fee follows EIP-1559 from the genesis' 1 gwei.
    let blocks: Vec<_> = (0..=3u64).map(|n| rpc.block(q(n), false)).collect();
    for n in 1..=3 {
        let (p, b) = (&blocks[n - 1], &blocks[n]);
        assert_eq!(
            qty_u128(&b["baseFeePerGas"]),
            next_base_fee(
                qty(&p["gasUsed"]),
                qty(&p["gasLimit"]),
                qty_u128(&p["baseFeePerGas"])
            ),
            "base fee of block {n}"
        );
    }
    assert_eq!(
        qty_u128(&blocks[1]["baseFeePerGas"]),
        875_000_000,
        "block 1 after an empty genesis"
    );

    // eth_feeHistory over the last 3 blocks.
    let fh = rpc.ok("eth_feeHistory", json!(["0x3", "latest", [25.0, 75.0]]));
    assert_eq!(qty(&fh["oldestBlock"]), 1, "{fh}");
    let base: Vec<u128> = fh["baseFeePerGas"]
        .as_array()
        .expect("baseFeePerGas")
        .iter()
        .map(qty_u128)
        .collect();
    assert_eq!(
        base.len(),
        4,
        "blockCount + 1 base fees (incl. the next block): {fh}"
    );
    for i in 0..3 {
        assert_eq!(
            base[i],
            qty_u128(&blocks[i + 1]["baseFeePerGas"]),
            "feeHistory baseFee[{i}]"
        );
    }
    let last = &blocks[3];
    assert_eq!(
        base[3],
        next_base_fee(
            qty(&last["gasUsed"]),
            qty(&last["gasLimit"]),
            qty_u128(&last["baseFeePerGas"])
        )
    );
    let ratios = fh["gasUsedRatio"].as_array().expect("gasUsedRatio");
    assert_eq!(ratios.len(), 3);
    for (i, r) in ratios.iter().enumerate() {
        let b = &blocks[i + 1];
        let expected = qty(&b["gasUsed"]) as f64 / qty(&b["gasLimit"]) as f64;
        assert!(
            (r.as_f64().unwrap() - expected).abs() < 1e-12,
            "gasUsedRatio[{i}] = {r}, expected {expected}"
        );
    }
    // Each block holds one tx whose effective tip is exactly TIP.
    let tip = json!(q(TIP));
    assert_eq!(
        fh["reward"],
        json!([[tip, tip], [tip, tip], [tip, tip]]),
        "reward percentiles"
    );

    // Without percentiles there is no reward field (or it is empty); a range ending at block 2.
    let fh = rpc.ok("eth_feeHistory", json!(["0x2", "0x2", []]));
    assert_eq!(qty(&fh["oldestBlock"]), 1);
    assert_eq!(fh["baseFeePerGas"].as_array().unwrap().len(), 3);
    assert_eq!(
        qty_u128(&fh["baseFeePerGas"][2]),
        qty_u128(&blocks[3]["baseFeePerGas"])
    );
    // Without percentiles, `reward` is omitted (geth) or holds only empty lists.
    let reward_ok = match fh.get("reward") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.iter().all(|r| r == &json!([])),
        _ => false,
    };
    assert!(reward_ok, "reward without percentiles: {fh}");

    // eth_gasPrice covers the next base fee.
    let gp = qty_u128(&rpc.ok("eth_gasPrice", json!([])));
    assert!(
        gp >= base[3],
        "eth_gasPrice {gp} < next base fee {}",
        base[3]
    );
}

/// Receipts carry `blockTimestamp` and, from Cancun on, `blobGasPrice` (as
/// anvil, reth and erigon return them), and `eth_feeHistory`'s blob base
/// fees agree with `eth_blobBaseFee` and with the receipts.
#[test]
fn receipts_and_fee_history_carry_the_blob_fee_and_timestamp() {
    let node = Node::start();
    let rpc = &node.rpc;
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("fees/blob-bob");
    let r = send_ok(rpc, &alice.transfer(0, bob.address, U256::from(1)));
    let number = block_of(&r);
    let block = rpc.block(q(number), false);
    assert_eq!(r["blockTimestamp"], block["timestamp"], "{r}");
    assert_eq!(
        r["logs"].as_array().map(Vec::len),
        Some(0),
        "a transfer logs nothing"
    );
    let blob_fee = qty_u128(&r["blobGasPrice"]);
    assert!(blob_fee >= 1, "{r}");
    assert!(r.get("blobGasUsed").is_none_or(Value::is_null), "{r}");
    let receipts = rpc.ok("eth_getBlockReceipts", json!([q(number)]));
    assert_eq!(receipts[0], r);

    let fh = rpc.ok("eth_feeHistory", json!(["0x1", "latest", []]));
    let blob_fees: Vec<u128> = fh["baseFeePerBlobGas"]
        .as_array()
        .expect("baseFeePerBlobGas")
        .iter()
        .map(qty_u128)
        .collect();
    assert_eq!(blob_fees.len(), 2, "{fh}");
    assert_eq!(blob_fees[0], blob_fee, "the block's own blob fee: {fh}");
    assert_eq!(
        blob_fees[1],
        qty_u128(&rpc.ok("eth_blobBaseFee", json!([]))),
        "the next block's blob fee is eth_blobBaseFee: {fh}"
    );
    assert_eq!(fh["blobGasUsedRatio"], json!([0.0]), "{fh}");
}
