//! Importing a block someone else built: decode, validate the header against
//! its parent and the chain spec, execute, compare every root the header
//! commits to, and commit block and state in one write transaction.
//!
//! This is the path for `infera import`, the conformance tests and (later)
//! blocks from peers. Nothing is written unless the block is valid: a bad
//! block leaves the database exactly as it was.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{
    BlockHeader as _, EMPTY_OMMER_ROOT_HASH, Eip658Value, Header, Receipt, ReceiptWithBloom,
    Transaction as _,
    proofs::{
        calculate_ommers_root, calculate_receipt_root, calculate_transaction_root,
        calculate_withdrawals_root,
    },
};
use alloy_eips::{eip1559::INITIAL_BASE_FEE, eip4844::DATA_GAS_PER_BLOB};
use alloy_rlp::Decodable;
use infera_chainspec::{ChainSpec, MAX_EXTRA_DATA_BYTES, SpecId};
use infera_consensus::ConsensusError;
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, recover_any};
use infera_precompiles::{
    InferaPrecompiles, ModelCache,
    offload::{AcceleratorWatch, ServedCall},
};
use infera_primitives::{
    B256, BlockNumber, ReceiptEnvelope, RecoveredTx, SealedBlock, StateChanges, TxEnvelope,
};
use infera_storage::{BlockWriter, Database, Reader};
use tracing::warn;

use crate::{NodeError, builder::CommittedBlock};
use infera_consensus::Clique;

/// A block as it travels between nodes and in `chain.rlp` files.
pub type Block = alloy_consensus::Block<TxEnvelope>;

/// Lowest gas limit a block may have (Ethereum's rule).
pub const MIN_GAS_LIMIT: u64 = 5000;

/// A block's gas limit may differ from its parent's by less than
/// parent / this (Ethereum's rule).
pub const GAS_LIMIT_BOUND_DIVISOR: u64 = 1024;

/// Highest gas limit a block may have: 2^63 - 1 (Ethereum's rule).
pub const MAX_GAS_LIMIT: u64 = i64::MAX as u64;

/// Most ommers a proof-of-work block may include.
pub const MAX_OMMERS: usize = 2;

/// How many generations back an ommer may be.
pub const MAX_OMMER_DEPTH: u64 = 6;

/// Options of block import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportConfig {
    /// Accept proof-of-work blocks (before the merge) without checking their
    /// seal or difficulty. Without it such blocks are refused.
    pub allow_pre_merge: bool,
}

/// Whose fault a refused block is: what decides whether the peer that sent
/// it is penalised (see [`ImportError::fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The block is invalid: it breaks a consensus rule. Its sender is penalised.
    BadBlock,
    /// The data is malformed: it does not decode, or a signature in it (a
    /// transaction's, the seal) recovers no signer. Its sender is penalised.
    BadPeer,
    /// This node failed (database, accelerator, I/O, a bug), or the block
    /// does not fit the local chain: never counts against a peer.
    Local,
}

/// A consensus rule a block breaks, found by the checks before execution
/// ([`validate_header`] and the body rules): always [`Fault::BadBlock`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidBlock(pub String);

impl From<String> for InvalidBlock {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl From<&str> for InvalidBlock {
    fn from(reason: &str) -> Self {
        Self(reason.to_owned())
    }
}

/// Why a block was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The block breaks a consensus rule ([`Fault::BadBlock`]).
    #[error("invalid block {number} ({hash}): {reason}")]
    Invalid {
        number: BlockNumber,
        hash: B256,
        reason: String,
    },
    /// Data in the block is malformed: a transaction signature or the seal
    /// recovers no signer ([`Fault::BadPeer`]).
    #[error("malformed block {number} ({hash}): {reason}")]
    Malformed {
        number: BlockNumber,
        hash: B256,
        reason: String,
    },
    /// The block's parent is not the head of the stored chain (unknown, or a
    /// side chain: the caller must unwind first).
    #[error(
        "block {number} does not extend the head: its parent {parent} is not block {head_number} ({head})"
    )]
    NotOnHead {
        number: BlockNumber,
        parent: B256,
        head: B256,
        head_number: BlockNumber,
    },
    /// A local fault (storage, execution engine), not the block's.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl From<infera_storage::StorageError> for ImportError {
    fn from(err: infera_storage::StorageError) -> Self {
        Self::Node(err.into())
    }
}

