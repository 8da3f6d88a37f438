//! How failures become JSON-RPC errors, with the codes wallets expect.

use alloy_primitives::Bytes;
use infera_evm::EvmError;
use infera_txpool::{AdmissionFault, TxAdmissionError};
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
    /// Execution failed inside the node, with the executor's error (a
    /// storage read, a fatal precompile error, a block rule of a block the
    /// node built itself); worded like [`RpcError::Evm`].
    #[error("execution error: {0}")]
    Execution(#[source] EvmError),
}

/// What clients see: every refusal of the transaction itself is -32000 with
/// its reason, a local fault keeps its own code.
impl From<TxAdmissionError> for RpcError {
    fn from(err: TxAdmissionError) -> Self {
        match err {
            TxAdmissionError::Malformed(_)
            | TxAdmissionError::Invalid(_)
            | TxAdmissionError::Pool(_) => Self::TransactionRejected(err.to_string()),
            TxAdmissionError::Local(AdmissionFault::Storage(err)) => Self::Storage(err),
            TxAdmissionError::Local(AdmissionFault::NoChain) => {
                Self::Evm("the database holds no chain".into())
            }
            TxAdmissionError::Local(AdmissionFault::HeadHeaderMissing) => {
                Self::NotFound("head header missing".into())
            }
        }
    }
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
            RpcError::Bind { .. }
            | RpcError::Storage(_)
            | RpcError::Evm(_)
            | RpcError::Execution(_) => {
                ErrorObjectOwned::owned(INTERNAL_ERROR_CODE, message, None::<()>)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use infera_evm::InvalidTransaction;

    use super::*;

    fn code_and_message(err: impl Into<RpcError>) -> (i32, String) {
        let object = ErrorObjectOwned::from(err.into());
        (object.code(), object.message().to_owned())
    }

    /// Clients see a refused transaction as before the typed admission
    /// error: -32000 with the reason; a local fault keeps its own code.
    #[test]
    fn admission_errors_keep_their_codes_and_words() {
        let malformed =
            TxAdmissionError::Malformed(EvmError::Decode("empty transaction bytes".into()));
        assert_eq!(
            code_and_message(malformed),
            (
                SERVER_ERROR_CODE,
                "transaction decoding failed: empty transaction bytes".into()
            )
        );
        let invalid = TxAdmissionError::from(InvalidTransaction::NonceTooLow { tx: 0, state: 1 });
        assert_eq!(
            code_and_message(invalid),
            (SERVER_ERROR_CODE, "nonce too low: tx 0, state 1".into())
        );
        for (fault, code, message) in [
            (
                AdmissionFault::NoChain,
                INTERNAL_ERROR_CODE,
                "execution error: the database holds no chain",
            ),
            (
                AdmissionFault::HeadHeaderMissing,
                SERVER_ERROR_CODE,
                "head header missing",
            ),
            (
                AdmissionFault::Storage(infera_storage::StorageError::SchemaMismatch {
                    found: 2,
                    expected: 1,
                }),
                INTERNAL_ERROR_CODE,
                "storage error: the database was written with table layout version 2, but this \
                 build reads only layout version 1; re-sync into a fresh --datadir, or run the \
                 infera release that writes layout version 2",
            ),
        ] {
            // The network logs the fault in the words clients get.
            assert_eq!(fault.to_string(), message);
            let local = TxAdmissionError::Local(fault);
            assert_eq!(code_and_message(local), (code, message.into()));
        }
    }

    #[test]
    fn local_execution_faults_are_internal_errors_worded_as_before() {
        for err in [
            EvmError::Internal("x".into()),
            EvmError::InvalidBlock("x".into()),
        ] {
            assert_eq!(
                code_and_message(crate::eth::evm_error(err)),
                (
                    INTERNAL_ERROR_CODE,
                    "execution error: evm failure: x".into()
                )
            );
        }
    }
}
