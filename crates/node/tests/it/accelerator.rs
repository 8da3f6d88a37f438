//! A GPU result never decides alone that a peer's block is invalid: a block
//! refused with results of the accelerator is executed again on the CPU
//! reference, whose verdict stands, and the models whose accelerator results
//! differ are moved to the CPU. The accelerator here is a stand-in that agrees
//! with the CPU through its trial and then returns wrong bytes, the kernel bug
//! a trial can miss.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use std::{thread::sleep, time::Duration};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{B256, Bytes, TxKind, U256, keccak256};
use infera_consensus::{Clique, sign_header};
use infera_kernels::Model;
use infera_node::{
    ImportError,
    chain::{InsertOutcome, block_of},
    clique_sealer::address_of_key,
    import::Block,
};
use infera_precompiles::{
    Accelerator, ModelCache, Offload, Placement,
    abi::{INFERENCE_ADDRESS, MODEL_REGISTRY_ADDRESS},
    offload::TRIAL_RUNS,
};
use infera_primitives::{ReceiptEnvelope, RecoveredTx, TxEnvelope};

use crate::harness::{Node, in_turn, key};

const DIGITS: &[u8] = include_bytes!("../../../../kernels/models/digits/digits.infera");

/// The dev account that sends every transaction (funded by the testnet genesis).
const SENDER: usize = 0;

/// A stand-in GPU: the CPU reference's bytes for its first `honest_calls`
/// calls, then the same bytes with one bit flipped.
struct Accel {
    honest_calls: u64,
    calls: AtomicU64,
}

