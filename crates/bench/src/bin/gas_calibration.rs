//! Gas calibration of the inference precompile (`precompiles/src/gas.rs`).
//!
//! ```text
//! cargo run --release -p infera-bench --bin gas-calibration [-- --quick]
//! ```
//!
//! Fills a 60M-gas block with inference calls of one model (the digits demo
//! model, a dense 1024x512 layer, a 3x3 convolution 128->128 on 7x7) and a
//! block with ERC-20 transfers to fresh recipients, executes each with the
//! node's `BlockExecutor` and `InferaPrecompiles` (CPU reference, one thread)
//! over an in-memory state, and prints the time per block and the ratio to
//! the ERC-20 block. The target: every inference block at most 2x the ERC-20
//! block. Execution only (no state root, no MDBX write): ERC-20 blocks would
//! only get slower with those, so the ratio printed is the conservative one.
//! Also prints the time to decode a model per byte (a cache miss), which the
//! per-model-byte gas covers.

#[path = "../chain.rs"]
#[allow(dead_code)]
mod chain;

#[path = "../../../../kernels/tests/it/cases.rs"]
mod cases;

#[path = "../adversarial.rs"]
mod adversarial;

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::SolCall;
use eyre::{Result, ensure, eyre};
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, SpecId};
use infera_kernels::{DType, Kernels, Model, cpu::FastLevel, model::Node};
use infera_precompiles::{
    InferaPrecompiles, ModelCache,
    abi::{IInference, IModelRegistry, INFERENCE_ADDRESS, MODEL_REGISTRY_ADDRESS},
    gas,
};
use infera_primitives::{Account, BlockNumber, RecoveredTx, StateChanges, StateReader};

use chain::{Key, Unsigned};

/// Gas of the measured blocks (the dev chain's block gas limit).
const BLOCK_GAS: u64 = 60_000_000;

#[derive(Default)]
struct MemState {
    accounts: HashMap<Address, Account>,
    storage: HashMap<(Address, U256), U256>,
    code: HashMap<B256, Bytes>,
}

impl MemState {
    fn apply(&mut self, changes: &StateChanges) {
        for (hash, code) in &changes.contracts {
            self.code.insert(*hash, code.clone());
        }
        for (address, change) in &changes.accounts {
            if change.storage_wiped || change.info.is_none() {
                self.storage.retain(|(a, _), _| a != address);
            }
            match change.info {
                Some(info) => self.accounts.insert(*address, info),
                None => self.accounts.remove(address),
            };
            for (slot, value) in &change.storage {
                self.storage.insert((*address, *slot), *value);
            }
        }
    }
}

