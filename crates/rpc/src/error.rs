//! How failures become JSON-RPC errors, with the codes wallets expect.

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;

/// JSON-RPC 2.0: invalid method parameters.
pub const INVALID_PARAMS_CODE: i32 = -32602;
/// JSON-RPC 2.0: internal error.
pub const INTERNAL_ERROR_CODE: i32 = -32603;
/// Geth's code for a rejected transaction or failed call ("server error").
pub const SERVER_ERROR_CODE: i32 = -32000;
/// EIP-1474: the request exceeds a limit (block range, result count).
pub const LIMIT_EXCEEDED_CODE: i32 = -32005;
/// EIP-1474 / geth: execution reverted, with the revert data as `data`.
pub const EXECUTION_REVERTED_CODE: i32 = 3;

/// Errors of the RPC layer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// A parameter is malformed or out of range.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// A transaction was refused (decoding, validation or pool rules).
    #[error("{0}")]
    TransactionRejected(String),
    /// The EVM reverted; carries the revert data.
    #[error("execution reverted{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Reverted { reason: Option<String>, data: Bytes },
    /// The EVM halted (out of gas, invalid opcode...).
    #[error("{0}")]
    Halted(String),
    /// A signing method named an account this node holds no key for.
    #[error("{0}")]
    UnknownAccount(String),
    /// A request exceeds a limit of this node.
    #[error("{0}")]
    LimitExceeded(String),
    /// A referenced block does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A server could not bind its address.
    #[error("cannot start RPC server on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// Storage failed.
    #[error("storage error: {0}")]
    Storage(#[from] infera_storage::StorageError),
    /// Execution failed inside the node.
    #[error("execution error: {0}")]
    Evm(String),
}

/// Result alias for this crate.
pub type RpcResult<T> = Result<T, RpcError>;

impl From<RpcError> for ErrorObjectOwned {
    fn from(err: RpcError) -> Self {
        let message = err.to_string();
        match err {
            RpcError::InvalidParams(_) => {
                ErrorObjectOwned::owned(INVALID_PARAMS_CODE, message, None::<()>)
            }
            RpcError::Reverted { data, .. } => {
                ErrorObjectOwned::owned(EXECUTION_REVERTED_CODE, message, Some(data))
            }
            RpcError::TransactionRejected(_)
            | RpcError::Halted(_)
            | RpcError::NotFound(_)
            | RpcError::UnknownAccount(_) => {
                ErrorObjectOwned::owned(SERVER_ERROR_CODE, message, None::<()>)
            }
            RpcError::LimitExceeded(_) => {
                ErrorObjectOwned::owned(LIMIT_EXCEEDED_CODE, message, None::<()>)
            }
            RpcError::Bind { .. } | RpcError::Storage(_) | RpcError::Evm(_) => {
                ErrorObjectOwned::owned(INTERNAL_ERROR_CODE, message, None::<()>)
            }
        }
    }
}
