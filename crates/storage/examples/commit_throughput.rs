//! Block commit throughput: commits synthetic blocks and reports blocks per
//! second, split into apply / state root / insert+commit.
//!
//! `cargo run -p infera-storage --release --example commit_throughput -- [blocks] [accounts_per_block] [slots_per_block] [dir]`

use alloy_primitives::{Address, B256, U256};
use infera_primitives::{
    Account, AccountChange, Header, KECCAK256_EMPTY, SealedBlock, StateChanges,
};
use infera_storage::Database;
use std::time::{Duration, Instant};

/// Default number of blocks to commit.
const DEFAULT_BLOCKS: u64 = 200;
/// Default accounts changed per block.
const DEFAULT_ACCOUNTS_PER_BLOCK: u64 = 200;
/// Default storage slots written per block.
const DEFAULT_SLOTS_PER_BLOCK: u64 = 400;
/// Distinct addresses the synthetic blocks touch.
const ADDRESS_SPACE: u64 = 100_000;
/// Distinct contracts the storage writes go to.
const CONTRACT_SPACE: u64 = 100;

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn address(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&i.to_be_bytes());
    Address::from(b)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let blocks = arg(1, DEFAULT_BLOCKS);
    let accounts = arg(2, DEFAULT_ACCOUNTS_PER_BLOCK);
    let slots = arg(3, DEFAULT_SLOTS_PER_BLOCK);
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(4)
        .map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let db = Database::open(&dir)?;

    let (mut t_apply, mut t_root, mut t_commit) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = Instant::now();
    let mut parent = B256::ZERO;
    for n in 0..blocks {
        let mut changes = StateChanges::default();
        for _ in 0..accounts {
            let a = address(next() % ADDRESS_SPACE);
            let info = Account {
                nonce: n,
                balance: U256::from(next()),
                code_hash: KECCAK256_EMPTY,
            };
            changes.accounts.insert(
                a,
                AccountChange {
                    info: Some(info),
                    ..Default::default()
                },
            );
        }
        for _ in 0..slots {
            let c = address(ADDRESS_SPACE + next() % CONTRACT_SPACE);
            let change = changes.accounts.entry(c).or_insert_with(|| AccountChange {
                info: Some(Account {
                    nonce: 1,
                    balance: U256::ZERO,
                    code_hash: KECCAK256_EMPTY,
                }),
                ..Default::default()
            });
            change
                .storage
                .insert(U256::from(next() % 10_000), U256::from(next()));
        }

        let t = Instant::now();
        let mut w = db.writer()?;
        w.apply_state(n, &changes)?;
        t_apply += t.elapsed();
        let t = Instant::now();
        let state_root = w.state_root()?;
        t_root += t.elapsed();
        let t = Instant::now();
        let block = SealedBlock::new(
            Header {
                number: n,
                parent_hash: parent,
                state_root,
                ..Default::default()
            },
            vec![],
        );
        parent = block.hash;
        w.insert_block(&block, &[])?;
        w.commit()?;
        t_commit += t.elapsed();
    }
    let total = start.elapsed();
    println!(
        "{blocks} blocks ({accounts} accounts, {slots} slots each) in {total:?}: {:.1} blocks/s",
        blocks as f64 / total.as_secs_f64()
    );
    println!("apply {t_apply:?}, state root {t_root:?}, insert+commit {t_commit:?}");
    Ok(())
}