impl StateReader for MemState {
    type Error = Infallible;
    fn account(&self, address: Address) -> Result<Option<Account>, Infallible> {
        Ok(self.accounts.get(&address).copied())
    }
    fn storage(&self, address: Address, slot: U256) -> Result<U256, Infallible> {
        Ok(self
            .storage
            .get(&(address, slot))
            .copied()
            .unwrap_or_default())
    }
    fn code_by_hash(&self, hash: B256) -> Result<Option<Bytes>, Infallible> {
        Ok(self.code.get(&hash).cloned())
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, Infallible> {
        Ok(Some(keccak256(number.to_be_bytes())))
    }
}

fn env(number: u64, gas_limit: u64) -> BlockEnvInput {
    BlockEnvInput {
        number,
        timestamp: 1_800_000_000 + number,
        beneficiary: chain::fresh_address("coinbase", 0),
        gas_limit,
        base_fee_per_gas: 7,
        ..Default::default()
    }
}

struct Filled {
    txs: usize,
    gas: u64,
    best: Duration,
}

/// Execute `txs` in one block of `BLOCK_GAS` until it is full, `rounds` times
/// from the same state; the best time of the execution loop.
fn fill(
    state: &MemState,
    models: &Arc<ModelCache>,
    txs: &[RecoveredTx],
    rounds: usize,
) -> Result<Filled> {
    let cfg = ExecutionConfig {
        chain_id: chain::CHAIN_ID,
        spec: SpecId::OSAKA,
    };
    let mut best = Duration::MAX;
    let mut result = (0, 0);
    for _ in 0..rounds {
        let precompiles = InferaPrecompiles::new(cfg.spec, models.clone());
        let mut executor =
            BlockExecutor::with_precompiles(state, cfg, env(2, BLOCK_GAS), precompiles)?;
        let start = Instant::now();
        let mut count = 0;
        for tx in txs {
            match executor.execute_transaction(tx) {
                Ok(receipt) => {
                    ensure!(receipt.status(), "a calibration transaction failed");
                    count += 1;
                }
                Err(EvmError::InvalidTransaction(
                    infera_evm::InvalidTransaction::GasLimitAboveBlockRemaining { .. },
                )) => break,
                Err(other) => return Err(eyre!("transaction {count}: {other}")),
            }
        }
        best = best.min(start.elapsed());
        result = (count, executor.gas_used());
    }
    // Full up to less than one transaction (times are scaled to BLOCK_GAS).
    ensure!(
        result.1 > BLOCK_GAS / 2,
        "block not filled: {} gas",
        result.1
    );
    Ok(Filled {
        txs: result.0,
        gas: result.1,
        best,
    })
}

fn single_op_model(op: infera_kernels::Op, input: &infera_kernels::Tensor, zp: i8) -> Model {
    Model::new(
        input.info(),
        0,
        vec![Node {
            op,
            inputs: vec![0],
            zero_point: zp,
            scale_bits: 0,
        }],
        1,
    )
    .expect("a valid calibration model")
}

/// Calldata gas of a transaction: EIP-2028 standard cost and the EIP-7623 floor.
fn calldata_gas(data: &[u8]) -> (u64, u64) {
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    let nonzero = data.len() as u64 - zeros;
    (
        21_000 + 16 * nonzero + 4 * zeros,
        21_000 + 10 * (zeros + 4 * nonzero),
    )
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--adversarial") {
        return adversarial_main();
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 5 };
    println!(
        "gas calibration of the inference precompile ({}; {} round(s) per block, best taken)",
        if cfg!(debug_assertions) {
            "DEBUG build: use --release"
        } else {
            "release build"
        },
        rounds
    );

