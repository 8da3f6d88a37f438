//! Integration tests of infera-storage.

mod blocks;
mod crash;
mod fixtures;
mod history;
mod map_mode;
mod proof;
mod state_root;
mod tools;
mod trie_property;

use alloy_primitives::{Address, B256, U256};
use infera_primitives::{Account, KECCAK256_EMPTY};
use infera_storage::Database;

/// A fresh database in a temporary directory (kept alive by the returned guard).
pub fn temp_db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path()).expect("open database");
    (dir, db)
}

/// Small deterministic PRNG (xorshift64*), so tests need no `rand`.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn b256(&mut self) -> B256 {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_be_bytes());
        }
        B256::from(b)
    }

    pub fn address(&mut self) -> Address {
        Address::from_slice(&self.b256()[..20])
    }
}

/// An account without code.
pub fn eoa(nonce: u64, balance: u64) -> Account {
    Account {
        nonce,
        balance: U256::from(balance),
        code_hash: KECCAK256_EMPTY,
    }
}
