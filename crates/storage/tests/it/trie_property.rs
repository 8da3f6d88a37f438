//! Property test of `BlockWriter::state_root` over random block sequences
//! shaped to exercise a deep trie: a few hundred accounts (stored branch
//! nodes two to three levels down), three contracts with hundreds to
//! thousands of slots, small accounts whose storage trie is one leaf or an
//! extension, and blocks that collapse whole subtrees. The root is checked
//! after every block and every unwind, in the writer that made the change and
//! again in a fresh writer after commit, against an in-memory model whose
//! root alloy-trie recomputes from scratch. `Reader::verify_state` adds a
//! second, independent recomputation from the plain tables against the
//! header each committed block carries (the model root).
//!
//! An incremental root keeps derived data (branch nodes) beside the leaves,
//! so the commit patterns matter as much as the state changes: several
//! blocks before one root, commits without any root call, writers dropped
//! half way (which must leave nothing behind), and unwinds followed by new
//! blocks on top.

use crate::{Rng, blocks::sample_block, eoa, temp_db};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_trie::{
    TrieAccount,
    root::{state_root_unhashed, storage_root_unhashed},
};
use infera_primitives::{Account, AccountChange, KECCAK256_EMPTY, StateChanges};
use infera_storage::{BlockWriter, Database};
use std::collections::BTreeMap;

type Storage = BTreeMap<U256, U256>;
/// Every account with its storage and that storage's root, which
/// [`apply_to_model`] recomputes from scratch whenever a change may touch
/// the storage: recomputing every storage root of every block would cost
/// more than the rest of the test.
type Model = BTreeMap<Address, (Account, Storage, B256)>;

const SEEDS: [u64; 4] = [0x7e1e_0001, 0xdead_beef, 0x5151_2024, 0x0bad_cafe];
/// Canonical blocks applied per seed (re-applied heights after an unwind
/// count again; blocks of dropped writers do not).
const BLOCKS: u64 = 50;
/// The first blocks only seed the state: accounts and one big contract each.
const SEED_BLOCKS: u64 = 3;
const SEED_ACCOUNTS: usize = 130;
const BIG_SLOTS: [u64; 3] = [2000, 800, 300];
const MAX_UNWIND: u64 = 6;

fn model_root(model: &Model) -> B256 {
    state_root_unhashed(model.iter().map(|(address, (acc, _, storage_root))| {
        (
            *address,
            TrieAccount::new(acc.nonce, acc.balance, *storage_root, acc.code_hash),
        )
    }))
}

fn storage_root(storage: &Storage) -> B256 {
    storage_root_unhashed(
        storage
            .iter()
            .map(|(slot, value)| (B256::from(slot.to_be_bytes::<32>()), *value)),
    )
}

/// `apply_state`'s documented semantics, kept apart from the generator so
/// the oracle does not share its assumptions: a destroyed account loses its
/// storage and ignores its writes; a wipe drops the storage before the
/// writes; a zero value deletes.
fn apply_to_model(model: &mut Model, changes: &StateChanges) {
    for (address, change) in &changes.accounts {
        match change.info {
            None => {
                model.remove(address);
            }
            Some(info) => {
                let entry = model
                    .entry(*address)
                    .or_insert_with(|| (info, Storage::new(), storage_root(&Storage::new())));
                entry.0 = info;
                if change.storage_wiped {
                    entry.1.clear();
                }
                for (slot, value) in &change.storage {
                    if value.is_zero() {
                        entry.1.remove(slot);
                    } else {
                        entry.1.insert(*slot, *value);
                    }
                }
                if change.storage_wiped || !change.storage.is_empty() {
                    entry.2 = storage_root(&entry.1);
                }
            }
        }
    }
}

fn hashed_slot(slot: &U256) -> B256 {
    keccak256(slot.to_be_bytes::<32>())
}

/// One block's changes under construction: every address at most once, and
/// a count per operation for the failure message.
struct Builder<'a> {
    model: &'a Model,
    changes: StateChanges,
    ops: BTreeMap<String, usize>,
}

impl<'a> Builder<'a> {
    fn new(model: &'a Model) -> Self {
        Self {
            model,
            changes: StateChanges::default(),
            ops: BTreeMap::new(),
        }
    }