impl Accel {
    fn new(honest_calls: u64) -> Arc<Self> {
        Arc::new(Self {
            honest_calls,
            calls: AtomicU64::new(0),
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

impl Accelerator for Accel {
    fn name(&self) -> String {
        "test accelerator".into()
    }

    fn run(&self, _id: B256, model: &Arc<Model>, input: &[u8]) -> Result<Vec<u8>, String> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let mut out = model.run(input).map_err(|e| e.to_string())?;
        if call > self.honest_calls {
            out[0] ^= 1;
        }
        Ok(out)
    }
}

/// The calls these tests make of a node: one transaction from `SENDER` a
/// block, sealed in turn.
impl Node {
    fn sender_nonce(&self) -> u64 {
        self.nonce(address_of_key(&key(SENDER)))
    }

    /// Seals the next block, in turn, with one transaction from `SENDER`;
    /// the block and its receipt.
    fn seal_call(&mut self, to: TxKind, input: Bytes) -> (Block, ReceiptEnvelope) {
        let tx = signed(self.sender_nonce(), to, input);
        let number = self.manager.head().number + 1;
        let committed = self.seal_committed(in_turn(&self.clique, number), vec![tx]);
        assert_eq!(
            committed.block.transactions.len(),
            1,
            "transaction left out"
        );
        assert!(committed.receipts[0].status(), "transaction failed");
        (block_of(&committed.block), committed.receipts[0].clone())
    }
}

fn signed(nonce: u64, to: TxKind, input: Bytes) -> RecoveredTx {
    let tx = TxEip1559 {
        chain_id: infera_chainspec::TESTNET_CHAIN_ID,
        nonce,
        gas_limit: 6_000_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 1,
        to,
        value: U256::ZERO,
        access_list: Default::default(),
        input,
    };
    let hash = tx.signature_hash();
    let sig = infera_primitives::sign_hash(&key(SENDER), hash);
    infera_evm::recover_any(TxEnvelope::from(tx.into_signed(sig))).unwrap()
}

/// ABI encoding of a call whose last argument is `bytes` (after `head`
/// static words).
fn abi_call(signature: &str, head: &[[u8; 32]], data: &[u8]) -> Bytes {
    let mut out = keccak256(signature)[..4].to_vec();
    for word in head {
        out.extend_from_slice(word);
    }
    let offset = U256::from(32 * (head.len() + 1));
    out.extend_from_slice(&offset.to_be_bytes::<32>());
    out.extend_from_slice(&U256::from(data.len()).to_be_bytes::<32>());
    out.extend_from_slice(data);
    out.resize(out.len() + (32 - data.len() % 32) % 32, 0);
    out.into()
}

fn register_call() -> Bytes {
    abi_call("register(bytes)", &[], DIGITS)
}

fn infer_call(id: B256, input: &[u8]) -> Bytes {
    abi_call("infer(bytes32,bytes)", &[id.0], input)
}

/// Runtime code that STATICCALLs the inference precompile with its calldata
/// and logs what it returned (LOG0), so the result reaches the receipts.
fn logger() -> Vec<u8> {
    let mut code = vec![
        0x36, 0x60, 0x00, 0x60, 0x00, 0x37, // calldatacopy(0, 0, calldatasize)
        0x60, 0x00, 0x60, 0x00, // retSize, retOffset
        0x36, 0x60, 0x00, // argsSize, argsOffset
        0x73, // push20 the precompile
    ];
    code.extend_from_slice(INFERENCE_ADDRESS.as_slice());
    code.extend_from_slice(&[
        0x5a, 0xfa, 0x50, // staticcall(gas, ...), pop the status
        0x3d, 0x60, 0x00, 0x60, 0x00, 0x3e, // returndatacopy(0, 0, returndatasize)
        0x3d, 0x60, 0x00, 0xa0, // log0(0, returndatasize)
        0x00,
    ]);
    code
}

/// Init code that returns `runtime`.
fn init_code(runtime: &[u8]) -> Bytes {
    let len = u8::try_from(runtime.len()).unwrap();
    let mut code = vec![
        0x60, len, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, len, 0x60, 0x00, 0xf3,
    ];
    code.extend_from_slice(runtime);
    code.into()
}

fn digit_input(seed: u8) -> Vec<u8> {
    (0..64u8).map(|i| i.wrapping_mul(31) ^ seed).collect()
}

/// A chain by an honest (CPU-only) authority: see [`chain_by`].
fn honest_chain(seeds: &[u8]) -> (Node, Vec<Block>, B256) {
    chain_by(ModelCache::shared(), seeds)
}

/// A chain sealed by an authority with `models`: the digits model registered
/// (block 1), the logger deployed (block 2), then one block per seed with
/// an inference through the logger. Its blocks, and the model's id.
fn chain_by(models: Arc<ModelCache>, seeds: &[u8]) -> (Node, Vec<Block>, B256) {
    let mut node = Node::new(models);
    let id = keccak256(DIGITS);
    let (register, _) = node.seal_call(TxKind::Call(MODEL_REGISTRY_ADDRESS), register_call());
    let sender = address_of_key(&key(SENDER));
    let logger_address = sender.create(node.sender_nonce());
    let (deploy, _) = node.seal_call(TxKind::Create, init_code(&logger()));
    let mut blocks = vec![register, deploy];
    let model = Model::decode(DIGITS).unwrap();
    for &seed in seeds {
        let input = digit_input(seed);
        let (block, receipt) = node.seal_call(TxKind::Call(logger_address), infer_call(id, &input));
        let want = model.run(&input).unwrap();
        let logs = receipt.logs();
        assert_eq!(logs.len(), 1);
        assert!(
            logs[0].data.data.windows(want.len()).any(|w| w == want),
            "the inference output is logged"
        );
        blocks.push(block);
    }
    (node, blocks, id)
}

/// A node whose model cache runs inferences on `accelerator`, with the
/// digits model already placed on it by a finished trial (in which the
/// accelerator agreed with the CPU and was faster).
fn importer(accelerator: Arc<Accel>, id: B256) -> (Node, Arc<ModelCache>) {
    let offload = Offload::new(accelerator, Placement::Measured);
    let model = Arc::new(Model::decode(DIGITS).unwrap());
    let input = digit_input(0xaa);
    let slow_cpu = || {
        sleep(Duration::from_millis(5));
        model.run(&input)
    };
    for _ in 0..TRIAL_RUNS {
        offload.infer(id, &model, &input, slow_cpu).unwrap();
    }
    assert!(
        offload.serves(id),
        "the trial placed the model on the accelerator"
    );
    let models = ModelCache::shared();
    models.set_offload(offload).unwrap();
    (Node::new(models.clone()), models)
}

/// `block` with another state root, sealed again by its authority: a block
/// no execution reproduces.
fn tampered(block: &Block, clique: &Clique) -> Block {
    let mut bad = block.clone();
    bad.header.state_root = B256::repeat_byte(0xee);
    let authority = key(in_turn(clique, bad.header.number));
    sign_header(&mut bad.header, &authority).unwrap();
    bad
}

fn extend(node: &mut Node, block: &Block) {
    match node.manager.insert(block.clone()) {
        Ok(InsertOutcome::Extended(_)) => {}
        other => panic!("block {} not imported: {other:?}", block.header.number),
    }
}

#[test]
fn a_valid_block_the_accelerator_gets_wrong_is_imported_from_the_cpu_and_the_model_leaves_it() {
    let (builder, blocks, id) = honest_chain(&[1, 2]);
    let accelerator = Accel::new(TRIAL_RUNS as u64);
    let (mut node, models) = importer(accelerator.clone(), id);
    let offload = models.offload().unwrap();
    extend(&mut node, &blocks[0]);
    extend(&mut node, &blocks[1]);
    assert_eq!(accelerator.calls(), TRIAL_RUNS as u64);

    // The accelerator's wrong output changes the logged bytes, so the
    // receipts root: refused with it, accepted on the CPU. `insert` succeeds,
    // so the peer that sent it is not penalised.
    extend(&mut node, &blocks[2]);
    assert_eq!(accelerator.calls(), TRIAL_RUNS as u64 + 1);
    let stats = offload.stats();
    assert_eq!(stats.mismatches, 1);
    assert_eq!(stats.rechecked_blocks, 1);
    assert_eq!(stats.overturned_blocks, 1);
    assert!(!offload.serves(id), "the model is moved to the CPU");

    // The next inference of the model runs on the CPU: no re-check needed.
    extend(&mut node, &blocks[3]);
    assert_eq!(accelerator.calls(), TRIAL_RUNS as u64 + 1);
    assert_eq!(offload.stats().rechecked_blocks, 1);
    assert_eq!(node.manager.head(), builder.manager.head());
    assert_eq!(node.state_root(), builder.state_root());
}

#[test]
fn an_invalid_block_is_still_refused_after_the_cpu_recheck() {
    let (builder, blocks, id) = honest_chain(&[3]);
    // An accelerator that is right: it must not be blamed for a bad block.
    let accelerator = Accel::new(u64::MAX);
    let (mut node, models) = importer(accelerator.clone(), id);
    let offload = models.offload().unwrap();
    extend(&mut node, &blocks[0]);
    extend(&mut node, &blocks[1]);
    let head = node.manager.head();

    match node.manager.insert(tampered(&blocks[2], &node.clique)) {
        Err(ImportError::Invalid { reason, .. }) => {
            assert!(reason.contains("state root"), "{reason}")
        }
        other => panic!("tampered block accepted: {other:?}"),
    }
    assert_eq!(node.manager.head(), head);
    let stats = offload.stats();
    assert_eq!(
        (
            stats.rechecked_blocks,
            stats.overturned_blocks,
            stats.mismatches
        ),
        (1, 0, 0)
    );
    assert!(offload.serves(id), "a right accelerator keeps its model");

    extend(&mut node, &blocks[2]);
    assert_eq!(offload.stats().rechecked_blocks, 1);
    assert_eq!(node.state_root(), builder.state_root());
}

#[test]
fn a_wrong_accelerator_result_in_an_invalid_block_still_moves_the_model() {
    let (builder, blocks, id) = honest_chain(&[4]);
    let accelerator = Accel::new(TRIAL_RUNS as u64);
    let (mut node, models) = importer(accelerator, id);
    let offload = models.offload().unwrap();
    extend(&mut node, &blocks[0]);
    extend(&mut node, &blocks[1]);

    // With the accelerator's bytes the receipts differ; on the CPU they
    // match and the state root does not: the CPU's reason is reported.
    match node.manager.insert(tampered(&blocks[2], &node.clique)) {
        Err(ImportError::Invalid { reason, .. }) => {
            assert!(reason.contains("state root"), "{reason}")
        }
        other => panic!("tampered block accepted: {other:?}"),
    }
    let stats = offload.stats();
    assert_eq!(
        (
            stats.rechecked_blocks,
            stats.overturned_blocks,
            stats.mismatches
        ),
        (1, 0, 1)
    );
    assert!(!offload.serves(id));
    extend(&mut node, &blocks[2]);
    assert_eq!(node.state_root(), builder.state_root());
}

#[test]
fn the_local_authority_seals_on_the_cpu_reference_even_with_a_wrong_accelerator() {
    let accelerator = Accel::new(0);
    let models = ModelCache::shared();
    models
        .set_offload(Offload::new(accelerator.clone(), Placement::Always))
        .unwrap();
    let (_sealer, blocks, id) = chain_by(models.clone(), &[5, 6]);
    assert_eq!(
        accelerator.calls(),
        0,
        "sealing never calls the accelerator"
    );
    let offload = models.offload().unwrap();
    assert!(
        offload.serves(id),
        "the model stays placed for imports and RPC"
    );
    assert_eq!(offload.stats().on_cpu, 2);

    // Its blocks are the ones every honest node computes.
    let mut peer = Node::new(ModelCache::shared());
    for block in &blocks {
        extend(&mut peer, block);
    }
}
