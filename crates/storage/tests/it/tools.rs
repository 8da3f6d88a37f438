//! Operator tools: read-only open, per-table statistics, and the state check
//! from the plain tables (including corruptions it must catch).

use crate::{
    blocks::{sample_block, sample_receipts, sample_txs},
    eoa, temp_db,
};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rlp::Encodable;
use alloy_trie::{
    TrieAccount,
    root::{state_root_unhashed, storage_root_unhashed},
};
use infera_primitives::{Account, AccountChange, StateChanges};
use infera_storage::{Database, StorageError, Table, meta_keys};
use signet_libmdbx::WriteFlags;
use std::collections::BTreeMap;

const BLOCKS: u64 = 12;
/// Transactions per block of `sample_txs`.
const TXS_PER_BLOCK: u64 = 3;

/// Current state of the test chain: account, code, storage.
type Model = BTreeMap<Address, (Account, Option<Bytes>, BTreeMap<U256, U256>)>;

/// State changes of block `n`: a pure function of `n` that creates accounts,
/// moves balances, deploys code, writes and clears slots and destroys an
/// account, so the tables hold every kind of entry.
fn changes_for(n: u64) -> StateChanges {
    let mut changes = StateChanges::default();
    changes.accounts.insert(
        Address::with_last_byte((n % 5) as u8 + 1),
        AccountChange {
            info: Some(eoa(n, 1_000 + n)),
            ..Default::default()
        },
    );
    let contract = Address::repeat_byte(0xc0 + (n % 3) as u8);
    let code = Bytes::from(vec![0x60, n as u8, 0x00]);
    let mut account = eoa(1, n);
    account.code_hash = keccak256(&code);
    changes.contracts.insert(account.code_hash, code);
    let storage = [
        (U256::from(n % 7), U256::from(n + 1)),
        (U256::from(100 + n), U256::from(n * 3 + 1)),
        // Clears a slot an earlier block may have set.
        (U256::from((n + 3) % 7), U256::ZERO),
    ]
    .into_iter()
    .collect();
    changes.accounts.insert(
        contract,
        AccountChange {
            info: Some(account),
            storage_wiped: n % 5 == 4,
            storage,
        },
    );
    if n % 4 == 3 {
        changes.accounts.insert(
            Address::with_last_byte(((n + 2) % 5) as u8 + 1),
            AccountChange {
                info: None,
                storage_wiped: true,
                ..Default::default()
            },
        );
    }
    changes
}

fn apply_to_model(model: &mut Model, changes: &StateChanges) {
    for (address, change) in &changes.accounts {
        let Some(info) = change.info else {
            model.remove(address);
            continue;
        };
        let entry = model
            .entry(*address)
            .or_insert_with(|| (info, None, BTreeMap::new()));
        entry.0 = info;
        entry.1 = changes.contracts.get(&info.code_hash).cloned();
        if change.storage_wiped {
            entry.2.clear();
        }
        for (slot, value) in &change.storage {
            if value.is_zero() {
                entry.2.remove(slot);
            } else {
                entry.2.insert(*slot, *value);
            }
        }
    }
}

fn model_root(model: &Model) -> B256 {
    state_root_unhashed(model.iter().map(|(address, (acc, _, storage))| {
        let storage_root = storage_root_unhashed(
            storage
                .iter()
                .map(|(slot, value)| (B256::from(slot.to_be_bytes::<32>()), *value)),
        );
        (
            *address,
            TrieAccount::new(acc.nonce, acc.balance, storage_root, acc.code_hash),
        )
    }))
}

/// Commits blocks `0..BLOCKS`, each with the writer's state root in its
/// header; returns the final state.
fn build_chain(db: &Database) -> Model {
    let mut model = Model::new();
    let mut parent = B256::ZERO;
    for n in 0..BLOCKS {
        let changes = changes_for(n);
        apply_to_model(&mut model, &changes);
        let mut w = db.writer().unwrap();
        w.apply_state(n, &changes).unwrap();
        let root = w.state_root().unwrap();
        let block = sample_block(n, parent, root, sample_txs(n * TXS_PER_BLOCK));
        w.insert_block(&block, &sample_receipts(TXS_PER_BLOCK as usize))
            .unwrap();
        w.commit().unwrap();
        parent = block.hash;
    }
    model
}