    // Models.
    let mut rng = cases::Rng(7);
    let digits_bytes = include_bytes!("../../../../kernels/models/digits/digits.infera").to_vec();
    let (op, ins, zp) = cases::dense(&mut rng, 1, 1024, 512, DType::I8);
    let dense = single_op_model(op, &ins[0], zp);
    let dense_input = ins[0].to_bytes();
    let (op, ins, zp) = cases::conv(
        &mut rng,
        1,
        128,
        [7, 7],
        128,
        [3, 3],
        [1, 1],
        [1, 1],
        [1, 1, 1, 1],
        1,
        DType::I8,
    );
    let conv = single_op_model(op, &ins[0], zp);
    let conv_input = ins[0].to_bytes();
    let digits = Model::decode(&digits_bytes)?;
    let digits_input: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) % 100).collect();
    let workloads: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("digits MLP (6.5k MACs)", digits.encode(), digits_input),
        ("dense 1024x512 (0.5M MACs)", dense.encode(), dense_input),
        (
            "conv 3x3 128->128 @7x7 (7M MACs)",
            conv.encode(),
            conv_input,
        ),
    ];

    // Setup block (Prague: no per-transaction gas cap): the ERC-20 and the
    // models, registered through the shared cache so the first round is warm.
    let models = ModelCache::shared();
    let portable_models = Arc::new(ModelCache::default().with_kernels(Kernels::Portable));
    let encoded: Vec<Vec<u8>> = workloads
        .iter()
        .map(|(_, bytes, _)| bytes.clone())
        .collect();
    let chain = setup_chain(&encoded, models.clone())?;
    ensure!(
        chain.admitted.iter().all(|a| *a),
        "the registry refused a calibration model"
    );
    let state = &chain.state;

    // ERC-20 block: transfers from the deployer to fresh recipients.
    let transfers = chain.erc20_transfers();
    let erc20 = fill(state, &models, &transfers, rounds)?;
    let per_gas = |f: &Filled| f.best.as_secs_f64() * 1e9 / f.gas as f64;
    let scaled_ms = |f: &Filled| per_gas(f) * BLOCK_GAS as f64 / 1e6;
    println!();
    println!(
        "| block of {BLOCK_GAS} gas | txs | gas used | ms per block (scaled to {BLOCK_GAS}) | ns/gas | ratio to ERC-20 | portable kernels: ms | portable: ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| ERC-20 transfers (fresh recipients) | {} | {} | {:.1} | {:.2} | 1.00 | - | - |",
        erc20.txs,
        erc20.gas,
        scaled_ms(&erc20),
        per_gas(&erc20)
    );

    let mut decode_rows = Vec::new();
    for (name, bytes, input) in &workloads {
        let model = Model::decode(bytes)?;
        let call = InferenceCall::new(&model, bytes, input);
        let (call_gas, gas_limit) = (call.call_gas, call.gas_limit);
        let txs = chain.fill_with(&call);
        let filled = fill(state, &models, &txs, rounds)?;
        // The same block on the portable reference kernels (what a node
        // without AVX2 runs): gas must be priced for this one.
        let portable = fill(state, &portable_models, &txs, rounds)?;
        println!(
            "| {name}: {call_gas} gas per call, tx {gas_limit} | {} | {} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} |",
            filled.txs,
            filled.gas,
            scaled_ms(&filled),
            per_gas(&filled),
            per_gas(&filled) / per_gas(&erc20),
            scaled_ms(&portable),
            per_gas(&portable) / per_gas(&erc20)
        );
        // A cache miss: decoding the model from its bytes.
        let start = Instant::now();
        let mut n = 0u32;
        while n < 3 || start.elapsed() < Duration::from_millis(200) {
            std::hint::black_box(Model::decode(bytes)?);
            n += 1;
        }
        let decode = start.elapsed().as_secs_f64() / f64::from(n);
        // What every call pays towards a cold load.
        let cold_gas = gas::cold_load_gas(&model.cost(), bytes.len() as u64);
        decode_rows.push((name, bytes.len(), decode, cold_gas));
    }
    println!();
    println!(
        "| model decode (cache miss) | bytes | us | ns/byte | gas-equivalent at the ERC-20 rate, per byte | cold-load gas charged per byte |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, len, secs, cold_gas) in decode_rows {
        let ns_per_byte = secs * 1e9 / len as f64;
        println!(
            "| {name} | {len} | {:.1} | {:.3} | {:.3} | {:.3} |",
            secs * 1e6,
            ns_per_byte,
            ns_per_byte / per_gas(&erc20),
            cold_gas as f64 / len as f64
        );
    }
    println!();
    println!(
        "constants: INFER_BASE_GAS {} INFER_LOAD_GAS {} INFER_NODE_GAS {} INFER_CHANNEL_GAS {} INFER_GAS_PER_KMAC {} INFER_GAS_PER_KELEM {} INFER_GAS_PER_MODEL_KIB {} INFER_GAS_PER_PREPARED_KIB {} INFER_GAS_PER_IO_BYTE {}",
        gas::INFER_BASE_GAS,
        gas::INFER_LOAD_GAS,
        gas::INFER_NODE_GAS,
        gas::INFER_CHANNEL_GAS,
        gas::INFER_GAS_PER_KMAC,
        gas::INFER_GAS_PER_KELEM,
        gas::INFER_GAS_PER_MODEL_KIB,
        gas::INFER_GAS_PER_PREPARED_KIB,
        gas::INFER_GAS_PER_IO_BYTE
    );
    Ok(())
}

/// The per-transaction gas cap of Osaka (EIP-7825), which the dev chain runs.
const TX_GAS_CAP: u64 = 1 << 24;

/// The calibration chain: state, senders, deployer, token, and per model
/// whether the registry admitted it.
struct CalibrationChain {
    state: MemState,
    senders: Vec<Key>,
    deployer: Key,
    token: Address,
    admitted: Vec<bool>,
}

