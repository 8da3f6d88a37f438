//! Errors of the executor: why a transaction is invalid, and everything else.

use alloy_primitives::{Bytes, U256};

/// Why a transaction cannot be included (in a block, or in the pool). An
/// invalid transaction changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTransaction {
    /// The transaction nonce is below the sender's account nonce.
    #[error("nonce too low: tx {tx}, state {state}")]
    NonceTooLow {
        /// Nonce of the transaction.
        tx: u64,
        /// Nonce of the sender account.
        state: u64,
    },
    /// The transaction nonce is above the sender's account nonce.
    #[error("nonce too high: tx {tx}, state {state}")]
    NonceTooHigh {
        /// Nonce of the transaction.
        tx: u64,
        /// Nonce of the sender account.
        state: u64,
    },
    /// The sender's nonce is at its maximum.
    #[error("nonce overflow: sender nonce is u64::MAX")]
    NonceOverflow,
    /// The sender cannot pay `gas_limit * max_fee + value`.
    #[error("insufficient funds for gas * price + value: balance {balance}, cost {cost}")]
    InsufficientFunds {
        /// The sender's balance.
        balance: U256,
        /// The most the transaction can cost.
        cost: U256,
    },
    /// The gas limit does not cover the intrinsic gas.
    #[error("intrinsic gas too low: gas limit {gas_limit}, intrinsic gas {intrinsic_gas}")]
    IntrinsicGasTooLow {
        /// Gas limit of the transaction.
        gas_limit: u64,
        /// Gas the transaction needs before execution (or its EIP-7623 floor).
        intrinsic_gas: u64,
    },
    /// The gas limit is above what is left in the block.
    #[error("gas limit {gas_limit} exceeds the block's remaining gas {remaining}")]
    GasLimitAboveBlockRemaining {
        /// Gas limit of the transaction.
        gas_limit: u64,
        /// Gas left in the block.
        remaining: u64,
    },
    /// The gas limit is above the block gas limit.
    #[error("gas limit {gas_limit} exceeds the block gas limit {block_gas_limit}")]
    GasLimitAboveBlockLimit {
        /// Gas limit of the transaction.
        gas_limit: u64,
        /// Gas limit of the block.
        block_gas_limit: u64,
    },
    /// The gas limit is above the per-transaction cap (EIP-7825).
    #[error("gas limit {gas_limit} exceeds the transaction gas cap {cap} (EIP-7825)")]
    GasLimitAboveCap {
        /// Gas limit of the transaction.
        gas_limit: u64,
        /// The cap.
        cap: u64,
    },
    /// The max fee per gas (or gas price) is below the block's base fee.
    #[error("max fee per gas less than block base fee: max fee {max_fee}, base fee {base_fee}")]
    FeeCapBelowBaseFee {
        /// Max fee per gas (or gas price) of the transaction.
        max_fee: u128,
        /// Base fee of the block.
        base_fee: u64,
    },
    /// The priority fee is above the max fee.
    #[error("max priority fee per gas higher than max fee per gas: tip {tip}, max fee {max_fee}")]
    TipAboveFeeCap {
        /// Max priority fee per gas.
        tip: u128,
        /// Max fee per gas.
        max_fee: u128,
    },
    /// The transaction is signed for another chain.
    #[error("invalid chain id: tx {tx}, expected {expected}")]
    WrongChainId {
        /// Chain id of the transaction.
        tx: u64,
        /// Chain id of this chain.
        expected: u64,
    },
    /// EIP-4844 blob transactions are not supported (the chain has no blobs).
    #[error("blob transactions (EIP-4844) are not supported on this chain")]
    BlobTransactionUnsupported,
    /// The transaction type is not enabled in the chain's fork.
    #[error("transaction type {0} is not supported by the active fork")]
    TypeNotSupported(u8),
    /// An EIP-7702 transaction without authorizations.
    #[error("EIP-7702 transaction has an empty authorization list")]
    EmptyAuthorizationList,
    /// The sender has code that is not an EIP-7702 delegation (EIP-3607).
    #[error("sender is not an EOA: it has contract code (EIP-3607)")]
    SenderNotEoa,
    /// The init code is above the EIP-3860 limit.
    #[error("max initcode size exceeded: {size} bytes, limit {limit}")]
    InitCodeTooLarge {
        /// Size of the init code.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `gas_limit * price + value` overflows.
    #[error("transaction cost overflows")]
    CostOverflow,
    /// Another reason revm rejected the transaction.
    #[error("invalid transaction: {0}")]
    Other(String),
}

