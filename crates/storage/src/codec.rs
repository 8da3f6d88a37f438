//! Key builders and value encodings of the tables (see [`crate::tables`]).

use crate::{
    error::{StorageError, StorageResult},
    tables::Table,
};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, U256};
use alloy_rlp::{Decodable, Encodable, Header as RlpHeader, RlpDecodable, RlpEncodable};
use infera_primitives::{Account, ReceiptEnvelope, RecoveredTx, TxEnvelope};

/// Bytes of an address.
pub(crate) const ADDRESS_BYTES: usize = 20;
/// Bytes of a hash or a big-endian U256.
pub(crate) const WORD_BYTES: usize = 32;
/// Bytes of a big-endian u64.
pub(crate) const U64_BYTES: usize = 8;
/// `PlainStorage` key: address ++ slot.
pub(crate) const STORAGE_KEY_BYTES: usize = ADDRESS_BYTES + WORD_BYTES;
/// `AccountHistory` key: address ++ block.
pub(crate) const ACCOUNT_HISTORY_KEY_BYTES: usize = ADDRESS_BYTES + U64_BYTES;
/// `StorageHistory` key: address ++ slot ++ block.
pub(crate) const STORAGE_HISTORY_KEY_BYTES: usize = STORAGE_KEY_BYTES + U64_BYTES;
/// `HashedStorage` key: hashed address ++ hashed slot.
pub(crate) const HASHED_STORAGE_KEY_BYTES: usize = 2 * WORD_BYTES;

/// Longest RLP header: one prefix byte and an 8-byte length.
const RLP_MAX_HEADER_BYTES: usize = 1 + U64_BYTES;

/// Tag of an `AccountHistory` value: the account did not exist.
const HISTORY_ABSENT: u8 = 0;
/// Tag of an `AccountHistory` value: RLP of the account follows.
const HISTORY_PRESENT: u8 = 1;

pub(crate) fn storage_key(address: &Address, slot: &U256) -> [u8; STORAGE_KEY_BYTES] {
    let mut k = [0u8; STORAGE_KEY_BYTES];
    k[..ADDRESS_BYTES].copy_from_slice(address.as_slice());
    k[ADDRESS_BYTES..].copy_from_slice(&slot.to_be_bytes::<WORD_BYTES>());
    k
}

pub(crate) fn account_history_key(
    address: &Address,
    block: u64,
) -> [u8; ACCOUNT_HISTORY_KEY_BYTES] {
    let mut k = [0u8; ACCOUNT_HISTORY_KEY_BYTES];
    k[..ADDRESS_BYTES].copy_from_slice(address.as_slice());
    k[ADDRESS_BYTES..].copy_from_slice(&block.to_be_bytes());
    k
}

pub(crate) fn storage_history_key(
    address: &Address,
    slot: &U256,
    block: u64,
) -> [u8; STORAGE_HISTORY_KEY_BYTES] {
    let mut k = [0u8; STORAGE_HISTORY_KEY_BYTES];
    k[..STORAGE_KEY_BYTES].copy_from_slice(&storage_key(address, slot));
    k[STORAGE_KEY_BYTES..].copy_from_slice(&block.to_be_bytes());
    k
}

pub(crate) fn hashed_storage_key(
    hashed_address: &B256,
    hashed_slot: &B256,
) -> [u8; HASHED_STORAGE_KEY_BYTES] {
    let mut k = [0u8; HASHED_STORAGE_KEY_BYTES];
    k[..WORD_BYTES].copy_from_slice(hashed_address.as_slice());
    k[WORD_BYTES..].copy_from_slice(hashed_slot.as_slice());
    k
}