/// State with funded senders, the ERC-20 and `models` registered (Prague: no
/// per-transaction cap for the setup) through `cache`.
fn setup_chain(models: &[Vec<u8>], cache: Arc<ModelCache>) -> Result<CalibrationChain> {
    let deployer = chain::key(u64::MAX);
    let senders: Vec<Key> = (0..16).map(chain::key).collect();
    let mut state = MemState::default();
    for key in senders.iter().chain([&deployer]) {
        state.accounts.insert(
            key.address,
            Account::with_balance(U256::from(10).pow(U256::from(30))),
        );
    }
    let mut setup = vec![Unsigned::new(
        deployer,
        0,
        TxKind::Create,
        U256::ZERO,
        5_000_000,
        chain::erc20_creation_code()?,
    )];
    for (i, bytes) in models.iter().enumerate() {
        let call = IModelRegistry::registerCall {
            model: bytes.clone().into(),
        }
        .abi_encode();
        setup.push(Unsigned::new(
            deployer,
            1 + i as u64,
            TxKind::Call(MODEL_REGISTRY_ADDRESS),
            U256::ZERO,
            gas::register_gas(bytes.len() as u64) + 21_000 + 40 * call.len() as u64,
            call.into(),
        ));
    }
    let setup = chain::sign_all(setup);
    let cfg = ExecutionConfig {
        chain_id: chain::CHAIN_ID,
        spec: SpecId::PRAGUE,
    };
    let precompiles = InferaPrecompiles::new(cfg.spec, cache);
    let mut executor =
        BlockExecutor::with_precompiles(&state, cfg, env(1, u64::MAX / 4), precompiles)?;
    let mut admitted = Vec::new();
    for (i, tx) in setup.iter().enumerate() {
        let receipt = executor.execute_transaction(tx)?;
        if i == 0 {
            ensure!(receipt.status(), "ERC-20 deployment failed");
        } else {
            admitted.push(receipt.status());
        }
    }
    let changes = executor.finish().changes;
    state.apply(&changes);
    let token = deployer.address.create(0);
    Ok(CalibrationChain {
        state,
        senders,
        deployer,
        token,
        admitted,
    })
}

impl CalibrationChain {
    /// 2,000 signed ERC-20 transfers from the deployer to fresh recipients
    /// (more than a 60 M-gas block holds), nonces after the setup's.
    fn erc20_transfers(&self) -> Vec<RecoveredTx> {
        let first = 1 + self.admitted.len() as u64;
        let transfers = (0..2_000u64)
            .map(|i| {
                Unsigned::new(
                    self.deployer,
                    first + i,
                    TxKind::Call(self.token),
                    U256::ZERO,
                    chain::ERC20_GAS,
                    chain::erc20_transfer(chain::fresh_address("recipient", i), U256::from(1)),
                )
            })
            .collect();
        chain::sign_all(transfers)
    }

    /// Enough signed transactions of `call` to fill a block of `BLOCK_GAS`,
    /// the senders taken round-robin.
    fn fill_with(&self, call: &InferenceCall) -> Vec<RecoveredTx> {
        let count = (BLOCK_GAS / call.gas_limit + 1) as usize;
        let senders = &self.senders;
        let txs = (0..count)
            .map(|i| {
                Unsigned::new(
                    senders[i % senders.len()],
                    (i / senders.len()) as u64,
                    TxKind::Call(INFERENCE_ADDRESS),
                    U256::ZERO,
                    call.gas_limit,
                    call.data.clone().into(),
                )
            })
            .collect();
        chain::sign_all(txs)
    }
}

/// One `infer` call of a model, straight to the precompile: its calldata, the
/// precompile's gas, and the transaction's gas limit.
struct InferenceCall {
    data: Vec<u8>,
    call_gas: u64,
    gas_limit: u64,
}

impl InferenceCall {
    fn new(model: &Model, bytes: &[u8], input: &[u8]) -> Self {
        let inference_gas = gas::inference_gas(&model.cost(), bytes.len() as u64);
        let call_gas = gas::inference_call_gas(
            inference_gas,
            input.len() as u64,
            model.output_spec().byte_len() as u64,
        );
        let data = IInference::inferCall {
            id: keccak256(bytes),
            input: input.to_vec().into(),
        }
        .abi_encode();
        let (standard, floor) = calldata_gas(&data);
        InferenceCall {
            gas_limit: (standard + call_gas).max(floor),
            call_gas,
            data,
        }
    }
}

