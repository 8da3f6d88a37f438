//! Gas calibration of the inference precompile (`precompiles/src/gas.rs`).
//!
//! ```text
//! cargo run --release -p infera-bench --bin gas-calibration [-- --quick]
//! ```
//!
//! Fills a 60M-gas block with inference calls of one model (the digits demo
//! model, a dense 1024x1024 layer, a 3x3 convolution 128->128 on 14x14) and a
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
use infera_kernels::{DType, Kernels, Model, model::Node};
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
    let (op, ins, zp) = cases::dense(&mut rng, 1, 1024, 1024, DType::I8);
    let dense = single_op_model(op, &ins[0], zp);
    let dense_input = ins[0].to_bytes();
    let (op, ins, zp) = cases::conv(
        &mut rng,
        1,
        128,
        [14, 14],
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
        ("dense 1024x1024 (1M MACs)", dense.encode(), dense_input),
        (
            "conv 3x3 128->128 @14x14 (29M MACs)",
            conv.encode(),
            conv_input,
        ),
    ];

    // Genesis-like state: funded senders.
    let deployer = chain::key(u64::MAX);
    let senders: Vec<Key> = (0..16).map(chain::key).collect();
    let mut state = MemState::default();
    for key in senders.iter().chain([&deployer]) {
        state.accounts.insert(
            key.address,
            Account::with_balance(U256::from(10).pow(U256::from(26))),
        );
    }

    // Setup block (Prague: no per-transaction gas cap): the ERC-20 and the models.
    let models = ModelCache::shared();
    let portable_models = Arc::new(ModelCache::default().with_kernels(Kernels::Portable));
    let mut setup = vec![Unsigned::new(
        deployer,
        0,
        TxKind::Create,
        U256::ZERO,
        5_000_000,
        chain::erc20_creation_code()?,
    )];
    for (i, (_, bytes, _)) in workloads.iter().enumerate() {
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
    let precompiles = InferaPrecompiles::new(cfg.spec, models.clone());
    let mut executor =
        BlockExecutor::with_precompiles(&state, cfg, env(1, u64::MAX / 4), precompiles)?;
    for tx in &setup {
        let receipt = executor.execute_transaction(tx)?;
        ensure!(receipt.status(), "setup transaction failed");
    }
    let changes = executor.finish().changes;
    state.apply(&changes);
    let token = deployer.address.create(0);

    // ERC-20 block: transfers from the deployer to fresh recipients.
    let transfers: Vec<Unsigned> = (0..2_000u64)
        .map(|i| {
            Unsigned::new(
                deployer,
                1 + workloads.len() as u64 + i,
                TxKind::Call(token),
                U256::ZERO,
                chain::ERC20_GAS,
                chain::erc20_transfer(chain::fresh_address("recipient", i), U256::from(1)),
            )
        })
        .collect();
    let transfers = chain::sign_all(transfers);
    let erc20 = fill(&state, &models, &transfers, rounds)?;
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
        let id = keccak256(bytes);
        let model = Model::decode(bytes)?;
        let inference_gas = gas::inference_gas(&model.cost(), bytes.len() as u64);
        let call_gas = gas::inference_call_gas(
            inference_gas,
            input.len() as u64,
            model.output_spec().byte_len() as u64,
        );
        let data = IInference::inferCall {
            id,
            input: input.clone().into(),
        }
        .abi_encode();
        let (standard, floor) = calldata_gas(&data);
        let gas_limit = (standard + call_gas).max(floor);
        let count = (BLOCK_GAS / gas_limit + 1) as usize;
        let txs: Vec<Unsigned> = (0..count)
            .map(|i| {
                let key = senders[i % senders.len()];
                Unsigned::new(
                    key,
                    (i / senders.len()) as u64,
                    TxKind::Call(INFERENCE_ADDRESS),
                    U256::ZERO,
                    gas_limit,
                    data.clone().into(),
                )
            })
            .collect();
        let txs = chain::sign_all(txs);
        let filled = fill(&state, &models, &txs, rounds)?;
        // The same block on the portable reference kernels (what a node
        // without AVX2 runs): gas must be priced for this one.
        let portable = fill(&state, &portable_models, &txs, rounds)?;
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
        decode_rows.push((name, bytes.len(), decode));
    }
    println!();
    println!(
        "| model decode (cache miss) | bytes | us | ns/byte | gas-equivalent at the ERC-20 rate, per byte |"
    );
    println!("|---|---|---|---|---|");
    for (name, len, secs) in decode_rows {
        let ns_per_byte = secs * 1e9 / len as f64;
        println!(
            "| {name} | {len} | {:.1} | {:.3} | {:.3} (charged {:.4}) |",
            secs * 1e6,
            ns_per_byte,
            ns_per_byte / per_gas(&erc20),
            gas::INFER_GAS_PER_MODEL_KIB as f64 / 1024.0
        );
    }
    println!();
    println!(
        "constants: INFER_BASE_GAS {} INFER_GAS_PER_KMAC {} INFER_GAS_PER_KELEM {} INFER_GAS_PER_MODEL_KIB {} INFER_GAS_PER_IO_BYTE {}",
        gas::INFER_BASE_GAS,
        gas::INFER_GAS_PER_KMAC,
        gas::INFER_GAS_PER_KELEM,
        gas::INFER_GAS_PER_MODEL_KIB,
        gas::INFER_GAS_PER_IO_BYTE
    );
    Ok(())
}
