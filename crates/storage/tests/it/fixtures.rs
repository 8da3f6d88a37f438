//! Known Ethereum state roots: every `BlockchainTests/ValidBlocks` fixture of
//! ethereum/tests (in `../shared/fixtures`). The `pre` state must give the
//! genesis header's state root; the `postState`, applied as one block of
//! changes, the last block's state root. Then the pre state must read back
//! from history, and unwinding must restore the genesis root.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use infera_primitives::{Account, AccountChange, KECCAK256_EMPTY, StateChanges, StateReader};
use serde_json::Value;
use std::{collections::BTreeMap, path::PathBuf, str::FromStr};

type State = BTreeMap<Address, (Account, Bytes, BTreeMap<U256, U256>)>;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/ethtests/BlockchainTests/ValidBlocks")
}

fn u256(v: &Value) -> U256 {
    U256::from_str(v.as_str().expect("hex string")).expect("U256")
}

fn parse_state(v: &Value) -> State {
    let mut out = State::new();
    for (addr, acc) in v.as_object().expect("state object") {
        let code = Bytes::from_str(acc["code"].as_str().unwrap()).unwrap();
        let code_hash = if code.is_empty() {
            KECCAK256_EMPTY
        } else {
            keccak256(&code)
        };
        let account = Account {
            nonce: u256(&acc["nonce"]).to::<u64>(),
            balance: u256(&acc["balance"]),
            code_hash,
        };
        let storage = acc["storage"]
            .as_object()
            .map(|s| {
                s.iter()
                    .map(|(k, v)| (U256::from_str(k).unwrap(), u256(v)))
                    .filter(|(_, v)| !v.is_zero())
                    .collect()
            })
            .unwrap_or_default();
        out.insert(Address::from_str(addr).unwrap(), (account, code, storage));
    }
    out
}

fn genesis_changes(pre: &State) -> StateChanges {
    let mut changes = StateChanges::default();
    for (address, (account, code, storage)) in pre {
        if !code.is_empty() {
            changes.contracts.insert(account.code_hash, code.clone());
        }
        changes.accounts.insert(
            *address,
            AccountChange {
                info: Some(*account),
                storage_wiped: false,
                storage: storage.clone(),
            },
        );
    }
    changes
}

fn diff_changes(pre: &State, post: &State) -> StateChanges {
    let mut changes = StateChanges::default();
    for address in pre.keys().chain(post.keys()) {
        let change = match post.get(address) {
            None => AccountChange {
                info: None,
                storage_wiped: true,
                storage: BTreeMap::new(),
            },
            Some((account, code, storage)) => {
                if !code.is_empty() {
                    changes.contracts.insert(account.code_hash, code.clone());
                }
                let mut slots = storage.clone();
                if let Some((_, _, old)) = pre.get(address) {
                    for slot in old.keys() {
                        slots.entry(*slot).or_insert(U256::ZERO);
                    }
                }
                AccountChange {
                    info: Some(*account),
                    storage_wiped: false,
                    storage: slots,
                }
            }
        };
        changes.accounts.insert(*address, change);
    }
    changes
}

fn b256(v: &Value) -> B256 {
    B256::from_str(v.as_str().unwrap()).unwrap()
}

fn collect_json(dir: &PathBuf, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn ethereum_blockchain_fixture_state_roots() {
    let dir = fixtures_dir();
    if !dir.exists() {
        eprintln!("skipping: fixtures not found at {}", dir.display());
        return;
    }
    let mut files = Vec::new();
    collect_json(&dir, &mut files);
    files.sort();
    let mut checked = 0;
    for file in files {
        let json: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        for (name, t) in json.as_object().unwrap() {
            let (Some(pre), Some(post)) = (t.get("pre"), t.get("postState")) else {
                continue;
            };
            let pre = parse_state(pre);
            let post = parse_state(post);
            let genesis_root = b256(&t["genesisBlockHeader"]["stateRoot"]);
            let last = b256(&t["lastblockhash"]);
            let post_root = t["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|b| b.get("blockHeader"))
                .find(|h| b256(&h["hash"]) == last)
                .map_or(genesis_root, |h| b256(&h["stateRoot"]));

            let (_tmp, db) = crate::temp_db();
            let mut w = db.writer().unwrap();
            w.apply_state(0, &genesis_changes(&pre)).unwrap();
            assert_eq!(
                w.state_root().unwrap(),
                genesis_root,
                "{name}: genesis root"
            );
            w.set_head_number(0).unwrap();
            w.commit().unwrap();

            let mut w = db.writer().unwrap();
            w.apply_state(1, &diff_changes(&pre, &post)).unwrap();
            assert_eq!(w.state_root().unwrap(), post_root, "{name}: post root");
            w.set_head_number(1).unwrap();
            w.commit().unwrap();

            let r = db.reader().unwrap();
            let old = r.state_at(0);
            let latest = r.latest_state();
            for (address, (account, code, storage)) in &pre {
                assert_eq!(old.account(*address).unwrap(), Some(*account), "{name}");
                for (slot, value) in storage {
                    assert_eq!(old.storage(*address, *slot).unwrap(), *value, "{name}");
                }
                if !code.is_empty() {
                    assert_eq!(
                        old.code_by_hash(account.code_hash).unwrap().as_ref(),
                        Some(code)
                    );
                }
            }
            for (address, (account, _, storage)) in &post {
                assert_eq!(latest.account(*address).unwrap(), Some(*account), "{name}");
                for (slot, value) in storage {
                    assert_eq!(latest.storage(*address, *slot).unwrap(), *value, "{name}");
                }
            }
            drop((old, latest, r));

            let mut w = db.writer().unwrap();
            w.unwind_to(0).unwrap();
            assert_eq!(
                w.state_root().unwrap(),
                genesis_root,
                "{name}: unwound root"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no fixtures checked");
    eprintln!("checked {checked} blockchain fixtures");
}