/// `gas-calibration --adversarial`: the worst block an attacker can build
/// from admitted models, against the ERC-20 block of the same gas.
fn adversarial_main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = arg("--seed", 20_261_207);
    let random = arg("--random", 24) as usize;
    let rounds = arg("--rounds", 2) as usize;
    let filter = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    println!(
        "adversarial gas search ({}; seed {seed}, {random} random graphs, {rounds} round(s) per block, best taken; fast kernels here: {})",
        if cfg!(debug_assertions) {
            "DEBUG build: use --release"
        } else {
            "release build"
        },
        infera_kernels::cpu::fast_kernels().unwrap_or("none")
    );
    let mut cases = adversarial::cases(seed, random);
    if let Some(f) = &filter {
        cases.retain(|c| c.name.contains(f.as_str()));
    }
    let encoded: Vec<Vec<u8>> = cases.iter().map(|c| c.model.encode()).collect();
    // Registered through a cache that keeps nothing, so no path starts warm.
    let chain = setup_chain(&encoded, Arc::new(ModelCache::new(0, 0)))?;
    let state = &chain.state;

    // Every kernel path a node may take: each fast level this CPU has, capped
    // in turn, and the portable kernels (no packing at all, as on a CPU
    // without AVX2). Each is timed with a warm cache and with one that keeps
    // nothing, so every call loads and decodes its model.
    let fast = infera_kernels::cpu::fast_kernels().unwrap_or("");
    let mut paths: Vec<(&str, FastLevel, Kernels)> = Vec::new();
    if fast.contains("amx") {
        paths.push(("amx", FastLevel::All, Kernels::Best));
    }
    if fast.contains("avxvnni") {
        paths.push(("avx-vnni", FastLevel::AvxVnni, Kernels::Best));
    }
    if fast.contains("avx2") {
        paths.push(("avx2", FastLevel::Avx2, Kernels::Best));
    }
    paths.push(("portable", FastLevel::None, Kernels::Portable));
    let warm: Vec<Arc<ModelCache>> = paths
        .iter()
        .map(|(_, _, kernels)| Arc::new(ModelCache::default().with_kernels(*kernels)))
        .collect();
    let warm_best = warm[0].clone();
    let transfers = chain.erc20_transfers();
    // The baseline is measured before and after the cases and the faster
    // run kept: a busy machine slows it and would flatter every ratio.
    let mut erc20 = fill(state, &warm_best, &transfers, rounds.max(5))?;
    let per_gas = |f: &Filled| f.best.as_secs_f64() * 1e9 / f.gas as f64;
    println!(
        "ERC-20 block: {} transfers, {} gas, {:.2} ms, {:.3} ns/gas",
        erc20.txs,
        erc20.gas,
        erc20.best.as_secs_f64() * 1e3,
        per_gas(&erc20)
    );
    let mut skipped: Vec<String> = Vec::new();
    // Per admitted case: its name, its table cells, and its blocks per path.
    let mut results: Vec<(&str, String, Vec<Filled>)> = Vec::new();
    for ((case, bytes), admitted) in cases.iter().zip(&encoded).zip(&chain.admitted) {
        let call = InferenceCall::new(&case.model, bytes, &case.input);
        let (call_gas, gas_limit) = (call.call_gas, call.gas_limit);
        let decoded = case.model.heap_bytes();
        if !admitted {
            skipped.push(format!(
                "| {} | {} | {call_gas} | {decoded} | refused by the registry | | | |",
                case.name,
                bytes.len()
            ));
            continue;
        }
        if gas_limit > TX_GAS_CAP {
            // Admitted but uncallable: a trap for its uploader, no danger to a block.
            skipped.push(format!(
                "| {} | {} | {call_gas} | {decoded} | admitted, but a call needs {gas_limit} gas, over the per-transaction cap | | | |",
                case.name,
                bytes.len()
            ));
            continue;
        }
        let txs = chain.fill_with(&call);
        let mut filled = Vec::new();
        for ((_, level, kernels), warm) in paths.iter().zip(&warm) {
            infera_kernels::cpu::limit_fast_kernels(*level);
            let cold = Arc::new(ModelCache::new(0, 0).with_kernels(*kernels));
            filled.push(fill(state, warm, &txs, rounds + 1)?);
            filled.push(fill(state, &cold, &txs, rounds)?);
        }
        infera_kernels::cpu::limit_fast_kernels(FastLevel::All);
        results.push((
            &case.name,
            format!("{} | {call_gas} | {decoded}", bytes.len()),
            filled,
        ));
    }
    let again = fill(state, &warm_best, &transfers, rounds.max(5))?;
    if again.best < erc20.best {
        erc20 = again;
    }
    println!(
        "ERC-20 block (faster of the runs before and after): {:.2} ms, {:.3} ns/gas",
        erc20.best.as_secs_f64() * 1e3,
        per_gas(&erc20)
    );
    println!();
    println!("Ratio of each block's time per gas to the ERC-20 block's (target: at most 2.0):");
    let labels: Vec<String> = paths
        .iter()
        .flat_map(|(name, _, _)| [format!("{name} warm"), format!("{name} cold")])
        .collect();
    println!(
        "| case | model bytes | call gas | decoded bytes | {} |",
        labels.join(" | ")
    );
    println!("|---|---|---|---|{}", "---|".repeat(labels.len()));
    let mut worst: (f64, String) = (0.0, "none".into());
    for (name, cells, filled) in &results {
        let ratios: Vec<f64> = filled
            .iter()
            .map(|f| per_gas(f) / per_gas(&erc20))
            .collect();
        for (ratio, label) in ratios.iter().zip(&labels) {
            if *ratio > worst.0 {
                worst = (*ratio, format!("{name} ({label})"));
            }
        }
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        println!("| {name} | {cells} | {} |", shown.join(" | "));
    }
    for line in &skipped {
        println!("{line}");
    }
    println!();
    memory_check()?;
    println!();
    println!("adversarial: worst ratio={:.2} case={}", worst.0, worst.1);
    Ok(())
}