    fn free(&self, address: &Address) -> bool {
        !self.changes.accounts.contains_key(address)
    }

    fn live(&self, address: &Address) -> bool {
        self.model.contains_key(address)
    }

    fn put(&mut self, op: &str, address: Address, change: AccountChange) {
        let previous = self.changes.accounts.insert(address, change);
        assert!(previous.is_none(), "generator touched {address} twice");
        *self.ops.entry(op.to_string()).or_default() += 1;
    }

    fn note(&mut self, op: String) {
        *self.ops.entry(op).or_default() += 1;
    }

    fn finish(self) -> (StateChanges, String) {
        let mix = self
            .ops
            .iter()
            .map(|(op, n)| format!("{op}*{n}"))
            .collect::<Vec<_>>()
            .join(" ");
        (self.changes, mix)
    }
}

/// Random block contents over the current model.
struct Gen {
    rng: Rng,
    big: Vec<Address>,
    big_code: (B256, Bytes),
    /// Every address that ever held (or was generated to hold) an account.
    pool: Vec<Address>,
    /// Operations generated so far, by kind.
    seen: BTreeMap<String, u64>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let big = (0..BIG_SLOTS.len()).map(|_| rng.address()).collect();
        let code = Bytes::from([rng.b256().to_vec(), rng.b256().to_vec()].concat());
        Self {
            rng,
            big,
            big_code: (keccak256(&code), code),
            pool: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.rng.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.rng.below(items.len() as u64) as usize])
    }

    /// Nonzero; a quarter are full 32-byte words so leaf sizes vary.
    fn value(&mut self) -> U256 {
        let v = if self.chance(4) {
            U256::from_be_bytes(self.rng.b256().0)
        } else {
            U256::from(self.rng.below(1 << 32))
        };
        v.max(U256::from(1))
    }

    fn slot(&mut self) -> U256 {
        if self.chance(2) {
            U256::from(self.rng.below(5000))
        } else {
            U256::from_be_bytes(self.rng.b256().0)
        }
    }

    fn is_big(&self, address: &Address) -> bool {
        self.big.contains(address)
    }

    /// Live accounts this block has not touched yet.
    fn live(&self, b: &Builder<'_>, with_big: bool) -> Vec<Address> {
        b.model
            .keys()
            .filter(|a| b.free(a) && (with_big || !self.is_big(a)))
            .copied()
            .collect()
    }

    fn dead(&self, b: &Builder<'_>) -> Vec<Address> {
        self.pool
            .iter()
            .filter(|a| b.free(a) && !b.live(a) && !self.is_big(a))
            .copied()
            .collect()
    }

    fn small_storage(&mut self, max_slots: u64) -> Storage {
        (0..self.rng.below(max_slots + 1))
            .map(|_| (U256::from(self.rng.below(5)), self.value()))
            .collect()
    }

    fn block(&mut self, model: &Model, number: u64) -> (StateChanges, String) {
        let mut b = Builder::new(model);
        self.fill(&mut b, number);
        for (op, n) in &b.ops {
            let kind = op.split('(').next().unwrap_or(op);
            *self.seen.entry(kind.to_string()).or_default() += *n as u64;
        }
        b.finish()
    }

    fn fill(&mut self, b: &mut Builder<'_>, number: u64) {
        if number < SEED_BLOCKS {
            return self.seed_block(b, number as usize);
        }
        match self.rng.below(100) {
            0..8 => self.collapse_storage(b),
            8..18 => self.collapse_accounts(b),
            18..24 => {
                let live: Vec<_> = self.big.clone().into_iter().filter(|a| b.live(a)).collect();
                if let Some(address) = self.pick(&live) {
                    let change = AccountChange {
                        info: None,
                        storage_wiped: self.chance(2),
                        storage: Storage::new(),
                    };
                    b.put("destroy-big", address, change);
                }
            }
            24..32 => self.bulk(b),
            _ => {}
        }
        for address in self.big.clone() {
            if !b.live(&address) && b.free(&address) && self.chance(3) {
                self.recreate_big(b, address);
            }
        }
        for _ in 0..2 + self.rng.below(11) {
            self.random_op(b);
        }
    }

    fn seed_block(&mut self, b: &mut Builder<'_>, index: usize) {
        for _ in 0..SEED_ACCOUNTS {
            self.new_account(b);
        }
        let address = self.big[index];
        let count = BIG_SLOTS[index];
        // Half dense small slots (as Solidity lays out), half random keys.
        let mut storage: Storage = (0..count / 2)
            .map(|i| (U256::from(i), U256::from(i + 1)))
            .collect();
        while (storage.len() as u64) < count {
            let slot = U256::from_be_bytes(self.rng.b256().0);
            let value = self.value();
            storage.insert(slot, value);
        }
        self.put_big(b, "seed-big", address, false, storage);
    }

    fn put_big(
        &mut self,
        b: &mut Builder<'_>,
        op: &str,
        address: Address,
        storage_wiped: bool,
        storage: Storage,
    ) {
        let (hash, code) = self.big_code.clone();
        b.changes.contracts.insert(hash, code);
        let nonce = b.model.get(&address).map_or(1, |(a, _, _)| a.nonce + 1);
        let info = Account {
            nonce,
            balance: U256::from(self.rng.below(1 << 50)),
            code_hash: hash,
        };
        b.put(
            op,
            address,
            AccountChange {
                info: Some(info),
                storage_wiped,
                storage,
            },
        );
    }

    fn recreate_big(&mut self, b: &mut Builder<'_>, address: Address) {
        let count = 300 + self.rng.below(1200);
        // Partly the same keys as before the destruction.
        let storage = (0..count)
            .map(|i| {
                let slot = if i % 2 == 0 {
                    U256::from(i)
                } else {
                    self.slot()
                };
                (slot, self.value())
            })
            .collect();
        let wiped = self.chance(2);
        self.put_big(b, "recreate-big", address, wiped, storage);
    }

    fn new_account(&mut self, b: &mut Builder<'_>) {
        let address = self.rng.address();
        self.pool.push(address);
        let (op, info, storage) = match self.rng.below(10) {
            0 => ("new-empty", eoa(0, 0), Storage::new()),
            1..3 => {
                let code = Bytes::from(self.rng.b256().to_vec());
                let hash = keccak256(&code);
                b.changes.contracts.insert(hash, code);
                let info = Account {
                    nonce: 1,
                    balance: U256::from(self.rng.below(1 << 40)),
                    code_hash: hash,
                };
                ("new-contract", info, self.small_storage(3))
            }
            _ => (
                "new",
                eoa(self.rng.below(100), 1 + self.rng.below(1 << 40)),
                Storage::new(),
            ),
        };
        b.put(
            op,
            address,
            AccountChange {
                info: Some(info),
                storage_wiped: false,
                storage,
            },
        );
    }

    fn random_op(&mut self, b: &mut Builder<'_>) {
        let roll = self.rng.below(100);
        if roll < 20 {
            return self.new_account(b);
        }
        if roll < 45 {
            return self.update(b);
        }
        if roll < 70 {
            // Kinds that need a live, untouched non-big account.
            let live = self.live(b, false);
            let Some(address) = self.pick(&live) else {
                return self.new_account(b);
            };
            let info = b.model[&address].0;
            match roll {
                45..55 => {
                    // Writes of a destroyed account are ignored.
                    let garbage = if self.chance(4) {
                        self.small_storage(3)
                    } else {
                        Storage::new()
                    };
                    let change = AccountChange {
                        info: None,
                        storage_wiped: self.chance(2),
                        storage: garbage,
                    };
                    b.put("destroy", address, change);
                }
                55..60 => self.eip161(b),
                _ => {
                    // 0..3 leaves: empty, single leaf, branch or extension.
                    let mut writes = Storage::new();
                    for _ in 0..1 + self.rng.below(3) {
                        let slot = U256::from(self.rng.below(5));
                        let value = if self.chance(3) {
                            U256::ZERO
                        } else {
                            self.value()
                        };
                        writes.insert(slot, value);
                    }
                    let change = AccountChange {
                        info: Some(info),
                        storage_wiped: false,
                        storage: writes,
                    };
                    b.put("small-storage", address, change);
                }
            }
            return;
        }
        match roll {
            70..85 => {
                let count = 1 + self.rng.below(40);
                self.big_writes(b, count, "big-writes");
            }
            85..90 => self.wipe_rewrite(b),
            90..93 => {
                let dead = self.dead(b);
                let Some(address) = self.pick(&dead) else {
                    return self.new_account(b);
                };
                let change = AccountChange {
                    info: Some(eoa(self.rng.below(5), self.rng.below(1 << 30))),
                    storage_wiped: self.chance(2),
                    storage: self.small_storage(3),
                };
                b.put("resurrect", address, change);
            }
            93..95 => {
                let dead = self.dead(b);
                if let Some(address) = self.pick(&dead) {
                    let change = AccountChange {
                        info: None,
                        storage_wiped: self.chance(2),
                        storage: Storage::new(),
                    };
                    b.put("destroy-absent", address, change);
                }
            }
            _ => {
                // Writes that change nothing: the same info, a slot set to
                // its current value, a zero to an absent slot.
                let live = self.live(b, true);
                let Some(address) = self.pick(&live) else {
                    return;
                };
                let (info, storage, _) = b.model[&address].clone();
                let mut writes = Storage::new();
                if let Some((slot, value)) = storage.iter().next() {
                    writes.insert(*slot, *value);
                }
                let absent = U256::from_be_bytes(self.rng.b256().0);
                writes.insert(absent, U256::ZERO);
                let change = AccountChange {
                    info: Some(info),
                    storage_wiped: false,
                    storage: writes,
                };
                b.put("noop-touch", address, change);
            }
        }
    }

    /// Balance or nonce of a live account (big contracts too: an account
    /// leaf changes while its storage root does not).
    fn update(&mut self, b: &mut Builder<'_>) {
        let live = self.live(b, true);
        match self.pick(&live) {
            Some(address) => self.update_at(b, address),
            None => self.new_account(b),
        }
    }

    fn update_at(&mut self, b: &mut Builder<'_>, address: Address) {
        let mut info = b.model[&address].0;
        let op = if self.chance(8) {
            "update-same"
        } else {
            info.balance = U256::from(self.rng.below(1 << 40));
            info.nonce += self.rng.below(3);
            "update"
        };
        let storage = if !self.is_big(&address) && self.chance(5) {
            self.small_storage(2)
        } else {
            Storage::new()
        };
        b.put(
            op,
            address,
            AccountChange {
                info: Some(info),
                storage_wiped: false,
                storage,
            },
        );
    }

    /// EIP-161: an empty account removed without storage to wipe.
    fn eip161(&mut self, b: &mut Builder<'_>) {
        let empty: Vec<_> = self
            .live(b, false)
            .into_iter()
            .filter(|a| {
                let (info, storage, _) = &b.model[a];
                info.nonce == 0
                    && info.balance.is_zero()
                    && info.code_hash == KECCAK256_EMPTY
                    && storage.is_empty()
            })
            .collect();
        let Some(address) = self.pick(&empty) else {
            return self.new_account(b);
        };
        b.put("eip161-delete", address, AccountChange::default());
    }

    /// Updates, deletes and inserts in one live big contract.
    fn big_writes(&mut self, b: &mut Builder<'_>, count: u64, op: &str) {
        let live: Vec<_> = self
            .big
            .clone()
            .into_iter()
            .filter(|a| b.live(a) && b.free(a))
            .collect();
        let Some(address) = self.pick(&live) else {
            return;
        };
        let (mut info, storage, _) = b.model[&address].clone();
        let keys: Vec<U256> = storage.keys().copied().collect();
        let mut writes = Storage::new();
        for _ in 0..count {
            match (self.rng.below(3), self.pick(&keys)) {
                (0, Some(slot)) => writes.insert(slot, self.value()),
                (1, Some(slot)) => writes.insert(slot, U256::ZERO),
                _ => {
                    let slot = self.slot();
                    writes.insert(slot, self.value())
                }
            };
        }
        if self.chance(2) {
            info.nonce += 1;
        }
        b.put(
            op,
            address,
            AccountChange {
                info: Some(info),
                storage_wiped: false,
                storage: writes,
            },
        );
    }

    /// A live account re-created at its address: storage wiped and new
    /// writes in the same block.
    fn wipe_rewrite(&mut self, b: &mut Builder<'_>) {
        // A big contract a third of the time: picked uniformly it would
        // almost never be.
        let big = self.chance(3);
        let live: Vec<_> = self
            .live(b, true)
            .into_iter()
            .filter(|a| self.is_big(a) == big)
            .collect();
        let Some(address) = self.pick(&live) else {
            return;
        };
        let mut info = b.model[&address].0;
        info.nonce += 1;
        let (op, count) = if self.is_big(&address) {
            ("wipe-rewrite-big", 50 + self.rng.below(250))
        } else {
            ("wipe-rewrite", self.rng.below(4))
        };
        let storage = (0..count).map(|_| (self.slot(), self.value())).collect();
        b.put(
            op,
            address,
            AccountChange {
                info: Some(info),
                storage_wiped: true,
                storage,
            },
        );
    }

    /// Deletes most slots of one big contract so storage branch nodes
    /// collapse: all but one, or all but one under a nibble or byte prefix
    /// of the hashed slot (sometimes that last one too).
    fn collapse_storage(&mut self, b: &mut Builder<'_>) {
        let live: Vec<_> = self
            .big
            .clone()
            .into_iter()
            .filter(|a| b.model.get(a).is_some_and(|(_, s, _)| s.len() >= 2))
            .collect();
        let Some(address) = self.pick(&live) else {
            return;
        };
        let (info, storage, _) = b.model[&address].clone();
        let keys: Vec<U256> = storage.keys().copied().collect();
        let anchor = hashed_slot(&self.pick(&keys).expect("two slots or more"));
        let (what, nibbles) = match self.rng.below(3) {
            0 => ("all", 0),
            1 => ("nibble", 1),
            _ => ("byte", 2),
        };
        let under: Vec<U256> = keys
            .iter()
            .copied()
            .filter(|k| {
                let h = hashed_slot(k);
                match nibbles {
                    0 => true,
                    1 => h[0] >> 4 == anchor[0] >> 4,
                    _ => h[0] == anchor[0],
                }
            })
            .collect();
        let keep = if nibbles > 0 && self.chance(4) {
            None
        } else {
            self.pick(&under)
        };
        let writes: Storage = under
            .iter()
            .filter(|k| Some(**k) != keep)
            .map(|k| (*k, U256::ZERO))
            .collect();
        let op = format!(
            "collapse-storage-{what}(deleted {} of {}, kept {})",
            writes.len(),
            keys.len(),
            usize::from(keep.is_some())
        );
        b.put(
            &op,
            address,
            AccountChange {
                info: Some(info),
                storage_wiped: false,
                storage: writes,
            },
        );
    }

    /// Deletes all accounts under a nibble or byte prefix of keccak(address)
    /// but one (for a byte, sometimes that one too), so account branch
    /// nodes collapse or vanish.
    fn collapse_accounts(&mut self, b: &mut Builder<'_>) {
        let live = self.live(b, false);
        let Some(anchor) = self.pick(&live) else {
            return;
        };
        let anchor = keccak256(anchor);
        let by_byte = self.chance(2);
        let under: Vec<Address> = live
            .into_iter()
            .filter(|a| {
                let h = keccak256(a);
                if by_byte {
                    h[0] == anchor[0]
                } else {
                    h[0] >> 4 == anchor[0] >> 4
                }
            })
            .collect();
        let keep = if by_byte && self.chance(4) {
            None
        } else {
            self.pick(&under)
        };
        let mut deleted = 0;
        for address in under {
            if Some(address) == keep {
                continue;
            }
            let change = AccountChange {
                info: None,
                storage_wiped: self.chance(2),
                storage: Storage::new(),
            };
            b.put("collapse-accounts-delete", address, change);
            deleted += 1;
        }
        b.note(format!(
            "collapse-accounts-{}(deleted {deleted}, kept {})",
            if by_byte { "byte" } else { "nibble" },
            usize::from(keep.is_some())
        ));
    }

    /// Touches many keys at once: a hundred or more accounts and a few
    /// hundred slots of every live big contract.
    fn bulk(&mut self, b: &mut Builder<'_>) {
        b.note("bulk".to_string());
        let live = self.live(b, true);
        for _ in 0..100 + self.rng.below(150) {
            match self.pick(&live) {
                Some(address) if b.free(&address) && !self.chance(3) => {
                    self.update_at(b, address);
                }
                _ => self.new_account(b),
            }
        }
        for _ in 0..self.big.len() {
            let count = 100 + self.rng.below(300);
            self.big_writes(b, count, "bulk-big-writes");
        }
    }
}

