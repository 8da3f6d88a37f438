//! The bounds of the executing methods: gas cap, deadline, and the gate that
//! lets few of them run at once while cheap methods keep being answered.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::{Arc, mpsc},
    time::Duration,
};

use alloy_primitives::{Address, TxKind, address};
use alloy_rpc_types_eth::TransactionRequest;
use infera_chainspec::ChainSpec;
use infera_primitives::SealedBlock;
use infera_rpc::{RpcConfig, RpcContext, RpcError};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxAdmission};
use jsonrpsee::types::ErrorObjectOwned;

/// `JUMPDEST PUSH1 0 JUMP`: loops until the gas runs out.
const LOOP: Address = address!("0x0000000000000000000000000000000000001007");
const EOA: Address = address!("0x00000000000000000000000000000000000beef1");
/// A block gas limit and call gas that a loop of 12 gas per turn would take
/// hours to use up.
const HUGE_GAS: u64 = 100_000_000_000;

/// The dev chain before Osaka (no EIP-7825 cap: only the node's bounds stop a
/// huge gas), with a huge block gas limit and the loop contract.
fn chain() -> ChainSpec {
    let mut genesis = serde_json::to_value(&ChainSpec::dev().genesis).unwrap();
    genesis["config"]
        .as_object_mut()
        .unwrap()
        .remove("osakaTime");
    genesis["gasLimit"] = format!("{HUGE_GAS:#x}").into();
    genesis["alloc"][LOOP.to_string()] =
        serde_json::json!({"balance": "0x0", "code": "0x5b600056"});
    ChainSpec::from_json(&genesis.to_string()).unwrap()
}

pub fn context(dir: &std::path::Path, config: RpcConfig) -> RpcContext {
    let chain = chain();
    let db = Database::open(&dir.join("db")).unwrap();
    let mut writer = db.writer().unwrap();
    writer.apply_state(0, &chain.genesis_state()).unwrap();
    let root = writer.state_root().unwrap();
    let genesis = SealedBlock::new(chain.genesis_header(root), Vec::new());
    writer.insert_block(&genesis, &[]).unwrap();
    writer.set_genesis_hash(genesis.hash).unwrap();
    writer.set_chain_id(chain.chain_id()).unwrap();
    writer.commit().unwrap();
    RpcContext::new(
        TxAdmission::standalone(db, Arc::new(chain), PoolConfig::default()),
        infera_precompiles::ModelCache::shared(),
        config,
    )
}

fn bounded(gas_cap: u64, timeout: Duration, max_heavy_calls: usize) -> RpcConfig {
    RpcConfig {
        gas_cap,
        evm_timeout: timeout,
        max_heavy_calls,
        ..RpcConfig::default()
    }
}

fn to(address: Address, gas: Option<u64>) -> TransactionRequest {
    TransactionRequest {
        to: Some(TxKind::Call(address)),
        gas,
        ..Default::default()
    }
}

fn expect_timeout<T: std::fmt::Debug>(result: Result<T, RpcError>, timeout: &str) {
    let error = result.expect_err("the loop must not finish");
    let message = error.to_string();
    assert_eq!(message, format!("execution aborted (timeout = {timeout})"));
    assert_eq!(
        ErrorObjectOwned::from(error).code(),
        infera_rpc::SERVER_ERROR_CODE
    );
}

#[test]
fn an_infinite_loop_stops_at_the_timeout_and_gives_back_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), bounded(0, Duration::from_millis(200), 1));
    // Returning at all is the point: the loop has gas for hours.
    expect_timeout(ctx.call(to(LOOP, Some(HUGE_GAS)), None), "200ms");
    assert_eq!(ctx.heavy_call_load(), (0, 0));
    // The slot is free again: the next heavy call runs at once.
    assert_eq!(
        ctx.estimate_gas(to(EOA, None), None).unwrap().to::<u64>(),
        21_000
    );
    expect_timeout(ctx.estimate_gas(to(LOOP, Some(HUGE_GAS)), None), "200ms");
    expect_timeout(
        ctx.create_access_list(to(LOOP, Some(HUGE_GAS)), None),
        "200ms",
    );
}

#[test]
fn a_huge_gas_is_lowered_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), bounded(1_000_000, Duration::from_secs(60), 1));
    let list = ctx
        .create_access_list(to(LOOP, Some(HUGE_GAS)), None)
        .unwrap();
    assert_eq!(list.gas_used.to::<u64>(), 1_000_000);
    let error = ctx.estimate_gas(to(LOOP, None), None).unwrap_err();
    assert!(error.to_string().contains("gas limit 1000000"), "{error}");
    let error = ctx.call(to(LOOP, Some(HUGE_GAS)), None).unwrap_err();
    assert!(error.to_string().contains("OutOfGas"), "{error}");
}

/// One HTTP/1.1 JSON-RPC request on its own connection; the response body.
pub fn post(addr: SocketAddr, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let start = response.find('{').expect("a JSON body");
    let end = response.rfind('}').expect("a JSON body");
    serde_json::from_str(&response[start..=end]).unwrap()
}

#[test]
fn with_one_slot_a_second_heavy_call_waits_and_cheap_calls_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), bounded(0, Duration::from_secs(3), 1));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let servers = runtime
        .block_on(infera_rpc::start_servers(
            ctx.clone(),
            Some("127.0.0.1:0".parse().unwrap()),
            None,
        ))
        .unwrap();
    let addr = servers.http_addr.unwrap();
    let looping = serde_json::json!([{"to": LOOP, "gas": format!("{HUGE_GAS:#x}")}, "latest"]);

    let (first_done, first) = mpsc::channel();
    let params = looping.clone();
    std::thread::spawn(move || first_done.send(post(addr, "eth_call", params)).unwrap());
    while ctx.heavy_call_load() != (1, 0) {
        std::thread::yield_now();
    }
    let (second_done, second) = mpsc::channel();
    std::thread::spawn(move || second_done.send(post(addr, "eth_call", looping)).unwrap());
    while ctx.heavy_call_load() != (1, 1) {
        std::thread::yield_now();
    }

    // The loop holds the only slot and the second call waits: cheap methods
    // are still answered.
    let number = post(addr, "eth_blockNumber", serde_json::json!([]));
    assert_eq!(number["result"], "0x0", "{number}");
    let chain_id = post(addr, "eth_chainId", serde_json::json!([]));
    assert!(chain_id["result"].is_string(), "{chain_id}");
    assert!(
        first.try_recv().is_err(),
        "the loop ended before the cheap calls were answered"
    );

    // Both heavy calls end with the timeout (the second one's wait counts).
    for response in [first.recv().unwrap(), second.recv().unwrap()] {
        assert_eq!(response["error"]["code"], -32000, "{response}");
        assert_eq!(
            response["error"]["message"], "execution aborted (timeout = 3s)",
            "{response}"
        );
    }
    assert_eq!(ctx.heavy_call_load(), (0, 0));
    runtime.block_on(servers.stop());
}
