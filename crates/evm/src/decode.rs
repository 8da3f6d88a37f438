//! Signature recovery and EIP-2718 decoding.

use alloy_consensus::{TxEnvelope, TxType, transaction::SignerRecoverable};
use alloy_eips::eip2718::{Decodable2718, Eip2718Error};
use infera_primitives::RecoveredTx;

use crate::error::{EvmError, InvalidTransaction, Result};

/// Recover the sender of a signed transaction. Blob transactions are rejected.
pub fn recover(tx: TxEnvelope) -> Result<RecoveredTx> {
    if tx.is_eip4844() {
        return Err(InvalidTransaction::BlobTransactionUnsupported.into());
    }
    let sender = tx
        .recover_signer()
        .map_err(|e| EvmError::InvalidSignature(e.to_string()))?;
    let hash = *tx.hash();
    Ok(RecoveredTx { tx, sender, hash })
}

/// Recover the sender of a signed transaction of any type, blob transactions
/// included: for transactions of imported blocks, which the pool never saw.
pub fn recover_any(tx: TxEnvelope) -> Result<RecoveredTx> {
    let sender = tx
        .recover_signer()
        .map_err(|e| EvmError::InvalidSignature(e.to_string()))?;
    let hash = *tx.hash();
    Ok(RecoveredTx { tx, sender, hash })
}

/// Decode an EIP-2718 encoded transaction (as `eth_sendRawTransaction` gets
/// it) and recover its sender.
pub fn decode_raw_transaction(bytes: &[u8]) -> Result<RecoveredTx> {
    if bytes.is_empty() {
        return Err(EvmError::Decode("empty transaction bytes".into()));
    }
    // EIP-2718: a first byte up to 0x7f is a type; above it, a legacy RLP list.
    const MAX_TYPE_BYTE: u8 = 0x7f;
    let ty = bytes[0];
    if ty <= MAX_TYPE_BYTE && TxType::try_from(ty).is_err() {
        return Err(EvmError::Decode(format!(
            "unsupported transaction type {ty:#04x}"
        )));
    }
    let mut buf = bytes;
    let tx = TxEnvelope::decode_2718(&mut buf).map_err(|error| match error {
        Eip2718Error::UnexpectedType(ty) => {
            EvmError::Decode(format!("unsupported transaction type {ty:#04x}"))
        }
        Eip2718Error::RlpError(rlp) => EvmError::Decode(format!("invalid RLP: {rlp}")),
        other => EvmError::Decode(other.to_string()),
    })?;
    if !buf.is_empty() {
        return Err(EvmError::Decode(format!(
            "{} trailing bytes after the transaction",
            buf.len()
        )));
    }
    recover(tx)
}
