//! End-to-end tests: each test starts the real `infera node --dev` binary on its own
//! datadir and ports and drives it over JSON-RPC (HTTP and WebSocket).
//!
//! Run: `cargo test -p infera --test it` (add `-- --nocapture` to see node logs of
//! failures; set `INFERA_E2E_KEEP=1` to keep the datadir of a failed test).

mod abi;
mod http;
mod node;
mod wallet;
mod ws;

mod ai;
mod basics;
mod cli;
mod contracts;
mod dev_accounts;
mod errors;
mod fees;
mod logs;
mod metrics;
mod model_run;
mod network;
mod persistence;
mod pool;
mod transfers;
mod upload;

use alloy_primitives::{Address, B256, U256};
use serde_json::Value;

use crate::http::{Rpc, addr, qty, qty_u128, qty_u256};
use crate::wallet::{SignedTx, Wallet};

/// Sends `tx`, checks the returned hash, waits for and returns the receipt.
pub fn send_and_wait(rpc: &Rpc, tx: &SignedTx) -> Value {
    let hash = rpc
        .send_raw(&tx.raw)
        .unwrap_or_else(|e| panic!("eth_sendRawTransaction rejected a valid tx: {e:?}"));
    assert_eq!(
        hash, tx.hash,
        "eth_sendRawTransaction must return keccak256 of the raw tx"
    );
    let r = rpc.wait_receipt(hash);
    assert_eq!(
        r["transactionHash"],
        serde_json::json!(hash),
        "receipt transactionHash"
    );
    r
}

/// Sends `tx` and asserts the receipt has status 1.
pub fn send_ok(rpc: &Rpc, tx: &SignedTx) -> Value {
    let r = send_and_wait(rpc, tx);
    assert_eq!(r["status"], "0x1", "transaction failed: {r}");
    r
}

/// gasUsed * effectiveGasPrice of a receipt.
pub fn fee_paid(r: &Value) -> U256 {
    U256::from(qty(&r["gasUsed"])) * U256::from(qty_u128(&r["effectiveGasPrice"]))
}

pub fn block_of(r: &Value) -> u64 {
    qty(&r["blockNumber"])
}

/// Deploys `code` (creation code incl. constructor args) from `w` with `nonce`; checks
/// the receipt's contractAddress and returns it.
pub fn deploy(rpc: &Rpc, w: &Wallet, nonce: u64, code: Vec<u8>, gas: u64) -> (Address, Value) {
    let tx = w.tx(nonce, None, U256::ZERO, code, gas);
    let r = send_ok(rpc, &tx);
    let expected = w.address.create(nonce);
    assert_eq!(
        addr(&r["contractAddress"]),
        expected,
        "receipt contractAddress = sender.create(nonce)"
    );
    assert!(
        r["to"].is_null(),
        "creation receipt must have to = null: {r}"
    );
    (expected, r)
}

pub fn balance_u(rpc: &Rpc, a: Address, block: &str) -> U256 {
    qty_u256(&rpc.ok("eth_getBalance", serde_json::json!([a, block])))
}

pub fn h(v: &Value) -> B256 {
    http::b256(v)
}