/// One seed's database, model and canonical chain.
struct Run {
    seed: u64,
    _dir: tempfile::TempDir,
    db: Database,
    g: Gen,
    /// The state after the head block.
    model: Model,
    /// Per canonical block: the state after it, its root, its hash.
    chain: Vec<(Model, B256, B256)>,
    /// Canonical blocks applied so far (see [`BLOCKS`]).
    applied: u64,
    step: u64,
    /// What the previous step did, for failure messages.
    last: String,
    patterns: BTreeMap<&'static str, u64>,
}

impl Run {
    fn new(seed: u64) -> Self {
        let (dir, db) = temp_db();
        Self {
            seed,
            _dir: dir,
            db,
            g: Gen::new(seed),
            model: Model::new(),
            chain: Vec::new(),
            applied: 0,
            step: 0,
            last: "nothing".to_string(),
            patterns: BTreeMap::new(),
        }
    }

    fn ctx(&self, pattern: &str, detail: &str) -> String {
        format!(
            "seed {:#x} step {} [{pattern}] {detail} (previous step: {})",
            self.seed, self.step, self.last
        )
    }

    fn next_number(&self) -> u64 {
        self.chain.len() as u64
    }

    /// Generates the next block over `model`, applies it in `w` and to
    /// `model`; returns the model root and the description.
    fn apply_block(&mut self, w: &mut BlockWriter, number: u64) -> (B256, String) {
        let (changes, mix) = self.g.block(&self.model, number);
        let detail = format!("block {number} ops: {mix}");
        w.apply_state(number, &changes)
            .unwrap_or_else(|e| panic!("seed {:#x} {detail}: apply_state: {e}", self.seed));
        apply_to_model(&mut self.model, &changes);
        (model_root(&self.model), detail)
    }