impl ImportError {
    /// Whose fault the refusal is. Exhaustive on purpose: a new variant must
    /// say whether it costs the sender.
    pub fn fault(&self) -> Fault {
        match self {
            Self::Invalid { .. } => Fault::BadBlock,
            Self::Malformed { .. } => Fault::BadPeer,
            // A block that does not extend our head is valid or not; the
            // callers that insert peers' blocks never hand such a block here.
            Self::NotOnHead { .. } | Self::Node(_) => Fault::Local,
        }
    }

    /// A header that Clique's rules refuse: an unreadable seal is the
    /// sender's malformed data, a missing input to the check is ours, every
    /// other failure a rule the block breaks.
    pub(crate) fn from_consensus(number: BlockNumber, hash: B256, err: ConsensusError) -> Self {
        match err {
            ConsensusError::MissingSeal { .. }
            | ConsensusError::InvalidRecoveryId { .. }
            | ConsensusError::HighS { .. }
            | ConsensusError::InvalidSignature(_) => Self::Malformed {
                number,
                hash,
                reason: err.to_string(),
            },
            ConsensusError::RecentSignersIncomplete { .. }
            | ConsensusError::SealUnencodable { .. } => Self::Node(NodeError::Invariant(format!(
                "block {number} ({hash}): {err}"
            ))),
            ConsensusError::NotChild { .. }
            | ConsensusError::ParentHashMismatch { .. }
            | ConsensusError::TooEarly { .. }
            | ConsensusError::TooFarInFuture { .. }
            | ConsensusError::ExtraDataLength { .. }
            | ConsensusError::UnauthorisedSigner { .. }
            | ConsensusError::RecentlySigned { .. }
            | ConsensusError::WrongDifficulty { .. }
            | ConsensusError::NonZeroNonce { .. }
            | ConsensusError::WrongOmmersHash { .. }
            | ConsensusError::WrongMixHash { .. } => Self::Invalid {
                number,
                hash,
                reason: err.to_string(),
            },
        }
    }
}

/// An executor error while importing a block: the block's rules broken
/// ([`ImportError::Invalid`], with `context`), or this node's failure.
fn execution_error(
    number: BlockNumber,
    hash: B256,
    err: EvmError,
    context: impl FnOnce() -> String,
) -> ImportError {
    let invalid = |reason: String| ImportError::Invalid {
        number,
        hash,
        reason: format!("{}: {reason}", context()),
    };
    match err {
        EvmError::InvalidTransaction(err) => invalid(err.to_string()),
        EvmError::InvalidBlock(reason) => invalid(reason),
        // Reading state, a fatal precompile error, revm itself; the RPC-only
        // outcomes (revert, halt, request, timeout) never come out of block
        // execution, and would be a bug here.
        err @ (EvmError::Database(_)
        | EvmError::Internal(_)
        | EvmError::Decode(_)
        | EvmError::InvalidSignature(_)
        | EvmError::Revert { .. }
        | EvmError::Halt { .. }
        | EvmError::InvalidRequest(_)
        | EvmError::Timeout { .. }) => ImportError::Node(err.into()),
    }
}

/// Decodes one RLP-encoded block; trailing bytes are an error.
pub fn decode_block(mut bytes: &[u8]) -> Result<Block, String> {
    let block = Block::decode(&mut bytes).map_err(|e| format!("block RLP does not decode: {e}"))?;
    if !bytes.is_empty() {
        return Err(format!(
            "{} trailing bytes after the block RLP",
            bytes.len()
        ));
    }
    Ok(block)
}

/// Splits a concatenation of RLP-encoded blocks (a `chain.rlp` file). Stops
/// at the first undecodable block with its index and the reason.
pub fn decode_blocks(mut bytes: &[u8]) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    while !bytes.is_empty() {
        let block = Block::decode(&mut bytes)
            .map_err(|e| format!("block #{} of the file does not decode: {e}", blocks.len()))?;
        blocks.push(block);
    }
    Ok(blocks)
}

