//! Admission of raw transactions into the pool, shared by
//! `eth_sendRawTransaction` and transactions gossiped by peers: both must
//! decode, validate and pool by the same rules, and neither layer owns the
//! other.

use std::sync::Arc;

use alloy_primitives::{B256, U256};
use infera_chainspec::ChainSpec;
use infera_evm::{
    EvmError, ExecutionConfig, InvalidTransaction, decode_raw_transaction,
    validate_transaction_with_config,
};
use infera_primitives::{ChainEvent, StateReader};
use infera_storage::{Database, Reader, StorageError};
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};

use crate::{MAX_TX_BYTES, PoolError, TxPool};

/// Why a raw transaction was not admitted to the pool
/// ([`TxAdmission::admit`]). Typed so that the network glue decides whether
/// the sending peer is penalised without reading any text, and the RPC maps
/// it to the JSON-RPC error clients expect.
#[derive(Debug, thiserror::Error)]
pub enum TxAdmissionError {
    /// The bytes do not decode, or the signature recovers no sender
    /// ([`EvmError::Decode`], [`EvmError::InvalidSignature`]): malformed
    /// data, which no honest peer relays.
    #[error(transparent)]
    Malformed(EvmError),
    /// A well-formed transaction the head state refuses (nonce, funds, fees,
    /// chain id, blobs): stale or premature here, perhaps valid elsewhere.
    #[error(transparent)]
    Invalid(#[from] InvalidTransaction),
    /// The pool's rules refuse it (size, replacement fee, slots).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// This node failed (storage, no chain): nothing about the transaction.
    #[error(transparent)]
    Local(#[from] AdmissionFault),
}

impl TxAdmissionError {
    /// A short, fixed word for the refusal (the metrics' `reason` label).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Invalid(invalid) => match invalid {
                InvalidTransaction::NonceTooLow { .. } => "nonce_too_low",
                InvalidTransaction::NonceTooHigh { .. } => "nonce_too_high",
                InvalidTransaction::InsufficientFunds { .. } => "insufficient_funds",
                InvalidTransaction::IntrinsicGasTooLow { .. } => "intrinsic_gas_too_low",
                InvalidTransaction::GasLimitAboveBlockRemaining { .. }
                | InvalidTransaction::GasLimitAboveBlockLimit { .. }
                | InvalidTransaction::GasLimitAboveCap { .. } => "gas_limit",
                InvalidTransaction::FeeCapBelowBaseFee { .. }
                | InvalidTransaction::TipAboveFeeCap { .. } => "fee",
                InvalidTransaction::WrongChainId { .. } => "wrong_chain_id",
                _ => "invalid",
            },
            Self::Pool(pool) => match pool {
                PoolError::AlreadyKnown(_) => "already_known",
                PoolError::NonceTooLow { .. } => "nonce_too_low",
                PoolError::ReplacementUnderpriced { .. } => "replacement_underpriced",
                PoolError::PoolFull => "pool_full",
                PoolError::OversizedData { .. } => "oversized",
                PoolError::InsufficientFunds { .. } => "insufficient_funds",
                PoolError::SenderLimit { .. } => "sender_limit",
            },
            Self::Local(_) => "local_error",
        }
    }
}

impl From<StorageError> for TxAdmissionError {
    fn from(err: StorageError) -> Self {
        Self::Local(err.into())
    }
}

/// A fault of this node met while admitting a transaction. Worded as the
/// RPC has always reported it, since the RPC turns each into its own error.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionFault {
    /// Storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// The database has no head block.
    #[error("execution error: the database holds no chain")]
    NoChain,
    /// The head block's header is not in the database.
    #[error("head header missing")]
    HeadHeaderMissing,
}

/// Decodes, validates against the head state and pools raw transactions,
/// then wakes the sealer and announces them on the chain-event channel.
/// Cheap to clone: every clone admits into the same pool.
#[derive(Clone)]
pub struct TxAdmission {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    chain: Arc<ChainSpec>,
    pool: Arc<Mutex<TxPool>>,
    events: broadcast::Sender<ChainEvent>,
    tx_arrived: Arc<Notify>,
}

/// Capacity of a [`TxAdmission::standalone`]'s event channel.
pub const STANDALONE_EVENT_CAPACITY: usize = 16;

