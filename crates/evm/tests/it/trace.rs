//! The struct-log tracer: its bounds (the response size, `limit`, the gas
//! cap and the deadline of `debug_traceCall`) and its defaults.

use std::time::Duration;

use alloy_primitives::{Address, Bytes, TxKind, address, hex};
use infera_evm::{
    CallRequest, Deadline, EthPrecompiles, EvmError, StructLogConfig, TraceError, TxStructTrace,
    trace_block, trace_call,
};
use infera_primitives::RecoveredTx;
use serde_json::Value;

use crate::common::*;

const GROWER: Address = address!("0x0000000000000000000000000000000000000a11");
/// The gas of each transaction of these tests.
const TX_GAS: u64 = 250_000;
/// A bound far below what the grower's trace with memory would take
/// (hundreds of megabytes).
const SMALL_LIMIT_BYTES: usize = 1 << 20;

/// Runtime: an endless loop that stores a word 1 KiB further on each round
/// (`i = 0; loop { mstore(i, i); i += 1024 }`), until out of gas: memory,
/// and with it each struct log's memory capture, grows every round.
fn memory_grower() -> Bytes {
    Bytes::from(hex!("6000" "5b" "80" "80" "52" "610400" "01" "6002" "56"))
}

fn state() -> MemState {
    MemState::default()
        .with_account(sender(), ONE_ETHER)
        .with_code(GROWER, memory_grower())
}

fn grow_tx(nonce: u64) -> RecoveredTx {
    eip1559(nonce, TxKind::Call(GROWER), 0, TX_GAS, Bytes::new())
}

fn trace(
    txs: &[RecoveredTx],
    logger: StructLogConfig,
    only: Option<usize>,
) -> Result<Vec<TxStructTrace>, TraceError> {
    let state = state();
    let cfg = config();
    let precompiles = EthPrecompiles::new(cfg.spec);
    trace_block(&state, cfg, block_env(), txs, precompiles, logger, only)
}

fn trace_one(logger: StructLogConfig) -> Result<TxStructTrace, TraceError> {
    trace(&[grow_tx(0)], logger, Some(0)).map(|mut traces| traces.remove(0))
}

/// The JSON the RPC answers a transaction's trace with.
fn json(trace: &TxStructTrace) -> String {
    format!(
        r#"{{"gas":{},"failed":{},"returnValue":"{}","structLogs":[{}]}}"#,
        trace.gas,
        trace.failed,
        trace.return_value,
        trace.struct_logs.join(",")
    )
}

fn parsed_logs(trace: &TxStructTrace) -> Vec<Value> {
    trace
        .struct_logs
        .iter()
        .map(|log| serde_json::from_str(log).unwrap())
        .collect()
}