/// Decodes a u64 stored big-endian.
pub(crate) fn decode_u64(table: Table, key: &[u8], v: &[u8]) -> StorageResult<u64> {
    let arr: [u8; U64_BYTES] = v.try_into().map_err(|_| {
        StorageError::corrupt(table, key, format!("expected 8 bytes, got {}", v.len()))
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// Decodes a 32-byte hash.
pub(crate) fn decode_b256(table: Table, key: &[u8], v: &[u8]) -> StorageResult<B256> {
    B256::try_from(v).map_err(|_| {
        StorageError::corrupt(table, key, format!("expected 32 bytes, got {}", v.len()))
    })
}

/// Decodes a U256 stored as 32 big-endian bytes.
pub(crate) fn decode_word(table: Table, key: &[u8], v: &[u8]) -> StorageResult<U256> {
    let arr: [u8; WORD_BYTES] = v.try_into().map_err(|_| {
        StorageError::corrupt(table, key, format!("expected 32 bytes, got {}", v.len()))
    })?;
    Ok(U256::from_be_bytes(arr))
}

/// Decodes an RLP value that must span the whole buffer.
pub(crate) fn decode_rlp<T: Decodable>(table: Table, key: &[u8], mut v: &[u8]) -> StorageResult<T> {
    let out = T::decode(&mut v).map_err(|e| StorageError::corrupt(table, key, e))?;
    if !v.is_empty() {
        return Err(StorageError::corrupt(
            table,
            key,
            "trailing bytes after RLP value",
        ));
    }
    Ok(out)
}

/// Encodes an `AccountHistory` value.
pub(crate) fn encode_account_history(old: Option<&Account>, out: &mut Vec<u8>) {
    out.clear();
    match old {
        None => out.push(HISTORY_ABSENT),
        Some(acc) => {
            out.push(HISTORY_PRESENT);
            acc.encode(out);
        }
    }
}

/// Decodes an `AccountHistory` value.
pub(crate) fn decode_account_history(key: &[u8], v: &[u8]) -> StorageResult<Option<Account>> {
    match v.split_first() {
        Some((&HISTORY_ABSENT, [])) => Ok(None),
        Some((&HISTORY_PRESENT, rest)) => decode_rlp(Table::AccountHistory, key, rest).map(Some),
        _ => Err(StorageError::corrupt(
            Table::AccountHistory,
            key,
            "bad history tag",
        )),
    }
}

/// One entry of a block's change set.
#[derive(Clone, Debug, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct ChangeSetEntry {
    pub(crate) address: Address,
    /// True when an `AccountHistory` entry exists for (address, block).
    pub(crate) account_changed: bool,
    /// Slots with a `StorageHistory` entry for (address, slot, block), ascending.
    pub(crate) slots: Vec<U256>,
}

/// Payload length of an RLP list of byte strings holding EIP-2718 encodings.
fn list_2718_payload_len<'a, T: Encodable2718 + 'a>(items: impl Iterator<Item = &'a T>) -> usize {
    items
        .map(|t| {
            let len = t.encode_2718_len();
            RlpHeader {
                list: false,
                payload_length: len,
            }
            .length()
                + len
        })
        .sum()
}

/// Appends `items` as an RLP list of byte strings, each the EIP-2718 encoding of one item.
fn encode_2718_list<'a, T: Encodable2718 + 'a>(
    items: impl Iterator<Item = &'a T> + Clone,
    out: &mut Vec<u8>,
) {
    let payload_length = list_2718_payload_len(items.clone());
    RlpHeader {
        list: true,
        payload_length,
    }
    .encode(out);
    for t in items {
        RlpHeader {
            list: false,
            payload_length: t.encode_2718_len(),
        }
        .encode(out);
        t.encode_2718(out);
    }
}

/// Decodes an RLP list of byte strings, each an EIP-2718 encoding.
fn decode_2718_list<T: Decodable2718>(buf: &mut &[u8]) -> alloy_rlp::Result<Vec<T>> {
    let mut list = RlpHeader::decode_bytes(buf, true)?;
    let mut out = Vec::new();
    while !list.is_empty() {
        let mut item = RlpHeader::decode_bytes(&mut list, false)?;
        let t = T::decode_2718(&mut item)
            .map_err(|_| alloy_rlp::Error::Custom("bad EIP-2718 encoding"))?;
        if !item.is_empty() {
            return Err(alloy_rlp::Error::Custom(
                "trailing bytes after EIP-2718 item",
            ));
        }
        out.push(t);
    }
    Ok(out)
}

/// Encodes a `BlockBodies` value.
pub(crate) fn encode_body(txs: &[RecoveredTx], out: &mut Vec<u8>) {
    out.clear();
    let txs_payload = list_2718_payload_len(txs.iter().map(|t| &t.tx));
    let txs_len = RlpHeader {
        list: true,
        payload_length: txs_payload,
    }
    .length()
        + txs_payload;
    // Each sender: a 20-byte string with a one-byte RLP header.
    let senders_payload = txs.len() * (ADDRESS_BYTES + 1);
    let senders_header = RlpHeader {
        list: true,
        payload_length: senders_payload,
    };
    let payload_length = txs_len + senders_header.length() + senders_payload;
    out.reserve(RLP_MAX_HEADER_BYTES + payload_length);
    RlpHeader {
        list: true,
        payload_length,
    }
    .encode(out);
    encode_2718_list(txs.iter().map(|t| &t.tx), out);
    senders_header.encode(out);
    for t in txs {
        t.sender.encode(out);
    }
    debug_assert_eq!(
        out.len(),
        RlpHeader {
            list: true,
            payload_length
        }
        .length()
            + payload_length
    );
}

/// Decodes a `BlockBodies` value.
pub(crate) fn decode_body(key: &[u8], v: &[u8]) -> StorageResult<Vec<RecoveredTx>> {
    let corrupt = |e: alloy_rlp::Error| StorageError::corrupt(Table::BlockBodies, key, e);
    let mut buf = v;
    let mut body = RlpHeader::decode_bytes(&mut buf, true).map_err(corrupt)?;
    let txs: Vec<TxEnvelope> = decode_2718_list(&mut body).map_err(corrupt)?;
    let senders = Vec::<Address>::decode(&mut body).map_err(corrupt)?;
    if !buf.is_empty() || !body.is_empty() {
        return Err(StorageError::corrupt(
            Table::BlockBodies,
            key,
            "trailing bytes",
        ));
    }
    if senders.len() != txs.len() {
        return Err(StorageError::corrupt(
            Table::BlockBodies,
            key,
            format!("{} transactions but {} senders", txs.len(), senders.len()),
        ));
    }
    Ok(txs
        .into_iter()
        .zip(senders)
        .map(|(tx, sender)| {
            let hash = *tx.tx_hash();
            RecoveredTx { tx, sender, hash }
        })
        .collect())
}

/// Encodes a `Receipts` value.
pub(crate) fn encode_receipts(receipts: &[ReceiptEnvelope], out: &mut Vec<u8>) {
    out.clear();
    encode_2718_list(receipts.iter(), out);
}

/// Decodes a `Receipts` value.
pub(crate) fn decode_receipts(key: &[u8], v: &[u8]) -> StorageResult<Vec<ReceiptEnvelope>> {
    let mut buf = v;
    let out =
        decode_2718_list(&mut buf).map_err(|e| StorageError::corrupt(Table::Receipts, key, e))?;
    if !buf.is_empty() {
        return Err(StorageError::corrupt(
            Table::Receipts,
            key,
            "trailing bytes",
        ));
    }
    Ok(out)
}
