//! The bounds of RPC executions: the gas cap, and the deadline that stops the
//! interpreter (in loops, and before each precompile call) and the whole gas
//! search of an estimate.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use alloy_primitives::{Address, Bytes, U256, address};
use infera_evm::{
    CallLimits, CallOutcome, CallRequest, Deadline, EthPrecompiles, EvmError, ExecutionConfig,
    Simulator, SpecId, call_with_limits, create_access_list, estimate_gas_with_limits,
    estimate_gas_with_precompiles,
};
use revm::{
    context::Cfg,
    context_interface::ContextTr,
    handler::PrecompileProvider,
    interpreter::{CallInputs, InterpreterResult},
    primitives::AddressSet,
};

use crate::common::*;

/// `JUMPDEST PUSH1 0 JUMP`: loops until the gas runs out.
const LOOP: Address = address!("0x0000000000000000000000000000000000001007");
/// Calls the identity precompile ten times in a row, without a jump.
const TEN_CALLS: Address = address!("0x000000000000000000000000000000000000ca11");
/// Calls the identity precompile once, then reverts unless a million gas is
/// left: it needs far more gas than it uses, so the estimate must search.
const NEEDS_A_MILLION: Address = address!("0x000000000000000000000000000000000000ca01");
const IDENTITY: Address = address!("0x0000000000000000000000000000000000000004");
/// How long the test's identity precompile takes, standing for an inference.
const SLOW_PRECOMPILE: Duration = Duration::from_millis(40);
/// Gas that a loop of 12 gas per turn would take hours to use up.
const HUGE_GAS: u64 = 100_000_000_000;

fn calls_identity(times: usize) -> Bytes {
    // STATICCALL(gas, 0x04, 0, 0, 0, 0) then POP, `times` over; STOP.
    let one = alloy_primitives::hex!("60006000600060006004 5afa50");
    let mut code: Vec<u8> = one.repeat(times);
    code.push(0x00);
    code.into()
}

fn needs_a_million() -> Bytes {
    let mut code = calls_identity(1).to_vec();
    code.pop();
    // GAS PUSH3 1000000 GT PUSH1 <revert> JUMPI STOP; revert: JUMPDEST REVERT(0, 0)
    code.extend(alloy_primitives::hex!(
        "5a 620f4240 11 6017 57 00 5b 60006000fd"
    ));
    assert_eq!(code[0x17], 0x5b, "the jump destination moved");
    code.into()
}

fn state() -> MemState {
    MemState::default()
        .with_account(sender(), ONE_ETHER)
        .with_code(LOOP, Bytes::from_static(&[0x5b, 0x60, 0x00, 0x56]))
        .with_code(TEN_CALLS, calls_identity(10))
        .with_code(NEEDS_A_MILLION, needs_a_million())
}

/// Prague: no EIP-7825 cap, so only our bounds stop a huge gas limit.
fn prague() -> ExecutionConfig {
    ExecutionConfig {
        spec: SpecId::PRAGUE,
        ..config()
    }
}

fn big_block() -> infera_evm::BlockEnvInput {
    infera_evm::BlockEnvInput {
        gas_limit: HUGE_GAS,
        ..block_env()
    }
}

fn to(address: Address, gas: Option<u64>) -> CallRequest {
    CallRequest {
        from: Some(sender()),
        to: Some(address),
        gas,
        ..Default::default()
    }
}

fn within(timeout: Duration) -> CallLimits {
    CallLimits {
        gas_cap: None,
        deadline: Some(Deadline::after(timeout)),
    }
}

/// The Ethereum precompiles, with an identity precompile that sleeps and
/// counts its runs.
#[derive(Debug, Clone)]
struct SlowIdentity {
    eth: EthPrecompiles,
    runs: Arc<AtomicUsize>,
}

impl SlowIdentity {
    fn new() -> Self {
        Self {
            eth: EthPrecompiles::new(SpecId::PRAGUE),
            runs: Arc::default(),
        }
    }
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for SlowIdentity {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.eth, spec)
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address == IDENTITY {
            self.runs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(SLOW_PRECOMPILE);
        }
        <EthPrecompiles as PrecompileProvider<CTX>>::run(&mut self.eth, context, inputs)
    }

    fn warm_addresses(&self) -> &AddressSet {
        <EthPrecompiles as PrecompileProvider<CTX>>::warm_addresses(&self.eth)
    }
}

fn assert_timeout<T: std::fmt::Debug>(result: Result<T, EvmError>, timeout: Duration) {
    match result {
        Err(EvmError::Timeout { timeout: reported }) => {
            assert_eq!(reported, timeout);
            assert_eq!(
                EvmError::Timeout { timeout }.to_string(),
                format!("execution aborted (timeout = {timeout:?})")
            );
        }
        other => panic!("expected the timeout, got {other:?}"),
    }
}

