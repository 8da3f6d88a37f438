//! [`NodeError`]: what can go wrong in the node's wiring.

use infera_primitives::B256;

/// Errors of the node's wiring.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] infera_storage::StorageError),
    /// Execution failed for a reason other than an invalid transaction.
    #[error(transparent)]
    Evm(#[from] infera_evm::EvmError),
    /// The RPC server could not start.
    #[error(transparent)]
    Rpc(#[from] infera_rpc::RpcError),
    /// The datadir holds a different chain than the one requested.
    #[error(
        "the datadir holds a chain with genesis {stored}, but the chain spec's genesis is {expected}; use another --datadir"
    )]
    WrongChain { stored: B256, expected: B256 },
    /// The datadir has no genesis block (run `infera init`).
    #[error("the datadir holds no chain; run `infera init` or start with --dev")]
    NoGenesis,
    /// An internal invariant failed: a bug or corrupted data.
    #[error("internal invariant violated: {0}")]
    Invariant(String),
    /// The node's configuration cannot work (e.g. a key that is not an authority).
    #[error("{0}")]
    Config(String),
    /// I/O error (datadir creation, signals).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias for this crate.
pub type NodeResult<T> = Result<T, NodeError>;