    /// Stores block `number` with the model root in its header (so that
    /// `verify_state` has a root to check) and records it as canonical.
    fn insert_block(&mut self, w: &mut BlockWriter, number: u64, root: B256, ctx: &str) {
        let parent = self.chain.last().map_or(B256::ZERO, |c| c.2);
        let block = sample_block(number, parent, root, vec![]);
        w.insert_block(&block, &[])
            .unwrap_or_else(|e| panic!("{ctx}: insert_block: {e}"));
        self.chain.push((self.model.clone(), root, block.hash));
        self.applied += 1;
    }

    fn root_in(&self, w: &mut BlockWriter, want: B256, ctx: &str, when: &str) {
        let got = w
            .state_root()
            .unwrap_or_else(|e| panic!("{ctx}: state_root {when}: {e}"));
        assert_eq!(got, want, "{ctx}: state root {when}");
    }

    /// After a commit (or a dropped writer): a fresh writer with no change
    /// gives the head's root twice; with `verify`, the plain tables give it
    /// too (a full recomputation from scratch, so not after every block).
    fn check_committed(&self, ctx: &str, verify: bool) {
        let (_, want, _) = self.chain.last().expect("a head block");
        let head = self.chain.len() as u64 - 1;
        let mut w = self.db.writer().unwrap();
        assert_eq!(w.head_number().unwrap(), Some(head), "{ctx}: head number");
        self.root_in(&mut w, *want, ctx, "in a fresh writer");
        self.root_in(&mut w, *want, ctx, "in a fresh writer, asked again");
        drop(w);
        if !verify {
            return;
        }
        let report = self
            .db
            .reader()
            .unwrap()
            .verify_state()
            .unwrap_or_else(|e| panic!("{ctx}: verify_state: {e}"));
        assert!(report.is_ok(), "{ctx}: verify_state: {report:?}");
        assert_eq!(report.head_number, head, "{ctx}: verify_state head");
        assert_eq!(
            report.computed_state_root, *want,
            "{ctx}: verify_state root"
        );
        assert_eq!(
            report.accounts,
            self.model.len() as u64,
            "{ctx}: verify_state accounts"
        );
    }