/// The process's peak resident memory (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Many distinct models, each decoding to about ten times its encoded size,
/// called once each through one default-sized cache: what the cache holds
/// stays under its bound, and so does the process.
fn memory_check() -> Result<()> {
    let cache = ModelCache::shared();
    let before = peak_rss_mib();
    let models = 64usize;
    let mut encoded_total = 0usize;
    let mut decoded_total = 0usize;
    let mut rng = cases::Rng(99);
    for i in 0..models {
        // One input feature to ~60k outputs: the largest decoded/encoded ratio.
        let (op, ins, zp) = cases::dense(&mut rng, 1, 1, 60_000 + 64 * i, DType::I8);
        let bytes = single_op_model(op, &ins[0], zp).encode();
        let model = Arc::new(Model::decode(&bytes)?);
        encoded_total += bytes.len();
        decoded_total += model.heap_bytes();
        std::hint::black_box(cache.infer(keccak256(&bytes), &model, &ins[0].to_bytes())?);
        cache.insert(keccak256(&bytes), model);
        ensure!(
            cache.held_bytes() <= cache.max_bytes(),
            "cache holds {} bytes, over its bound {}",
            cache.held_bytes(),
            cache.max_bytes()
        );
    }
    println!(
        "memory: {models} distinct models, {:.0} MiB encoded, {:.0} MiB decoded; the cache holds {} of them, {:.0} MiB (bound {:.0} MiB); peak RSS {:.0} MiB (before {:.0} MiB)",
        encoded_total as f64 / 1048576.0,
        decoded_total as f64 / 1048576.0,
        cache.len(),
        cache.held_bytes() as f64 / 1048576.0,
        cache.max_bytes() as f64 / 1048576.0,
        peak_rss_mib(),
        before
    );
    Ok(())
}