impl TxAdmission {
    /// Admission into `pool` over `db`'s head state; `tx_arrived` is
    /// notified and `events` gets a [`ChainEvent::PendingTransaction`] for
    /// every transaction admitted.
    pub fn new(
        db: Database,
        chain: Arc<ChainSpec>,
        pool: Arc<Mutex<TxPool>>,
        events: broadcast::Sender<ChainEvent>,
        tx_arrived: Arc<Notify>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                chain,
                pool,
                events,
                tx_arrived,
            }),
        }
    }

    /// Admission into a pool of its own (with `config`), with its own event
    /// channel and wake-up: for tools and tests that run an RPC without a
    /// node. Events beyond [`STANDALONE_EVENT_CAPACITY`] unread are dropped.
    pub fn standalone(db: Database, chain: Arc<ChainSpec>, config: crate::PoolConfig) -> Self {
        Self::new(
            db,
            chain,
            Arc::new(Mutex::new(TxPool::new(config))),
            broadcast::channel(STANDALONE_EVENT_CAPACITY).0,
            Arc::new(Notify::new()),
        )
    }

    /// The database whose head state transactions are checked against.
    pub fn db(&self) -> &Database {
        &self.inner.db
    }
    /// The chain whose rules apply.
    pub fn chain(&self) -> &Arc<ChainSpec> {
        &self.inner.chain
    }
    /// The pool transactions are admitted into.
    pub fn pool(&self) -> &Arc<Mutex<TxPool>> {
        &self.inner.pool
    }
    /// The channel admitted transactions are announced on.
    pub fn events(&self) -> &broadcast::Sender<ChainEvent> {
        &self.inner.events
    }

    /// Admits the EIP-2718 encoded `raw` transaction: its hash, or why not.
    pub fn admit(&self, raw: &[u8]) -> Result<B256, TxAdmissionError> {
        let admitted = self.admit_inner(raw);
        match &admitted {
            Ok(_) => infera_metrics::txpool::admitted(),
            Err(err) => infera_metrics::txpool::rejected(err.reason()),
        }
        admitted
    }

    fn admit_inner(&self, raw: &[u8]) -> Result<B256, TxAdmissionError> {
        // The pool refuses it anyway; refusing before decoding spares hashing
        // and recovering the signer of payloads up to the gossip limit (11 MiB).
        if raw.len() > MAX_TX_BYTES {
            return Err(PoolError::OversizedData {
                size: raw.len(),
                limit: MAX_TX_BYTES,
            }
            .into());
        }
        let tx = decode_raw_transaction(raw).map_err(|e| match e {
            // A well-formed blob transaction (refused on this chain).
            EvmError::InvalidTransaction(invalid) => TxAdmissionError::Invalid(invalid),
            // Decoding reads no state: every other error is the bytes' own.
            malformed => TxAdmissionError::Malformed(malformed),
        })?;
        let reader = self.inner.db.reader()?;
        let (head, base_fee) = self.next_base_fee(&reader)?;
        let chain = &self.inner.chain;
        let cfg = ExecutionConfig {
            chain_id: chain.chain_id(),
            spec: chain.spec_at(head.number + 1, head.timestamp + 1),
        };
        let account = reader.latest_state().account(tx.sender)?;
        validate_transaction_with_config(&tx, &cfg, account, base_fee, head.gas_limit)?;
        let hash = tx.hash;
        {
            let mut pool = self.inner.pool.lock();
            // Read the sender again under the pool lock: the sealer updates the
            // pool only after committing a block, so `account` may predate a
            // block the pool has already seen, and its nonce would queue this
            // transaction behind a gap that block filled.
            let account = self.inner.db.reader()?.latest_state().account(tx.sender)?;
            let (nonce, balance) = account.map_or((0, U256::ZERO), |a| (a.nonce, a.balance));
            pool.add(tx, nonce, balance, base_fee)?;
        }
        self.inner.tx_arrived.notify_one();
        let _ = self.inner.events.send(ChainEvent::PendingTransaction(hash));
        Ok(hash)
    }

    /// The head header and the base fee of the block after it.
    fn next_base_fee(
        &self,
        reader: &Reader,
    ) -> Result<(alloy_consensus::Header, u64), AdmissionFault> {
        let head = reader.head_number()?.ok_or(AdmissionFault::NoChain)?;
        let header = reader
            .header(head)?
            .ok_or(AdmissionFault::HeadHeaderMissing)?;
        let base_fee = self.inner.chain.next_base_fee(&header).unwrap_or(0);
        Ok((header, base_fee))
    }
}