    /// One block in one writer: apply, root (unless `with_root` is false:
    /// the commit alone must leave consistent data), insert, commit.
    fn single(&mut self, with_root: bool) {
        let pattern = if with_root {
            "single"
        } else {
            "single-commit-without-root"
        };
        let number = self.next_number();
        let mut w = self.db.writer().unwrap();
        let (root, detail) = self.apply_block(&mut w, number);
        let ctx = self.ctx(pattern, &detail);
        if with_root {
            self.root_in(&mut w, root, &ctx, "in the block's writer");
        }
        self.insert_block(&mut w, number, root, &ctx);
        w.commit().unwrap_or_else(|e| panic!("{ctx}: commit: {e}"));
        self.check_committed(&ctx, self.step.is_multiple_of(5));
        self.finish_step(pattern, detail);
    }

    /// Several blocks in one writer, one root at the end.
    fn multi(&mut self) {
        let count = 2 + self.g.rng.below(3);
        let mut w = self.db.writer().unwrap();
        let mut details = Vec::new();
        let mut root = B256::ZERO;
        for _ in 0..count {
            let number = self.next_number();
            let (r, detail) = self.apply_block(&mut w, number);
            root = r;
            details.push(detail);
            let ctx = self.ctx("multi", &details.join("; "));
            self.insert_block(&mut w, number, root, &ctx);
        }
        let detail = details.join("; ");
        let ctx = self.ctx("multi", &detail);
        self.root_in(&mut w, root, &ctx, "after several blocks in one writer");
        w.commit().unwrap_or_else(|e| panic!("{ctx}: commit: {e}"));
        self.check_committed(&ctx, self.step.is_multiple_of(2));
        self.finish_step("multi", detail);
    }