/// Validates, executes and commits `block` on top of the stored head, with
/// a model cache of its own (see [`import_block_with`]).
pub fn import_block(
    db: &Database,
    chain: &ChainSpec,
    block: &Block,
    config: ImportConfig,
) -> Result<CommittedBlock, ImportError> {
    import_block_with(db, chain, block, config, &ModelCache::shared())
}

/// Validates, executes and commits `block` on top of the stored head.
///
/// Transactions run with the AI precompiles (every inference is re-executed
/// and its output must lead to the roots the header claims); `models` caches
/// decoded models across blocks. On a proof-of-authority chain the header's
/// seal, signer turn and difficulty are checked first.
///
/// A block that execution refuses while some of its inferences returned an
/// accelerator's bytes is executed again with every inference on the CPU
/// reference, whose verdict is returned: a GPU bug never makes a valid block
/// [`ImportError::Invalid`] (which gets its sender penalised). Models whose
/// GPU results differ are moved to the CPU ([`Offload::verify_served`]).
///
/// [`Offload::verify_served`]: infera_precompiles::Offload::verify_served
pub fn import_block_with(
    db: &Database,
    chain: &ChainSpec,
    block: &Block,
    config: ImportConfig,
    models: &std::sync::Arc<ModelCache>,
) -> Result<CommittedBlock, ImportError> {
    let started = Instant::now();
    let header = &block.header;
    let hash = header.hash_slow();
    let number = header.number;
    let invalid = |reason: InvalidBlock| ImportError::Invalid {
        number,
        hash,
        reason: reason.0,
    };

    let pages_before = crate::metrics::pages_written(db);
    let reader = db.reader()?;
    let head_number = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
    let head = reader.canonical_hash(head_number)?.ok_or_else(|| {
        NodeError::Invariant(format!("head block {head_number} has no canonical hash"))
    })?;
    if header.parent_hash != head {
        return Err(ImportError::NotOnHead {
            number,
            parent: header.parent_hash,
            head,
            head_number,
        });
    }
    let parent = reader
        .header(head_number)?
        .ok_or_else(|| NodeError::Invariant(format!("head block {head_number} has no header")))?;

    let spec = chain.spec_at(number, header.timestamp);
    validate_header(chain, header, &parent, spec, config).map_err(invalid)?;
    if let Some(params) = chain.clique() {
        let clique = Clique::new(params);
        let recent = crate::clique_inputs::canonical_recent_signers(&reader, &clique, &parent)?;
        clique
            .verify_header(header, &parent, &recent, crate::clique_inputs::unix_now_s())
            .map_err(|e| ImportError::from_consensus(number, hash, e))?;
    }
    validate_body(block, spec).map_err(invalid)?;

    let transactions = block
        .body
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            recover_any(tx.clone()).map_err(|e| ImportError::Malformed {
                number,
                hash,
                reason: format!("transaction {i}: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_blob_gas(header, &transactions, spec).map_err(invalid)?;

    let execution = Execution {
        db,
        chain,
        block,
        hash,
        spec,
        transactions: &transactions,
    };
    let validated = started.elapsed();
    // A result of the accelerator is never what refuses a block (and gets its
    // sender banned): the block is judged again on the CPU reference first.
    let watch = AcceleratorWatch::record();
    let first = execution.run(reader, models);
    let served = watch.finish();
    let Verified {
        mut writer,
        receipts,
        phases,
    } = match first {
        Err(ImportError::Invalid { reason, .. }) if !served.is_empty() => {
            execution.recheck_on_cpu(models, &served, &reason)?
        }
        other => other?,
    };
    let sealed = SealedBlock {
        header: header.clone(),
        hash,
        transactions,
    };
    let t = Instant::now();
    writer.insert_block(&sealed, &receipts)?;
    writer.commit()?;
    let committed = t.elapsed();
    crate::metrics::record_commit_pages(db, "imported", pages_before);
    let [execute, apply, state_root] = phases;
    infera_metrics::chain::imported(
        &[
            ("validate", validated),
            ("execute", execute),
            ("apply", apply),
            ("state_root", state_root),
            ("commit", committed),
        ],
        started.elapsed(),
        sealed.transactions.len(),
        sealed.header.gas_used,
    );
    Ok(CommittedBlock {
        block: Arc::new(sealed),
        receipts: Arc::new(receipts),
    })
}

/// A block that passed the checks before execution, ready to execute.
struct Execution<'a> {
    db: &'a Database,
    chain: &'a ChainSpec,
    block: &'a Block,
    hash: B256,
    spec: SpecId,
    transactions: &'a [RecoveredTx],
}

impl Execution<'_> {
    fn invalid(&self, reason: String) -> ImportError {
        ImportError::Invalid {
            number: self.block.header.number,
            hash: self.hash,
            reason,
        }
    }

    /// The block was refused while `served` inferences returned the
    /// accelerator's bytes (`reason`): executes it again with every inference
    /// on the CPU reference, whose verdict stands, and moves the models whose
    /// accelerator results differ to the CPU.
    fn recheck_on_cpu(
        &self,
        models: &Arc<ModelCache>,
        served: &[ServedCall],
        reason: &str,
    ) -> Result<Verified, ImportError> {
        let number = self.block.header.number;
        warn!(target: "infera::import", number, hash = %self.hash, %reason, accelerated = served.len(), "block refused with accelerator results; executing it again on the CPU reference before refusing it");
        let reader = self.db.reader()?;
        let head_number = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
        let head = reader.canonical_hash(head_number)?;
        if head != Some(self.block.header.parent_hash) {
            return Err(NodeError::Invariant(format!(
                "the head moved while block {number} was being imported"
            ))
            .into());
        }
        let result = {
            let _cpu = AcceleratorWatch::cpu_only();
            self.run(reader, models)
        };
        let cpu_accepted = match &result {
            Ok(_) => true,
            Err(ImportError::Invalid { .. }) => false,
            // A local fault says nothing about the accelerator's results.
            Err(_) => return result,
        };
        if let Some(offload) = models.offload() {
            let options = models.run_options();
            offload.verify_served(served, cpu_accepted, number, self.hash, |model, input| {
                model.run_with(input, options)
            });
        }
        if cpu_accepted {
            warn!(target: "infera::import", number, hash = %self.hash, "the CPU reference accepts the block: imported from the CPU's results");
        }
        result
    }

    /// Executes the block on `reader`'s state (the head) and compares what it
    /// produced with the header; the state goes into a write transaction that
    /// is dropped (nothing written) if a comparison fails.
    fn run(&self, reader: Reader, models: &Arc<ModelCache>) -> Result<Verified, ImportError> {
        let Self {
            db,
            chain,
            block,
            spec,
            transactions,
            ..
        } = self;
        let spec = *spec;
        let header = &block.header;
        let number = header.number;
        let invalid = |reason: String| self.invalid(reason);

        let cfg = ExecutionConfig {
            chain_id: chain.chain_id(),
            spec,
        };
        let env = BlockEnvInput::from_header(
            header,
            chain.blob_base_fee_update_fraction_at(number, header.timestamp),
        );
        let started = Instant::now();
        let pre_byzantium = !spec.is_enabled_in(SpecId::BYZANTIUM);
        let mut intermediate_roots = Vec::new();
        let precompiles = InferaPrecompiles::new(spec, models.clone());
        let executed = |err: EvmError, context: &dyn Fn() -> String| {
            execution_error(number, self.hash, err, context)
        };
        let mut executor =
            BlockExecutor::with_precompiles(reader.latest_state(), cfg, env, precompiles)
                .map_err(|e| executed(e, &|| "pre-block system call".into()))?;
        for (i, tx) in transactions.iter().enumerate() {
            executor
                .execute_transaction(tx)
                .map_err(|e| executed(e, &|| format!("transaction {i} ({})", tx.hash)))?;
            if pre_byzantium {
                intermediate_roots.push(state_root_with(db, number, &executor.changes())?);
            }
        }
        let requests = executor
            .apply_post_block_requests(chain.deposit_contract())
            .map_err(|e| executed(e, &|| "post-block requests".into()))?;
        if let Some(withdrawals) = &block.body.withdrawals {
            executor
                .apply_withdrawals(withdrawals)
                .map_err(|e| ImportError::Node(e.into()))?;
        }
        let ommers: Vec<_> = block
            .body
            .ommers
            .iter()
            .map(|o| (o.beneficiary, o.number))
            .collect();
        executor
            .apply_block_rewards(&ommers)
            .map_err(|e| ImportError::Node(e.into()))?;
        let mut outcome = executor.finish();
        if pre_byzantium {
            outcome.receipts = with_state_roots(outcome.receipts, &intermediate_roots);
        }

        // Compare what execution produced with what the header claims.
        if outcome.gas_used != header.gas_used {
            return Err(invalid(format!(
                "gas used {} but the header says {}",
                outcome.gas_used, header.gas_used
            )));
        }
        let receipts_root = calculate_receipt_root(&outcome.receipts);
        if receipts_root != header.receipts_root {
            return Err(invalid(format!(
                "receipts root {receipts_root} but the header says {}",
                header.receipts_root
            )));
        }
        if outcome.logs_bloom != header.logs_bloom {
            return Err(invalid("logs bloom differs from the receipts' logs".into()));
        }
        if spec.is_enabled_in(SpecId::PRAGUE) {
            let requests_hash = requests.requests_hash();
            if header.requests_hash != Some(requests_hash) {
                return Err(invalid(format!(
                    "requests hash {requests_hash} but the header says {:?}",
                    header.requests_hash
                )));
            }
        }
        drop(reader);
        let execution = started.elapsed();

        let t = Instant::now();
        let mut writer = db.writer()?;
        writer.apply_state(number, &outcome.changes)?;
        let applied = t.elapsed();
        let t = Instant::now();
        let state_root = writer.state_root()?;
        let rooted = t.elapsed();
        if state_root != header.state_root {
            // Dropping the writer aborts its transaction: nothing was written.
            return Err(invalid(format!(
                "state root {state_root} but the header says {}",
                header.state_root
            )));
        }
        Ok(Verified {
            writer,
            receipts: outcome.receipts,
            phases: [execution, applied, rooted],
        })
    }
}

/// A block whose execution matched its header: its state applied in a write
/// transaction that is not committed yet.
struct Verified {
    writer: BlockWriter,
    receipts: Vec<ReceiptEnvelope>,
    /// Time of its execution (comparisons included), `apply_state` and the
    /// state root, for the import metrics.
    phases: [Duration; 3],
}

/// The state root after `changes` on top of the head, from a write
/// transaction that is thrown away (pre-Byzantium receipts need the root
/// after every transaction).
fn state_root_with(
    db: &Database,
    number: BlockNumber,
    changes: &StateChanges,
) -> Result<B256, ImportError> {
    let mut scratch = db.writer()?;
    scratch.apply_state(number, changes)?;
    let root = scratch.state_root()?;
    drop(scratch);
    Ok(root)
}

/// Pre-Byzantium receipts carry the state root after their transaction
/// instead of a status.
fn with_state_roots(receipts: Vec<ReceiptEnvelope>, roots: &[B256]) -> Vec<ReceiptEnvelope> {
    receipts
        .into_iter()
        .zip(roots)
        .map(|(receipt, root)| {
            let inner = Receipt {
                status: Eip658Value::PostState(*root),
                cumulative_gas_used: receipt.cumulative_gas_used(),
                logs: receipt.logs().to_vec(),
            };
            ReceiptEnvelope::Legacy(ReceiptWithBloom::new(inner, *receipt.logs_bloom()))
        })
        .collect()
}

/// Header rules that need only the parent and the chain spec.
///
/// The checks run in a fixed order and the first failure is the one
/// reported, so the steps below are called in that order.
pub fn validate_header(
    chain: &ChainSpec,
    header: &Header,
    parent: &Header,
    spec: SpecId,
    config: ImportConfig,
) -> Result<(), InvalidBlock> {
    check_follows_parent(header, parent)?;
    // A proof-of-authority header carries its seal in the extra data and a
    // difficulty of 1 or 2; `infera_consensus::Clique::verify_header` checks
    // both, and the rules below for proof of work and proof of stake do not apply.
    let clique = chain.clique().is_some();
    check_extra_data_and_gas_used(header, clique)?;
    let london = spec.is_enabled_in(SpecId::LONDON);
    let parent_london = chain
        .spec_at(parent.number, parent.timestamp)
        .is_enabled_in(SpecId::LONDON);
    check_gas_limit(chain, header, parent, london && !parent_london)?;
    check_base_fee(chain, header, parent, london, parent_london)?;
    if !clique {
        check_consensus_fields(header, spec, config)?;
    }
    check_fork_fields(header, spec)?;
    check_excess_blob_gas(chain, header, parent)
}

/// Number and timestamp each strictly after the parent's.
fn check_follows_parent(header: &Header, parent: &Header) -> Result<(), InvalidBlock> {
    if header.number != parent.number + 1 {
        return Err(format!(
            "number {} does not follow the parent's {}",
            header.number, parent.number
        )
        .into());
    }
    if header.timestamp <= parent.timestamp {
        return Err(format!(
            "timestamp {} is not after the parent's {}",
            header.timestamp, parent.timestamp
        )
        .into());
    }
    Ok(())
}

/// The extra-data bound (not for Clique, whose seal lives there) and gas used
/// within the header's own limit.
fn check_extra_data_and_gas_used(header: &Header, clique: bool) -> Result<(), InvalidBlock> {
    if !clique && header.extra_data.len() > MAX_EXTRA_DATA_BYTES {
        return Err(format!(
            "extra data of {} bytes, at most {MAX_EXTRA_DATA_BYTES} allowed",
            header.extra_data.len()
        )
        .into());
    }
    if header.gas_used > header.gas_limit {
        return Err(format!(
            "gas used {} above the gas limit {}",
            header.gas_used, header.gas_limit
        )
        .into());
    }
    Ok(())
}

/// Gas limit: may move by less than 1/1024 of the parent's; at the London
/// block (`london_transition`) the parent's limit counts twice (EIP-1559
/// elasticity). Then the absolute bounds.
fn check_gas_limit(
    chain: &ChainSpec,
    header: &Header,
    parent: &Header,
    london_transition: bool,
) -> Result<(), InvalidBlock> {
    let parent_limit = if london_transition {
        parent
            .gas_limit
            .saturating_mul(u64::try_from(chain.base_fee_params.elasticity_multiplier).unwrap_or(1))
    } else {
        parent.gas_limit
    };
    let bound = parent_limit / GAS_LIMIT_BOUND_DIVISOR;
    if header.gas_limit.abs_diff(parent_limit) >= bound {
        return Err(format!(
            "gas limit {} moves too far from the parent's {parent_limit} (less than {bound} allowed)",
            header.gas_limit
        ).into());
    }
    if header.gas_limit > MAX_GAS_LIMIT {
        return Err(format!(
            "gas limit {} above the maximum {MAX_GAS_LIMIT}",
            header.gas_limit
        )
        .into());
    }
    if header.gas_limit < MIN_GAS_LIMIT {
        return Err(format!(
            "gas limit {} below the minimum {MIN_GAS_LIMIT}",
            header.gas_limit
        )
        .into());
    }
    Ok(())
}

/// Base fee (EIP-1559): absent before London, the initial one on the London
/// block itself, the parent's successor after it.
fn check_base_fee(
    chain: &ChainSpec,
    header: &Header,
    parent: &Header,
    london: bool,
    parent_london: bool,
) -> Result<(), InvalidBlock> {
    match (london, header.base_fee_per_gas) {
        (false, Some(_)) => Err("base fee before London".into()),
        (true, None) => Err("missing base fee".into()),
        (true, Some(fee)) => {
            let expected = if parent_london {
                chain.next_base_fee(parent).unwrap_or(INITIAL_BASE_FEE)
            } else {
                INITIAL_BASE_FEE
            };
            if fee != expected {
                return Err(format!("base fee {fee}, expected {expected}").into());
            }
            Ok(())
        }
        (false, None) => Ok(()),
    }
}

/// Proof of work / proof of stake (not called for Clique): the merge's empty
/// difficulty, nonce and ommers; before it a proof-of-work seal, which is not
/// verified and so is accepted only with `--allow-pre-merge`.
fn check_consensus_fields(
    header: &Header,
    spec: SpecId,
    config: ImportConfig,
) -> Result<(), InvalidBlock> {
    if spec.is_enabled_in(SpecId::MERGE) {
        if !header.difficulty.is_zero() {
            return Err(format!("difficulty {} after the merge", header.difficulty).into());
        }
        if !header.nonce.is_zero() {
            return Err(format!("nonce {} after the merge", header.nonce).into());
        }
        if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
            return Err("ommers after the merge".into());
        }
    } else if !config.allow_pre_merge {
        return Err(
            "proof-of-work block: its seal is not verified; pass --allow-pre-merge to accept it"
                .into(),
        );
    } else if header.difficulty.is_zero() {
        return Err("zero difficulty before the merge".into());
    }
    Ok(())
}

