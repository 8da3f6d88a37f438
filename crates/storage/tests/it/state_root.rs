//! State roots: empty, single account, and a random multi-block cross-check
//! against alloy-trie's in-memory roots (with history reads and unwind).

use crate::{Rng, eoa, temp_db};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::{
    TrieAccount,
    root::{state_root_unhashed, storage_root_unhashed},
};
use infera_primitives::{Account, AccountChange, EMPTY_ROOT_HASH, StateChanges, StateReader};
use std::collections::BTreeMap;

type Model = BTreeMap<Address, (Account, BTreeMap<U256, U256>)>;

fn model_root(model: &Model) -> B256 {
    state_root_unhashed(model.iter().map(|(address, (acc, storage))| {
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

#[test]
fn empty_state_has_empty_root() {
    let (_dir, db) = temp_db();
    let mut w = db.writer().unwrap();
    assert_eq!(w.state_root().unwrap(), EMPTY_ROOT_HASH);
}

#[test]
fn single_account_root() {
    let (_dir, db) = temp_db();
    let address = Address::repeat_byte(0x11);
    let account = eoa(1, 1_000_000_000);
    let mut changes = StateChanges::default();
    changes.accounts.insert(
        address,
        AccountChange {
            info: Some(account),
            ..Default::default()
        },
    );
    let mut w = db.writer().unwrap();
    w.apply_state(0, &changes).unwrap();
    let root = w.state_root().unwrap();

    // The account trie of one leaf: root = keccak(rlp([hex_prefix(path), rlp(account)])).
    let trie_account = TrieAccount::new(
        account.nonce,
        account.balance,
        EMPTY_ROOT_HASH,
        account.code_hash,
    );
    let expected = alloy_trie::root::state_root([(keccak256(address), trie_account)]);
    assert_eq!(root, expected);
    assert_ne!(root, EMPTY_ROOT_HASH);
    w.commit().unwrap();
}

/// Random blocks over a small address/slot space (so that updates, deletes,
/// wipes, destructions and re-creations all happen), compared with an
/// in-memory model after every block, then historical reads at every block
/// and an unwind.
#[test]
fn random_state_matches_in_memory_trie() {
    const BLOCKS: u64 = 24;
    const ADDRESSES: usize = 24;
    const SLOTS: u64 = 12;

    let (_dir, db) = temp_db();
    let mut rng = Rng::new(0x5eed);
    let addresses: Vec<Address> = (0..ADDRESSES).map(|_| rng.address()).collect();
    let mut model = Model::new();
    let mut snapshots = Vec::new();
    let mut roots = Vec::new();

    for block in 0..BLOCKS {
        let mut changes = StateChanges::default();
        let touched = 1 + rng.below(8);
        for _ in 0..touched {
            let address = addresses[rng.below(ADDRESSES as u64) as usize];
            if changes.accounts.contains_key(&address) {
                continue;
            }
            let roll = rng.below(10);
            let mut change = AccountChange::default();
            let entry = model.get(&address).cloned();
            if roll == 0 && entry.is_some() {
                // destroy
                change.info = None;
                change.storage_wiped = true;
                model.remove(&address);
            } else {
                let (mut acc, mut storage) = entry.unwrap_or_else(|| (eoa(0, 0), BTreeMap::new()));
                acc.balance = U256::from(rng.below(1 << 40));
                acc.nonce += rng.below(2);
                if rng.below(6) == 0 {
                    let code = Bytes::from(rng.b256().to_vec());
                    acc.code_hash = keccak256(&code);
                    changes.contracts.insert(acc.code_hash, code);
                }
                if roll == 1 {
                    change.storage_wiped = true;
                    storage.clear();
                }
                for _ in 0..rng.below(5) {
                    let slot = U256::from(rng.below(SLOTS));
                    let value = if rng.below(3) == 0 {
                        U256::ZERO
                    } else {
                        U256::from(rng.below(1000))
                    };
                    change.storage.insert(slot, value);
                    if value.is_zero() {
                        storage.remove(&slot);
                    } else {
                        storage.insert(slot, value);
                    }
                }
                change.info = Some(acc);
                model.insert(address, (acc, storage));
            }
            changes.accounts.insert(address, change);
        }
        let mut w = db.writer().unwrap();
        w.apply_state(block, &changes).unwrap();
        let root = w.state_root().unwrap();
        w.set_head_number(block).unwrap();
        w.commit().unwrap();

        let r = db.reader().unwrap();
        let latest = r.latest_state();
        for address in &addresses {
            let got = latest.account(*address).unwrap();
            let want = model.get(address).map(|(a, _)| *a);
            assert_eq!(got, want, "block {block} account {address}");
            for slot in 0..SLOTS {
                let slot = U256::from(slot);
                let want = model
                    .get(address)
                    .and_then(|(_, s)| s.get(&slot).copied())
                    .unwrap_or(U256::ZERO);
                assert_eq!(latest.storage(*address, slot).unwrap(), want);
            }
        }
        assert_eq!(root, model_root(&model), "state root after block {block}");
        snapshots.push(model.clone());
        roots.push(root);
    }

    // Historical reads at every block.
    let r = db.reader().unwrap();
    for (block, snapshot) in snapshots.iter().enumerate() {
        let state = r.state_at(block as u64);
        for address in &addresses {
            let want = snapshot.get(address);
            assert_eq!(state.account(*address).unwrap(), want.map(|(a, _)| *a));
            for slot in 0..SLOTS {
                let slot = U256::from(slot);
                let want = want
                    .and_then(|(_, s)| s.get(&slot).copied())
                    .unwrap_or(U256::ZERO);
                assert_eq!(
                    state.storage(*address, slot).unwrap(),
                    want,
                    "block {block}"
                );
            }
        }
    }
    drop(r);

    // Unwind to the middle: state and root equal the snapshot there.
    let target = BLOCKS / 2;
    let mut w = db.writer().unwrap();
    w.unwind_to(target).unwrap();
    assert_eq!(w.state_root().unwrap(), roots[target as usize]);
    w.commit().unwrap();
    let r = db.reader().unwrap();
    assert_eq!(r.head_number().unwrap(), Some(target));
    let latest = r.latest_state();
    let snapshot = &snapshots[target as usize];
    for address in &addresses {
        assert_eq!(
            latest.account(*address).unwrap(),
            snapshot.get(address).map(|(a, _)| *a)
        );
    }
    // History below the target still answers.
    let state = r.state_at(target / 2);
    for address in &addresses {
        assert_eq!(
            state.account(*address).unwrap(),
            snapshots[(target / 2) as usize]
                .get(address)
                .map(|(a, _)| *a)
        );
    }
}