    /// A writer that unwinds and/or applies blocks (asking for roots or not)
    /// and is dropped: the database must be as before.
    fn dropped(&mut self) {
        let saved_model = self.model.clone();
        let saved_applied = self.applied;
        let mut unwound = Vec::new();
        let mut w = self.db.writer().unwrap();
        let mut details = Vec::new();
        let head = self.next_number() - 1;
        if head >= 1 && self.g.chance(3) {
            let target = head - (1 + self.g.rng.below(MAX_UNWIND.min(head)));
            w.unwind_to(target).unwrap();
            unwound = self.chain.split_off(target as usize + 1);
            self.model = self.chain[target as usize].0.clone();
            details.push(format!("unwind_to {target} from {head}"));
            let ctx = self.ctx("dropped-writer", &details.join("; "));
            self.root_in(
                &mut w,
                self.chain[target as usize].1,
                &ctx,
                "after unwind_to",
            );
        }
        for _ in 0..1 + self.g.rng.below(3) {
            let number = self.next_number();
            let (root, detail) = self.apply_block(&mut w, number);
            details.push(detail);
            let ctx = self.ctx("dropped-writer", &details.join("; "));
            if self.g.chance(2) {
                self.root_in(&mut w, root, &ctx, "in the writer to be dropped");
            }
            self.insert_block(&mut w, number, root, &ctx);
        }
        drop(w);
        self.model = saved_model;
        self.chain
            .truncate(self.chain.len() - (self.applied - saved_applied) as usize);
        self.chain.extend(unwound);
        self.applied = saved_applied;
        let detail = details.join("; ");
        let ctx = self.ctx("dropped-writer", &detail);
        self.check_committed(&ctx, true);
        self.finish_step("dropped-writer", detail);
    }