#[test]
fn an_infinite_loop_with_a_huge_gas_stops_at_the_deadline() {
    let timeout = Duration::from_millis(50);
    let result = call_with_limits(
        state(),
        prague(),
        big_block(),
        to(LOOP, Some(HUGE_GAS)),
        EthPrecompiles::new(SpecId::PRAGUE),
        within(timeout),
    );
    // Returning at all is the point: without the deadline this loop runs for hours.
    assert_timeout(result, timeout);
}

#[test]
fn an_infinite_loop_with_a_huge_gas_stops_at_the_gas_cap() {
    let limits = CallLimits {
        gas_cap: Some(1_000_000),
        deadline: None,
    };
    let outcome = call_with_limits(
        state(),
        prague(),
        big_block(),
        to(LOOP, Some(HUGE_GAS)),
        EthPrecompiles::new(SpecId::PRAGUE),
        limits,
    )
    .unwrap();
    match outcome {
        CallOutcome::Halt { gas_used, .. } => assert_eq!(gas_used, 1_000_000),
        other => panic!("expected out of gas at the cap, got {other:?}"),
    }
}

#[test]
fn no_precompile_runs_after_the_deadline() {
    let precompiles = SlowIdentity::new();
    let runs = precompiles.runs.clone();
    let timeout = SLOW_PRECOMPILE * 5 / 2;
    let result = call_with_limits(
        state(),
        prague(),
        block_env(),
        to(TEN_CALLS, None),
        precompiles,
        within(timeout),
    );
    assert_timeout(result, timeout);
    // The calls follow each other without a jump: only the check before each
    // call frame can have stopped them.
    let runs = runs.load(Ordering::SeqCst);
    assert!(
        runs < 10,
        "{runs} slow precompile runs despite the deadline"
    );
}

#[test]
fn one_deadline_bounds_the_whole_gas_search() {
    // Each run of the search takes one slow precompile call: the search
    // needs many, and the deadline leaves time for about two.
    let precompiles = SlowIdentity::new();
    let runs = precompiles.runs.clone();
    let timeout = SLOW_PRECOMPILE * 5 / 2;
    let result = estimate_gas_with_limits(
        state(),
        prague(),
        block_env(),
        to(NEEDS_A_MILLION, None),
        precompiles,
        within(timeout),
    );
    assert_timeout(result, timeout);
    assert!(runs.load(Ordering::SeqCst) < 5);
}

#[test]
fn an_estimate_starts_at_the_gas_cap() {
    let limits = CallLimits {
        gas_cap: Some(2_000_000),
        deadline: None,
    };
    let error = estimate_gas_with_limits(
        state(),
        prague(),
        big_block(),
        to(LOOP, None),
        EthPrecompiles::new(SpecId::PRAGUE),
        limits,
    )
    .unwrap_err();
    assert!(error.to_string().contains("gas limit 2000000"), "{error}");
}

#[test]
fn the_estimate_tolerance_saves_runs() {
    let count = |tolerant: bool| {
        let precompiles = SlowIdentity::new();
        let runs = precompiles.runs.clone();
        let gas = if tolerant {
            estimate_gas_with_limits(
                state(),
                prague(),
                block_env(),
                to(NEEDS_A_MILLION, None),
                precompiles,
                CallLimits::default(),
            )
        } else {
            estimate_gas_with_precompiles(
                state(),
                prague(),
                block_env(),
                to(NEEDS_A_MILLION, None),
                precompiles,
            )
        }
        .unwrap();
        (gas, runs.load(Ordering::SeqCst))
    };
    let (exact, exact_runs) = count(false);
    let (tolerant, tolerant_runs) = count(true);
    assert!(tolerant >= exact, "{tolerant} below the least gas {exact}");
    assert!(
        u128::from(tolerant) * 985 < u128::from(exact) * 1_000,
        "{tolerant} more than 1.5% above {exact}"
    );
    assert!(
        tolerant_runs < exact_runs
            && tolerant_runs <= 1 + infera_evm::MAX_ESTIMATE_GAS_SEARCH_RUNS as usize,
        "{tolerant_runs} runs (exact search: {exact_runs})"
    );
}

#[test]
fn an_access_list_past_its_deadline_is_not_built() {
    let timeout = Duration::from_millis(50);
    let result = create_access_list(
        state(),
        prague(),
        big_block(),
        to(LOOP, Some(HUGE_GAS)),
        EthPrecompiles::new(SpecId::PRAGUE),
        within(timeout),
    );
    assert_timeout(result, timeout);
}

#[test]
fn a_simulation_stops_at_its_deadline() {
    let state = state();
    let mut sim = Simulator::new(&state, prague(), EthPrecompiles::new(SpecId::PRAGUE), false);
    let timeout = Duration::from_millis(50);
    sim.set_deadline(Some(Deadline::after(timeout)));
    sim.begin_block(SpecId::PRAGUE, big_block()).unwrap();
    let tx = infera_evm::TxEnv {
        caller: sender(),
        gas_limit: HUGE_GAS,
        kind: alloy_primitives::TxKind::Call(LOOP),
        chain_id: Some(CHAIN_ID),
        value: U256::ZERO,
        ..Default::default()
    };
    assert_timeout(sim.execute(tx), timeout);
}