/// Fields that forks add: present exactly from their fork on; those of forks
/// not supported never.
fn check_fork_fields(header: &Header, spec: SpecId) -> Result<(), InvalidBlock> {
    let presence = [
        (
            "withdrawals root",
            SpecId::SHANGHAI,
            header.withdrawals_root.is_some(),
        ),
        (
            "blob gas used",
            SpecId::CANCUN,
            header.blob_gas_used.is_some(),
        ),
        (
            "excess blob gas",
            SpecId::CANCUN,
            header.excess_blob_gas.is_some(),
        ),
        (
            "parent beacon block root",
            SpecId::CANCUN,
            header.parent_beacon_block_root.is_some(),
        ),
        (
            "requests hash",
            SpecId::PRAGUE,
            header.requests_hash.is_some(),
        ),
    ];
    for (field, fork, present) in presence {
        match (spec.is_enabled_in(fork), present) {
            (true, false) => return Err(format!("missing {field}").into()),
            (false, true) => return Err(format!("{field} before {fork:?}").into()),
            _ => {}
        }
    }
    if header.block_access_list_hash.is_some() || header.slot_number.is_some() {
        return Err("header fields of unsupported forks".into());
    }
    Ok(())
}

/// Blob gas (EIP-4844, EIP-7918 from Osaka), where the block's fork has blob
/// parameters: whole blobs, within the block's maximum, and the excess the
/// parent implies.
fn check_excess_blob_gas(
    chain: &ChainSpec,
    header: &Header,
    parent: &Header,
) -> Result<(), InvalidBlock> {
    let Some(params) = chain.blob_params_at(header.number, header.timestamp) else {
        return Ok(());
    };
    let used = header.blob_gas_used.unwrap_or_default();
    if !used.is_multiple_of(DATA_GAS_PER_BLOB) {
        return Err(
            format!("blob gas used {used} is not a multiple of {DATA_GAS_PER_BLOB}").into(),
        );
    }
    if used > params.max_blob_gas_per_block() {
        return Err(format!(
            "blob gas used {used} above the maximum {}",
            params.max_blob_gas_per_block()
        )
        .into());
    }
    let expected = params.next_block_excess_blob_gas_osaka(
        parent.excess_blob_gas.unwrap_or(0),
        parent.blob_gas_used.unwrap_or(0),
        parent.base_fee_per_gas.unwrap_or(0),
    );
    if header.excess_blob_gas != Some(expected) {
        return Err(format!(
            "excess blob gas {:?}, expected {expected}",
            header.excess_blob_gas
        )
        .into());
    }
    Ok(())
}