    /// `unwind_to(head - k)`; the root right after it (unless the variant
    /// commits without asking), sometimes a new block on top in the same
    /// writer, then commit and the fresh-writer checks.
    fn unwind(&mut self) {
        let head = self.next_number() - 1;
        let k = 1 + self.g.rng.below(MAX_UNWIND.min(head));
        let target = head - k;
        let ask_root = !self.g.chance(5);
        let block_on_top = self.g.chance(3);
        let pattern = match (ask_root, block_on_top) {
            (true, false) => "unwind",
            (true, true) => "unwind-then-block",
            (false, false) => "unwind-commit-without-root",
            (false, true) => "unwind-then-block-without-root",
        };
        let mut details = vec![format!("unwind_to {target} from {head}")];
        let mut w = self.db.writer().unwrap();
        let ctx = self.ctx(pattern, &details[0]);
        w.unwind_to(target)
            .unwrap_or_else(|e| panic!("{ctx}: unwind_to: {e}"));
        self.chain.truncate(target as usize + 1);
        self.model = self.chain[target as usize].0.clone();
        if ask_root {
            self.root_in(
                &mut w,
                self.chain[target as usize].1,
                &ctx,
                "after unwind_to",
            );
        }
        if block_on_top {
            let number = self.next_number();
            let (root, detail) = self.apply_block(&mut w, number);
            details.push(detail);
            let ctx = self.ctx(pattern, &details.join("; "));
            self.root_in(&mut w, root, &ctx, "of a block on top of the unwind");
            self.insert_block(&mut w, number, root, &ctx);
        }
        let detail = details.join("; ");
        let ctx = self.ctx(pattern, &detail);
        w.commit().unwrap_or_else(|e| panic!("{ctx}: commit: {e}"));
        self.check_committed(&ctx, true);
        self.finish_step(pattern, detail);
    }

