//! Block, receipt and transaction-lookup round trips.

use crate::temp_db;
use alloy_consensus::{
    Eip658Value, Receipt, ReceiptWithBloom, SignableTransaction, TxEip1559, TxEip2930, TxLegacy,
};
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, Signature, TxKind, U256};
use infera_primitives::{Header, ReceiptEnvelope, RecoveredTx, SealedBlock, TxEnvelope};

fn sig() -> Signature {
    Signature::test_signature()
}

pub fn sample_txs(seed: u64) -> Vec<RecoveredTx> {
    let legacy = TxLegacy {
        chain_id: Some(1337),
        nonce: seed,
        gas_price: 7,
        gas_limit: 21_000,
        to: TxKind::Call(Address::repeat_byte(1)),
        value: U256::from(5),
        input: Bytes::new(),
    };
    let eip2930 = TxEip2930 {
        chain_id: 1337,
        nonce: seed + 1,
        gas_price: 9,
        gas_limit: 50_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: Bytes::from_static(&[0x60, 0x00]),
        access_list: Default::default(),
    };
    let eip1559 = TxEip1559 {
        chain_id: 1337,
        nonce: seed + 2,
        gas_limit: 30_000,
        max_fee_per_gas: 100,
        max_priority_fee_per_gas: 2,
        to: TxKind::Call(Address::repeat_byte(2)),
        value: U256::from(seed),
        input: Bytes::from_static(b"hello"),
        access_list: Default::default(),
    };
    let envelopes: Vec<TxEnvelope> = vec![
        legacy.into_signed(sig()).into(),
        eip2930.into_signed(sig()).into(),
        eip1559.into_signed(sig()).into(),
    ];
    envelopes
        .into_iter()
        .enumerate()
        .map(|(i, tx)| RecoveredTx {
            hash: *tx.tx_hash(),
            tx,
            sender: Address::repeat_byte(0x10 + i as u8),
        })
        .collect()
}

pub fn sample_receipts(n: usize) -> Vec<ReceiptEnvelope> {
    (0..n)
        .map(|i| {
            let receipt = Receipt {
                status: Eip658Value::Eip658(i % 2 == 0),
                cumulative_gas_used: 21_000 * (i as u64 + 1),
                logs: vec![Log::new_unchecked(
                    Address::repeat_byte(3),
                    vec![B256::repeat_byte(i as u8)],
                    Bytes::from(vec![i as u8; 3]),
                )],
            };
            let rwb = ReceiptWithBloom {
                receipt,
                logs_bloom: Bloom::repeat_byte(i as u8),
            };
            match i % 3 {
                0 => ReceiptEnvelope::Legacy(rwb),
                1 => ReceiptEnvelope::Eip2930(rwb),
                _ => ReceiptEnvelope::Eip1559(rwb),
            }
        })
        .collect()
}

pub fn sample_block(
    number: u64,
    parent_hash: B256,
    state_root: B256,
    txs: Vec<RecoveredTx>,
) -> SealedBlock {
    let header = Header {
        number,
        parent_hash,
        state_root,
        gas_limit: 30_000_000,
        timestamp: 1_700_000_000 + number,
        base_fee_per_gas: Some(7),
        ..Default::default()
    };
    SealedBlock::new(header, txs)
}

#[test]
fn block_receipts_and_lookup_round_trip() {
    let (_dir, db) = temp_db();
    let genesis = sample_block(0, B256::ZERO, B256::repeat_byte(1), vec![]);
    let b1 = sample_block(1, genesis.hash, B256::repeat_byte(2), sample_txs(0));
    let receipts = sample_receipts(3);

    let mut w = db.writer().unwrap();
    w.insert_block(&genesis, &[]).unwrap();
    w.insert_block(&b1, &receipts).unwrap();
    // Receipt count must match.
    assert!(w.insert_block(&b1, &receipts[..1]).is_err());
    w.commit().unwrap();

    let r = db.reader().unwrap();
    assert_eq!(r.head_number().unwrap(), Some(1));
    assert_eq!(r.canonical_hash(0).unwrap(), Some(genesis.hash));
    assert_eq!(r.block_number(b1.hash).unwrap(), Some(1));
    assert_eq!(r.header(1).unwrap(), Some(b1.header.clone()));
    assert_eq!(
        r.header_by_hash(genesis.hash).unwrap(),
        Some(genesis.header.clone())
    );
    assert_eq!(r.block(1).unwrap(), Some(b1.clone()));
    assert_eq!(
        r.block_by_hash(genesis.hash).unwrap(),
        Some(genesis.clone())
    );
    assert_eq!(r.receipts(1).unwrap(), Some(receipts.clone()));
    assert_eq!(r.receipts(0).unwrap(), Some(vec![]));
    assert_eq!(r.block(2).unwrap(), None);
    assert_eq!(r.receipts(2).unwrap(), None);
    for (i, tx) in b1.transactions.iter().enumerate() {
        let loc = r.transaction_location(tx.hash).unwrap().unwrap();
        assert_eq!(
            (loc.block_number, loc.block_hash, loc.index),
            (1, b1.hash, i as u64)
        );
        let (got, _) = r.transaction(tx.hash).unwrap().unwrap();
        assert_eq!(&got, tx);
    }
    assert_eq!(
        r.transaction_location(B256::repeat_byte(0xee)).unwrap(),
        None
    );
}

#[test]
fn unwind_removes_canonical_blocks_and_lookups() {
    let (_dir, db) = temp_db();
    let genesis = sample_block(0, B256::ZERO, B256::ZERO, vec![]);
    let b1 = sample_block(1, genesis.hash, B256::ZERO, sample_txs(10));
    let mut w = db.writer().unwrap();
    w.insert_block(&genesis, &[]).unwrap();
    w.insert_block(&b1, &sample_receipts(3)).unwrap();
    w.commit().unwrap();

    let mut w = db.writer().unwrap();
    w.unwind_to(0).unwrap();
    w.commit().unwrap();
    let r = db.reader().unwrap();
    assert_eq!(r.head_number().unwrap(), Some(0));
    assert_eq!(r.canonical_hash(1).unwrap(), None);
    assert_eq!(
        r.transaction_location(b1.transactions[0].hash).unwrap(),
        None
    );
    // Still stored by hash.
    assert_eq!(r.block_by_hash(b1.hash).unwrap(), Some(b1));
}