/// Body rules: the roots the header commits to and the ommers.
fn validate_body(block: &Block, spec: SpecId) -> Result<(), InvalidBlock> {
    let header = &block.header;
    let body = &block.body;
    let tx_root = calculate_transaction_root(&body.transactions);
    if tx_root != header.transactions_root {
        return Err(format!(
            "transactions root {tx_root} but the header says {}",
            header.transactions_root
        )
        .into());
    }
    let ommers_root = calculate_ommers_root(&body.ommers);
    if ommers_root != header.ommers_hash {
        return Err(format!(
            "ommers hash {ommers_root} but the header says {}",
            header.ommers_hash
        )
        .into());
    }
    if body.ommers.len() > MAX_OMMERS {
        return Err(format!("{} ommers, at most {MAX_OMMERS}", body.ommers.len()).into());
    }
    for ommer in &body.ommers {
        if ommer.number >= header.number || header.number - ommer.number > MAX_OMMER_DEPTH {
            return Err(format!(
                "ommer {} is not within {MAX_OMMER_DEPTH} generations below block {}",
                ommer.number, header.number
            )
            .into());
        }
    }
    match (&body.withdrawals, header.withdrawals_root) {
        (Some(withdrawals), Some(root)) => {
            let got = calculate_withdrawals_root(withdrawals);
            if got != root {
                return Err(format!("withdrawals root {got} but the header says {root}").into());
            }
        }
        (None, None) => {}
        (Some(_), None) => return Err("withdrawals without a withdrawals root".into()),
        (None, Some(_)) => return Err("withdrawals root without withdrawals".into()),
    }
    if !spec.is_enabled_in(SpecId::SHANGHAI) && body.withdrawals.is_some() {
        return Err("withdrawals before Shanghai".into());
    }
    Ok(())
}