    fn finish_step(&mut self, pattern: &'static str, detail: String) {
        *self.patterns.entry(pattern).or_default() += 1;
        self.last = format!("step {} [{pattern}] {detail}", self.step);
        self.step += 1;
    }

    /// Runs the seed; returns how often each commit pattern and each
    /// operation kind ran.
    fn run(mut self) -> BTreeMap<String, u64> {
        while self.applied < BLOCKS {
            if self.next_number() < SEED_BLOCKS {
                self.single(true);
                continue;
            }
            match self.g.rng.below(100) {
                0..58 => self.single(true),
                58..66 => self.single(false),
                66..78 => self.multi(),
                78..86 => self.dropped(),
                // Unwinds start once a few blocks sit above the seeded state,
                // so that most of them keep it.
                _ if self.next_number() > SEED_BLOCKS + 2 => self.unwind(),
                _ => self.single(true),
            }
        }
        let mut counts = self.g.seen;
        counts.extend(self.patterns.into_iter().map(|(p, n)| (p.to_string(), n)));
        counts
    }
}

#[test]
fn incremental_state_root_matches_full_recomputation() {
    // Seeds in parallel: each has its own database. A failing seed's panic
    // message (seed, step, blocks, operations) is printed by its thread.
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = SEEDS
            .iter()
            .map(|seed| scope.spawn(move || Run::new(*seed).run()))
            .collect();
        handles
            .into_iter()
            .zip(SEEDS)
            .map(|(h, seed)| h.join().unwrap_or_else(|_| panic!("seed {seed:#x} failed")))
            .collect()
    });
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for (what, n) in runs.into_iter().flatten() {
        *total.entry(what).or_default() += n;
    }
    // Every commit pattern and every operation kind must have run, or the
    // test checks less than it claims.
    for what in [
        "single",
        "single-commit-without-root",
        "multi",
        "dropped-writer",
        "unwind",
        "unwind-then-block",
        "unwind-commit-without-root",
        "new",
        "new-empty",
        "new-contract",
        "update",
        "update-same",
        "destroy",
        "eip161-delete",
        "small-storage",
        "big-writes",
        "wipe-rewrite",
        "wipe-rewrite-big",
        "resurrect",
        "destroy-absent",
        "noop-touch",
        "collapse-storage-all",
        "collapse-storage-nibble",
        "collapse-storage-byte",
        "collapse-accounts-nibble",
        "collapse-accounts-byte",
        "destroy-big",
        "recreate-big",
        "bulk",
    ] {
        assert!(
            total.get(what).is_some_and(|n| *n > 0),
            "{what} never ran: {total:?}"
        );
    }
}