/// Errors of `infera-evm`.
#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// The transaction is invalid; nothing changed.
    #[error(transparent)]
    InvalidTransaction(#[from] InvalidTransaction),
    /// Reading state failed: a local fault, not a property of the transaction.
    #[error(transparent)]
    Database(#[from] crate::db::StateDbError),
    /// The raw transaction bytes do not decode.
    #[error("transaction decoding failed: {0}")]
    Decode(String),
    /// The signature does not recover a sender.
    #[error("invalid transaction signature: {0}")]
    InvalidSignature(String),
    /// Execution reverted (gas estimation: at every gas limit).
    #[error("execution reverted{}", revert_reason_suffix(output))]
    Revert {
        /// The revert data.
        output: Bytes,
    },
    /// Execution halted (gas estimation: at the highest gas limit).
    #[error("execution halted: {reason}")]
    Halt {
        /// Why it halted.
        reason: String,
    },
    /// A call request that cannot be turned into a transaction.
    #[error("invalid call request: {0}")]
    InvalidRequest(String),
    /// The block breaks a rule that only executing it reveals: a system call
    /// (EIP-4788, 2935, 7002, 7251) that fails, a deposit log that does not
    /// parse (EIP-6110), a header that is no valid block environment. The
    /// block is invalid, whoever built it.
    #[error("evm failure: {0}")]
    InvalidBlock(String),
    /// A fault of this node, neither the transaction's nor the block's: a
    /// fatal precompile error (state the AI precompiles cannot read, a stored
    /// model that does not decode), an unexpected failure inside revm.
    #[error("evm failure: {0}")]
    Internal(String),
    /// An RPC execution ran past its deadline and was stopped (geth's wording).
    #[error("execution aborted (timeout = {timeout:?})")]
    Timeout {
        /// The timeout the deadline was set with.
        timeout: std::time::Duration,
    },
}

impl EvmError {
    /// True when the error says the transaction is invalid (rather than a local fault).
    pub fn is_invalid_transaction(&self) -> bool {
        matches!(self, Self::InvalidTransaction(_))
    }
}

/// Decode a Solidity `Error(string)` revert payload, if it is one.
pub fn decode_revert_reason(output: &[u8]) -> Option<String> {
    const ERROR_SELECTOR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
    const WORD_BYTES: usize = 32;
    let data = output.strip_prefix(&ERROR_SELECTOR)?;
    let len_word = data.get(WORD_BYTES..2 * WORD_BYTES)?;
    let len = usize::try_from(U256::from_be_slice(len_word)).ok()?;
    let bytes = data.get(2 * WORD_BYTES..(2 * WORD_BYTES).checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

fn revert_reason_suffix(output: &Bytes) -> String {
    match decode_revert_reason(output) {
        Some(reason) => format!(": {reason}"),
        None if output.is_empty() => String::new(),
        None => format!(": {output}"),
    }
}

/// Result alias of `infera-evm`.
pub type Result<T, E = EvmError> = std::result::Result<T, E>;

/// Map revm's rejection of a transaction to ours.
pub(crate) fn from_revm_invalid(
    error: revm::context::result::InvalidTransaction,
) -> InvalidTransaction {
    use revm::context::result::InvalidTransaction as R;
    match error {
        // Geth's wording, which client libraries match on (viem's
        // `TipAboveFeeCapError` and `FeeCapTooLowError`); revm's own text matches neither.
        R::PriorityFeeGreaterThanMaxFee => {
            InvalidTransaction::Other("max priority fee per gas higher than max fee per gas".into())
        }
        R::GasPriceLessThanBasefee => {
            InvalidTransaction::Other("max fee per gas less than block base fee".into())
        }
        R::NonceTooLow { tx, state } => InvalidTransaction::NonceTooLow { tx, state },
        R::NonceTooHigh { tx, state } => InvalidTransaction::NonceTooHigh { tx, state },
        R::NonceOverflowInTransaction => InvalidTransaction::NonceOverflow,
        R::LackOfFundForMaxFee { fee, balance } => InvalidTransaction::InsufficientFunds {
            balance: *balance,
            cost: *fee,
        },
        R::CallGasCostMoreThanGasLimit {
            initial_gas,
            gas_limit,
        } => InvalidTransaction::IntrinsicGasTooLow {
            gas_limit,
            intrinsic_gas: initial_gas,
        },
        R::GasFloorMoreThanGasLimit {
            gas_floor,
            gas_limit,
        } => InvalidTransaction::IntrinsicGasTooLow {
            gas_limit,
            intrinsic_gas: gas_floor,
        },
        R::TxGasLimitGreaterThanCap { gas_limit, cap } => {
            InvalidTransaction::GasLimitAboveCap { gas_limit, cap }
        }
        R::RejectCallerWithCode => InvalidTransaction::SenderNotEoa,
        R::EmptyAuthorizationList => InvalidTransaction::EmptyAuthorizationList,
        R::Eip4844NotSupported
        | R::BlobCreateTransaction
        | R::EmptyBlobs
        | R::BlobVersionedHashesNotSupported
        | R::MaxFeePerBlobGasNotSupported => InvalidTransaction::BlobTransactionUnsupported,
        R::CreateInitCodeSizeLimit => {
            InvalidTransaction::Other("max initcode size exceeded (EIP-3860)".into())
        }
        R::OverflowPaymentInTransaction => InvalidTransaction::CostOverflow,
        other => InvalidTransaction::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages of fee errors that `eth_call`/`eth_estimateGas` report keep
    /// the phrases client libraries recognise (viem's node-error regexes, as geth words them).
    #[test]
    fn fee_rejections_use_the_wording_clients_match() {
        use revm::context::result::InvalidTransaction as R;
        let low = from_revm_invalid(R::GasPriceLessThanBasefee).to_string();
        assert!(
            low.contains("max fee per gas less than block base fee"),
            "{low}"
        );
        let tip = from_revm_invalid(R::PriorityFeeGreaterThanMaxFee).to_string();
        assert!(
            tip.contains("max priority fee per gas higher than max fee per gas"),
            "{tip}"
        );
        // the structured variants the pool uses say the same
        let pool_low = InvalidTransaction::FeeCapBelowBaseFee {
            max_fee: 1,
            base_fee: 7,
        };
        assert!(
            pool_low
                .to_string()
                .starts_with("max fee per gas less than block base fee")
        );
    }

    #[test]
    fn revert_reason_decodes_error_string() {
        // Error("hi")
        let data = alloy_primitives::hex!(
            "08c379a0"
            "0000000000000000000000000000000000000000000000000000000000000020"
            "0000000000000000000000000000000000000000000000000000000000000002"
            "6869000000000000000000000000000000000000000000000000000000000000"
        );
        assert_eq!(decode_revert_reason(&data).as_deref(), Some("hi"));
        assert_eq!(decode_revert_reason(&[1, 2, 3]), None);
        let error = EvmError::Revert {
            output: Bytes::copy_from_slice(&data),
        };
        assert_eq!(error.to_string(), "execution reverted: hi");
        assert_eq!(
            EvmError::Revert {
                output: Bytes::new()
            }
            .to_string(),
            "execution reverted"
        );
    }
}