/// Runs `f` in a raw MDBX write transaction on `table`, bypassing the
/// writer, so that tests can damage the database on purpose.
fn raw_write(
    db: &Database,
    table: Table,
    f: impl FnOnce(&signet_libmdbx::tx::aliases::RwTxSync, signet_libmdbx::Database),
) {
    let tx = db.env().begin_rw_sync().unwrap();
    let handle = tx.open_db(Some(table.name())).unwrap();
    f(&tx, handle);
    tx.commit().unwrap();
}

#[test]
fn stats_count_the_entries_of_every_table() {
    let (dir, db) = temp_db();
    let empty = db.stats().unwrap();
    assert_eq!(empty.tables.len(), Table::ALL.len());
    assert_eq!(empty.head_number, None);
    assert_eq!(empty.table(Table::Headers).entries, 0);
    assert_eq!(empty.table(Table::Headers).depth, 0);
    // Only the schema version.
    assert_eq!(empty.table(Table::Meta).entries, 1);

    let model = build_chain(&db);
    drop(db);
    // The tool's way in: read-only, and the numbers must be the same.
    let db = Database::open_read_only(dir.path()).unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.head_number, Some(BLOCKS - 1));
    for (i, t) in stats.tables.iter().enumerate() {
        assert_eq!(t.table, Table::ALL[i]);
    }
    for table in [
        Table::CanonicalHeaders,
        Table::HeaderNumbers,
        Table::Headers,
        Table::BlockBodies,
        Table::Receipts,
        Table::BlockChangeSets,
    ] {
        assert_eq!(stats.table(table).entries, BLOCKS, "{}", table.name());
    }
    assert_eq!(stats.table(Table::TxLookup).entries, BLOCKS * TXS_PER_BLOCK);
    let slots: usize = model.values().map(|(_, _, s)| s.len()).sum();
    assert_eq!(
        stats.table(Table::PlainAccounts).entries,
        model.len() as u64
    );
    assert_eq!(
        stats.table(Table::HashedAccounts).entries,
        model.len() as u64
    );
    assert_eq!(stats.table(Table::PlainStorage).entries, slots as u64);
    assert_eq!(stats.table(Table::HashedStorage).entries, slots as u64);
    // Every block deployed distinct code.
    assert_eq!(stats.table(Table::Bytecodes).entries, BLOCKS);
    // Schema version and head number.
    assert_eq!(stats.table(Table::Meta).entries, 2);

    assert!(stats.page_size.is_power_of_two() && stats.page_size >= 512);
    for t in &stats.tables {
        assert_eq!(
            t.size_bytes(stats.page_size),
            t.pages() * u64::from(stats.page_size)
        );
        assert_eq!(t.pages() == 0, t.entries == 0, "{}", t.table.name());
        assert_eq!(t.depth == 0, t.entries == 0, "{}", t.table.name());
    }
    assert_eq!(
        stats.total_entries(),
        stats.tables.iter().map(|t| t.entries).sum::<u64>()
    );
    assert!(stats.total_size_bytes() > 0);
    assert!(stats.file_size_bytes >= stats.total_size_bytes());
}

#[test]
fn verify_recomputes_the_head_root_from_the_plain_state() {
    let (dir, db) = temp_db();
    let model = build_chain(&db);
    let expected = model_root(&model);

    let report = db.reader().unwrap().verify_state().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.head_number, BLOCKS - 1);
    assert_eq!(report.header_state_root, expected);
    assert_eq!(report.computed_state_root, expected);
    assert_eq!(report.accounts, model.len() as u64);
    assert_eq!(
        report.slots,
        model.values().map(|(_, _, s)| s.len() as u64).sum::<u64>()
    );
    assert!(report.slots > 0);
    assert_eq!(report.code_entries, BLOCKS);
    assert_eq!(report.problem_count, 0);
    drop(db);

    let ro = Database::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.reader().unwrap().verify_state().unwrap(), report);
}

