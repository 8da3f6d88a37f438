//! Historical state reads across blocks, reopen, uncommitted writers.

use crate::{eoa, temp_db};
use alloy_primitives::{Address, U256};
use infera_primitives::{AccountChange, StateChanges, StateReader};
use infera_storage::Database;
use std::collections::BTreeMap;

fn change(
    info: Option<infera_primitives::Account>,
    wiped: bool,
    slots: &[(u64, u64)],
) -> AccountChange {
    AccountChange {
        info,
        storage_wiped: wiped,
        storage: slots
            .iter()
            .map(|&(s, v)| (U256::from(s), U256::from(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn commit(db: &Database, block: u64, accounts: Vec<(Address, AccountChange)>) {
    let changes = StateChanges {
        accounts: accounts.into_iter().collect(),
        ..Default::default()
    };
    let mut w = db.writer().unwrap();
    w.apply_state(block, &changes).unwrap();
    w.set_head_number(block).unwrap();
    w.commit().unwrap();
}

#[test]
fn balances_and_slots_at_old_blocks() {
    let (_dir, db) = temp_db();
    let a = Address::repeat_byte(0xaa);
    let k = Address::repeat_byte(0xcc);
    let u = U256::from;

    // block 0: a = 100; k slots 1=1, 2=2, 3=3
    commit(
        &db,
        0,
        vec![
            (a, change(Some(eoa(0, 100)), false, &[])),
            (k, change(Some(eoa(1, 0)), false, &[(1, 1), (2, 2), (3, 3)])),
        ],
    );
    // block 1: a = 200; k slot 1 overwritten, slot 2 deleted
    commit(
        &db,
        1,
        vec![
            (a, change(Some(eoa(1, 200)), false, &[])),
            (k, change(Some(eoa(1, 0)), false, &[(1, 10), (2, 0)])),
        ],
    );
    // block 2: nothing for a; k wiped, then slot 4 written
    commit(&db, 2, vec![(k, change(Some(eoa(1, 0)), true, &[(4, 4)]))]);
    // block 3: a destroyed
    commit(&db, 3, vec![(a, change(None, true, &[]))]);
    // block 4: a re-created
    commit(&db, 4, vec![(a, change(Some(eoa(0, 5)), false, &[]))]);

    let r = db.reader().unwrap();
    let bal = |b: u64| r.state_at(b).account(a).unwrap().map(|x| x.balance);
    assert_eq!(bal(0), Some(u(100)));
    assert_eq!(bal(1), Some(u(200)));
    assert_eq!(bal(2), Some(u(200)));
    assert_eq!(bal(3), None);
    assert_eq!(bal(4), Some(u(5)));
    assert_eq!(bal(99), Some(u(5)));
    assert_eq!(
        r.latest_state().account(a).unwrap().map(|x| x.balance),
        Some(u(5))
    );

    let slot = |b: u64, s: u64| r.state_at(b).storage(k, u(s)).unwrap();
    let expected: [[u64; 4]; 5] = [
        // slots 1..=4 after each block
        [1, 2, 3, 0],
        [10, 0, 3, 0],
        [0, 0, 0, 4],
        [0, 0, 0, 4],
        [0, 0, 0, 4],
    ];
    for (b, row) in expected.iter().enumerate() {
        for (i, want) in row.iter().enumerate() {
            assert_eq!(
                slot(b as u64, i as u64 + 1),
                u(*want),
                "block {b} slot {}",
                i + 1
            );
        }
    }
    let latest = r.latest_state();
    assert_eq!(latest.storage(k, u(1)).unwrap(), U256::ZERO);
    assert_eq!(latest.storage(k, u(4)).unwrap(), u(4));
    // An address never seen.
    assert_eq!(r.state_at(0).account(Address::ZERO).unwrap(), None);
}

#[test]
fn reopen_sees_committed_not_uncommitted() {
    let dir = tempfile::tempdir().unwrap();
    let a = Address::repeat_byte(1);
    {
        let db = Database::open(dir.path()).unwrap();
        commit(&db, 0, vec![(a, change(Some(eoa(0, 7)), false, &[(1, 1)]))]);
        // A writer dropped without commit.
        let mut w = db.writer().unwrap();
        let changes = StateChanges {
            accounts: [(a, change(Some(eoa(0, 8)), false, &[(1, 2)]))]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        w.apply_state(1, &changes).unwrap();
        w.set_head_number(1).unwrap();
        drop(w);
        // Still visible only as committed in the same process.
        assert_eq!(db.reader().unwrap().head_number().unwrap(), Some(0));
    }
    let db = Database::open(dir.path()).unwrap();
    let r = db.reader().unwrap();
    assert_eq!(r.head_number().unwrap(), Some(0));
    let state = r.latest_state();
    assert_eq!(state.account(a).unwrap(), Some(eoa(0, 7)));
    assert_eq!(state.storage(a, U256::from(1)).unwrap(), U256::from(1));
}

#[test]
fn reader_is_a_snapshot() {
    let (_dir, db) = temp_db();
    let a = Address::repeat_byte(2);
    commit(&db, 0, vec![(a, change(Some(eoa(0, 1)), false, &[]))]);
    let old = db.reader().unwrap();
    let old_state = old.latest_state();
    commit(&db, 1, vec![(a, change(Some(eoa(0, 2)), false, &[]))]);
    assert_eq!(old_state.account(a).unwrap(), Some(eoa(0, 1)));
    assert_eq!(
        db.reader().unwrap().latest_state().account(a).unwrap(),
        Some(eoa(0, 2))
    );
    // Readers and state views move across threads.
    let handle = std::thread::spawn(move || old_state.account(a).unwrap());
    assert_eq!(handle.join().unwrap(), Some(eoa(0, 1)));
}

#[test]
fn meta_values_and_schema_check() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let mut w = db.writer().unwrap();
        w.set_chain_id(1337).unwrap();
        w.set_genesis_hash(alloy_primitives::B256::repeat_byte(9))
            .unwrap();
        assert!(w.set_meta(&[], b"x").is_err());
        assert!(w.set_meta(&[b'k'; 65], b"x").is_err());
        w.commit().unwrap();
        let r = db.reader().unwrap();
        assert_eq!(r.chain_id().unwrap(), Some(1337));
        assert_eq!(
            r.genesis_hash().unwrap(),
            Some(alloy_primitives::B256::repeat_byte(9))
        );
        assert_eq!(r.head_number().unwrap(), None);
        // Pretend a future version wrote this database.
        let mut w = db.writer().unwrap();
        w.set_meta(
            infera_storage::meta_keys::SCHEMA_VERSION,
            &999u64.to_be_bytes(),
        )
        .unwrap();
        w.commit().unwrap();
    }
    match Database::open(dir.path()) {
        Err(infera_storage::StorageError::SchemaMismatch {
            found: 999,
            expected,
        }) => {
            assert_eq!(expected, infera_storage::SCHEMA_VERSION)
        }
        other => panic!("expected schema mismatch, got {other:?}"),
    }
}

#[test]
fn corrupt_value_is_an_error_naming_table_and_key() {
    let (_dir, db) = temp_db();
    let mut w = db.writer().unwrap();
    w.set_meta(infera_storage::meta_keys::HEAD_NUMBER, b"abc")
        .unwrap();
    w.commit().unwrap();
    let err = db.reader().unwrap().head_number().unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            infera_storage::StorageError::Corrupt { table: "Meta", .. }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("Meta") && msg.contains(&hex_of(b"head_number")),
        "{msg}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn blocks_must_extend_the_head() {
    use crate::blocks::sample_block;
    let (_dir, db) = temp_db();
    let g = sample_block(
        0,
        alloy_primitives::B256::ZERO,
        alloy_primitives::B256::ZERO,
        vec![],
    );
    let mut w = db.writer().unwrap();
    w.insert_block(&g, &[]).unwrap();
    let b2 = sample_block(2, g.hash, alloy_primitives::B256::ZERO, vec![]);
    assert!(w.insert_block(&b2, &[]).is_err());
    assert!(w.insert_block(&g, &[]).is_err());
    w.set_head_number(5).unwrap();
    assert!(w.apply_state(4, &StateChanges::default()).is_err());
    w.apply_state(6, &StateChanges::default()).unwrap();
}