#[test]
fn memory_capture_stops_at_the_byte_limit_with_a_clean_error() {
    let full = trace_one(StructLogConfig::default()).unwrap();
    assert!(full.failed, "the grower runs out of gas");
    let steps = full.struct_logs.len();

    let err = trace_one(StructLogConfig {
        enable_memory: true,
        max_bytes: Some(SMALL_LIMIT_BYTES),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(
        err.to_string().split(" (").next().unwrap(),
        format!("trace exceeds the response limit of {SMALL_LIMIT_BYTES} bytes")
    );
    assert!(
        err.to_string()
            .ends_with("use `limit`, or disable memory/stack/storage capture"),
        "{err}"
    );
    match err {
        TraceError::TooLarge { limit, bytes, logs } => {
            assert_eq!(limit, SMALL_LIMIT_BYTES);
            // The count never passes the bound: a log that would is refused
            // (and its memory not even copied) before it is kept.
            assert!(bytes <= SMALL_LIMIT_BYTES, "{bytes} bytes kept");
            assert!(
                logs > 0 && logs < steps / 10,
                "stopped after {logs} of {steps} steps"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn the_byte_limit_is_the_serialised_size_of_the_trace() {
    let trace = trace_one(StructLogConfig::default()).unwrap();
    let text = json(&trace);
    let _: Value = serde_json::from_str(&text).expect("the trace is valid JSON");
    let size = text.len();
    let bounded = |max: usize| {
        trace_one(StructLogConfig {
            max_bytes: Some(max),
            ..Default::default()
        })
    };
    assert!(matches!(
        bounded(size - 1),
        Err(TraceError::TooLarge { .. })
    ));
    // The count is exact but for the comma after the last log.
    assert_eq!(bounded(size + 1).unwrap(), trace);
}

#[test]
fn a_block_trace_counts_every_transaction_against_one_limit() {
    let txs = [grow_tx(0), grow_tx(1)];
    let first = trace(&txs, StructLogConfig::default(), Some(0)).unwrap();
    let size = json(&first[0]).len();
    let bound = StructLogConfig {
        max_bytes: Some(size * 3 / 2),
        ..Default::default()
    };
    // Each transaction's trace fits alone...
    assert_eq!(trace(&txs, bound, Some(0)).unwrap(), first);
    assert_eq!(trace(&txs, bound, Some(1)).unwrap().len(), 1);
    // ...but not both in one block trace.
    match trace(&txs, bound, None) {
        Err(TraceError::TooLarge { bytes, logs, .. }) => {
            assert!(bytes <= size * 3 / 2);
            assert!(logs > first[0].struct_logs.len(), "the second was begun");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let unbounded = trace(&txs, StructLogConfig::default(), None).unwrap();
    assert_eq!(unbounded.len(), 2);
}

#[test]
fn limit_keeps_that_many_logs_and_execution_goes_on() {
    let full = trace_one(StructLogConfig::default()).unwrap();
    let limited = trace_one(StructLogConfig {
        limit: Some(5),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(limited.struct_logs.len(), 5);
    assert_eq!(limited.struct_logs[..], full.struct_logs[..5]);
    assert_eq!((limited.gas, limited.failed), (full.gas, full.failed));
    assert_eq!(limited.gas, TX_GAS);
}

#[test]
fn memory_is_left_out_unless_asked_and_the_stack_is_kept() {
    let default = trace_one(StructLogConfig {
        limit: Some(20),
        ..Default::default()
    })
    .unwrap();
    let logs = parsed_logs(&default);
    assert!(logs.iter().all(|log| log.get("memory").is_none()));
    assert!(logs.iter().all(|log| log.get("stack").is_some()));
    assert_eq!(logs[0]["op"], "PUSH1");
    assert_eq!(logs[4]["op"], "MSTORE");
    assert_eq!(logs[4]["stack"], serde_json::json!(["0x0", "0x0", "0x0"]));

    let with_memory = trace_one(StructLogConfig {
        enable_memory: true,
        disable_stack: true,
        limit: Some(20),
        ..Default::default()
    })
    .unwrap();
    let logs = parsed_logs(&with_memory);
    assert!(logs.iter().all(|log| log.get("stack").is_none()));
    // Nothing before the first store; one word after it, 33 after the next
    // (offset 1024 = word 32).
    assert!(logs[4].get("memory").is_none());
    let words = |log: &Value| log["memory"].as_array().unwrap().len();
    assert_eq!(words(&logs[5]), 1);
    assert_eq!(logs[12]["op"], "MSTORE");
    assert_eq!(words(&logs[12]), 1);
    assert_eq!(words(&logs[13]), 33);
    assert_eq!(
        logs[13]["memory"][32],
        "0x0000000000000000000000000000000000000000000000000000000000000400"
    );
}

fn grow_call(gas: u64) -> CallRequest {
    CallRequest {
        from: Some(sender()),
        to: Some(GROWER),
        gas: Some(gas),
        ..Default::default()
    }
}

fn traced_call(
    req: CallRequest,
    logger: StructLogConfig,
    gas_cap: Option<u64>,
) -> Result<TxStructTrace, TraceError> {
    let state = state();
    let cfg = config();
    let precompiles = EthPrecompiles::new(cfg.spec);
    trace_call(&state, cfg, block_env(), req, precompiles, logger, gas_cap)
}

#[test]
fn trace_call_is_bounded_like_a_transaction_and_by_the_gas_cap() {
    let capped = traced_call(
        grow_call(1_000_000),
        StructLogConfig::default(),
        Some(TX_GAS),
    )
    .unwrap();
    assert!(capped.failed);
    assert_eq!(capped.gas, TX_GAS, "the cap lowered the request's gas");
    assert_eq!(capped, trace_one(StructLogConfig::default()).unwrap());

    let err = traced_call(
        grow_call(TX_GAS),
        StructLogConfig {
            enable_memory: true,
            max_bytes: Some(SMALL_LIMIT_BYTES),
            ..Default::default()
        },
        None,
    )
    .unwrap_err();
    assert!(matches!(err, TraceError::TooLarge { bytes, .. } if bytes <= SMALL_LIMIT_BYTES));
}

#[test]
fn a_passed_deadline_stops_the_trace_with_the_timeout_error() {
    let expired = StructLogConfig {
        deadline: Some(Deadline::after(Duration::ZERO)),
        ..Default::default()
    };
    let err = traced_call(grow_call(TX_GAS), expired, None).unwrap_err();
    assert!(
        matches!(err, TraceError::Evm(EvmError::Timeout { .. })),
        "{err:?}"
    );
    let err = trace_one(expired).unwrap_err();
    assert!(
        matches!(err, TraceError::Evm(EvmError::Timeout { .. })),
        "{err:?}"
    );
}