#[test]
fn verify_detects_a_corrupted_plain_account() {
    let (_dir, db) = temp_db();
    let model = build_chain(&db);
    let (address, (account, _, _)) = model.iter().next().unwrap();
    let mut wrong = *account;
    wrong.balance += U256::from(1);
    let mut value = Vec::new();
    wrong.encode(&mut value);
    raw_write(&db, Table::PlainAccounts, |tx, table| {
        tx.put(table, address.as_slice(), &value, WriteFlags::empty())
            .unwrap();
    });

    // The hashed tables still agree with the header: only the independent
    // check from the plain state sees the damage.
    assert_eq!(
        db.writer().unwrap().state_root().unwrap(),
        model_root(&model)
    );
    let report = db.reader().unwrap().verify_state().unwrap();
    assert!(!report.root_matches(), "{report:?}");
    assert!(!report.is_ok());
    assert_eq!(report.header_state_root, model_root(&model));
    assert_ne!(report.computed_state_root, report.header_state_root);
    let mut damaged = model.clone();
    damaged.get_mut(address).unwrap().0 = wrong;
    assert_eq!(report.computed_state_root, model_root(&damaged));
}

#[test]
fn verify_reports_missing_code_and_orphan_storage() {
    let (_dir, db) = temp_db();
    let model = build_chain(&db);
    let (address, (account, _, _)) = model
        .iter()
        .find(|(_, (_, code, _))| code.is_some())
        .unwrap();
    raw_write(&db, Table::Bytecodes, |tx, table| {
        tx.del(table, account.code_hash.as_slice(), None).unwrap();
    });
    let orphan = Address::repeat_byte(0xee);
    let mut key = orphan.to_vec();
    key.extend_from_slice(&U256::from(1).to_be_bytes::<32>());
    raw_write(&db, Table::PlainStorage, |tx, table| {
        tx.put(
            table,
            &key,
            U256::from(5).to_be_bytes::<32>(),
            WriteFlags::empty(),
        )
        .unwrap();
    });

    let report = db.reader().unwrap().verify_state().unwrap();
    // Neither shows in the root ...
    assert!(report.root_matches(), "{report:?}");
    // ... but both are reported.
    assert!(!report.is_ok());
    assert_eq!(report.problem_count, 2, "{:?}", report.problems);
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&address.to_string()) && p.contains("no such code")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("1 slots of accounts that do not exist")),
        "{:?}",
        report.problems
    );
}

#[test]
fn verify_without_a_head_is_an_error() {
    let (_dir, db) = temp_db();
    match db.reader().unwrap().verify_state() {
        Err(e @ StorageError::Verify(_)) => assert!(e.to_string().contains("no head block")),
        other => panic!("expected a verify error, got {other:?}"),
    }
}

#[test]
fn read_only_open_writes_nothing_and_refuses_what_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    match Database::open_read_only(&missing) {
        Err(e @ StorageError::NotADatabase { .. }) => {
            assert!(e.to_string().contains("holds no infera database"), "{e}");
        }
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert!(!missing.exists(), "a read-only open must create nothing");

    {
        let db = Database::open(dir.path()).unwrap();
        build_chain(&db);
    }
    let ro = Database::open_read_only(dir.path()).unwrap();
    assert!(ro.writer().is_err(), "a read-only handle must not write");
    assert_eq!(
        ro.reader().unwrap().head_number().unwrap(),
        Some(BLOCKS - 1)
    );
}

#[test]
fn another_layout_version_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let mut w = db.writer().unwrap();
        w.set_meta(meta_keys::SCHEMA_VERSION, &999u64.to_be_bytes())
            .unwrap();
        w.commit().unwrap();
    }
    let read_write = Database::open(dir.path()).unwrap_err();
    let read_only = Database::open_read_only(dir.path()).unwrap_err();
    for err in [read_write, read_only] {
        assert!(
            matches!(err, StorageError::SchemaMismatch { found: 999, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        for needle in [
            "written with table layout version 999",
            &format!(
                "reads only layout version {}",
                infera_storage::SCHEMA_VERSION
            ),
            "re-sync into a fresh --datadir",
            "release that writes layout version 999",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
        }
    }
}