/// The header's blob gas must be what the block's blob transactions use.
fn check_blob_gas(header: &Header, txs: &[RecoveredTx], spec: SpecId) -> Result<(), InvalidBlock> {
    let blobs: u64 = txs
        .iter()
        .map(|tx| tx.tx.blob_versioned_hashes().map_or(0, |h| h.len() as u64))
        .sum();
    if !spec.is_enabled_in(SpecId::CANCUN) {
        return if blobs == 0 {
            Ok(())
        } else {
            Err("blob transactions before Cancun".into())
        };
    }
    let used = blobs * DATA_GAS_PER_BLOB;
    if header.blob_gas_used() != Some(used) {
        return Err(format!(
            "blob gas used {:?} but the transactions use {used}",
            header.blob_gas_used
        )
        .into());
    }
    Ok(())
}

/// What [`import_chain`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainImport {
    /// Blocks validated, executed and committed.
    pub imported: usize,
    /// Blocks already stored as canonical (an import resumed or repeated).
    pub already_present: usize,
}

/// [`import_chain`] stopped at a block; the blocks before it stay imported.
#[derive(Debug, thiserror::Error)]
#[error("{error} (after importing {} blocks)", progress.imported)]
pub struct ChainImportError {
    /// What was done before the failure.
    pub progress: ChainImport,
    /// Why the block was refused.
    pub error: Box<ImportError>,
}

/// Imports blocks in order on top of the stored chain, skipping those
/// already stored as canonical, and stops at the first that fails.
/// `on_block` sees every committed block (for progress and events).
pub fn import_chain(
    db: &Database,
    chain: &ChainSpec,
    blocks: &[Block],
    config: ImportConfig,
    mut on_block: impl FnMut(&CommittedBlock),
) -> Result<ChainImport, ChainImportError> {
    let mut progress = ChainImport::default();
    let models = ModelCache::shared();
    for block in blocks {
        let stored = db
            .reader()
            .and_then(|r| r.canonical_hash(block.header.number))
            .map_err(|e| ChainImportError {
                progress,
                error: Box::new(e.into()),
            })?;
        if stored.is_some_and(|hash| hash == block.header.hash_slow()) {
            progress.already_present += 1;
            continue;
        }
        match import_block_with(db, chain, block, config, &models) {
            Ok(committed) => {
                progress.imported += 1;
                on_block(&committed);
            }
            Err(error) => {
                return Err(ChainImportError {
                    progress,
                    error: Box::new(error),
                });
            }
        }
    }
    Ok(progress)
}
