//! Fork choice: the one place that changes the canonical chain of a
//! networked node. Blocks from peers and from the local sealer all pass
//! through [`ChainManager`], which extends the head, keeps recent side
//! chains in memory, and switches to a side chain when its total difficulty
//! exceeds the head's (unwinding the canonical blocks above the fork point
//! from their stored change sets, importing the side chain's blocks with
//! full execution, and putting the dropped transactions back in the pool).
//!
//! Invariants:
//! - Only blocks that passed the cheap checks (seal, turn, difficulty on a
//!   proof-of-authority chain) enter the side map; every block that becomes
//!   canonical is fully re-executed by [`import_block_with`].
//! - A reorg never goes deeper than [`MAX_REORG_DEPTH`] blocks.
//! - Ties in total difficulty keep the current head (first seen wins), so
//!   two nodes never flip-flop between equal chains.
//! - A side chain whose block fails execution is dropped from that block on,
//!   and the previous canonical blocks are imported back.
//! - No block is refused (nor its sender penalised) on an accelerator's
//!   results alone: [`import_block_with`] judges such a block again on the
//!   CPU reference; and the local authority builds its blocks on the CPU
//!   reference only ([`ChainManager::seal_next`]).

use std::{collections::HashMap, sync::Arc};

use alloy_consensus::BlockBody;
use alloy_primitives::U256;
use infera_chainspec::ChainSpec;
use infera_consensus::Clique;
use infera_precompiles::{ModelCache, offload::AcceleratorWatch};
use infera_primitives::{Address, B256, BlockNumber, ChainEvent, SealedBlock, StateReader};
use infera_storage::{Database, Reader};
use infera_txpool::TxPool;
use parking_lot::Mutex;
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

use crate::{
    NodeError, NodeResult,
    builder::CommittedBlock,
    import::{Block, ImportConfig, ImportError, import_block_with},
};

/// Deepest reorg the node performs, in blocks. Side-chain blocks whose fork
/// point lies deeper below the head are ignored, and side blocks that fall
/// this far behind the head are forgotten.
pub const MAX_REORG_DEPTH: u64 = 128;

/// Most side-chain blocks kept in memory; beyond it the lowest are dropped.
pub const MAX_SIDE_BLOCKS: usize = 1024;

/// What happened to an inserted block.
#[derive(Debug)]
pub enum InsertOutcome {
    /// Already canonical or already kept as a side block.
    Known,
    /// The block extended the head.
    Extended(CommittedBlock),
    /// Kept as a side-chain block (its chain is not heavier than the head).
    Side,
    /// Its chain became canonical: `unwound` blocks were replaced by
    /// `imported` (the last one is the new head).
    Reorged {
        unwound: u64,
        imported: Vec<CommittedBlock>,
    },
    /// Its parent is unknown: the caller should fetch the ancestors.
    UnknownParent,
    /// Its fork point is more than [`MAX_REORG_DEPTH`] below the head.
    TooOld,
}

/// A block kept off the canonical chain.
#[derive(Debug, Clone)]
struct SideBlock {
    block: Arc<Block>,
    total_difficulty: U256,
}

/// The head as peers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadInfo {
    pub number: BlockNumber,
    pub hash: B256,
    pub total_difficulty: U256,
}

/// Owns every change of the canonical chain (see the module docs).
pub struct ChainManager {
    db: Database,
    chain: Arc<ChainSpec>,
    clique: Option<Clique>,
    models: Arc<ModelCache>,
    pool: Arc<Mutex<TxPool>>,
    events: broadcast::Sender<ChainEvent>,
    config: ImportConfig,
    head: HeadInfo,
    side: HashMap<B256, SideBlock>,
    /// Snapshot of `head` readable without this manager's lock.
    shared_head: Arc<Mutex<HeadInfo>>,
}

impl std::fmt::Debug for ChainManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainManager")
            .field("head", &self.head)
            .field("side_blocks", &self.side.len())
            .finish_non_exhaustive()
    }
}

impl ChainManager {
    /// Opens the manager over a database that holds at least genesis.
    ///
    /// The head's total difficulty is summed from the stored canonical
    /// headers: one pass over them at start-up.
    pub fn new(
        db: Database,
        chain: Arc<ChainSpec>,
        models: Arc<ModelCache>,
        pool: Arc<Mutex<TxPool>>,
        events: broadcast::Sender<ChainEvent>,
    ) -> NodeResult<Self> {
        let reader = db.reader()?;
        let number = reader.head_number()?.ok_or(NodeError::NoGenesis)?;
        let hash = canonical_hash(&reader, number)?;
        let mut total_difficulty = U256::ZERO;
        for n in 0..=number {
            total_difficulty += header(&reader, n)?.difficulty;
        }
        drop(reader);
        let head = HeadInfo {
            number,
            hash,
            total_difficulty,
        };
        let clique = chain.clique().map(Clique::new);
        Ok(Self {
            db,
            chain,
            clique,
            models,
            pool,
            events,
            config: ImportConfig::default(),
            head,
            side: HashMap::new(),
            shared_head: Arc::new(Mutex::new(head)),
        })
    }

    /// The current head.
    pub fn head(&self) -> HeadInfo {
        self.head
    }

    /// A handle that always holds the current head, for readers that must not
    /// wait for an import in progress (the network's status answers).
    pub fn shared_head(&self) -> Arc<Mutex<HeadInfo>> {
        self.shared_head.clone()
    }

    /// The database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// The chain spec.
    pub fn chain(&self) -> &Arc<ChainSpec> {
        &self.chain
    }

    /// The proof-of-authority rules, if the chain has them.
    pub fn clique(&self) -> Option<&Clique> {
        self.clique.as_ref()
    }

    /// The node's decoded-model cache, shared with the RPC and the sealers.
    pub fn models(&self) -> &Arc<ModelCache> {
        &self.models
    }

    /// Number of side-chain blocks held in memory.
    pub fn side_block_count(&self) -> usize {
        self.side.len()
    }

    /// Inserts a block from a peer (or a file); see [`InsertOutcome`].
    /// A block that breaks a rule ([`ImportError::Invalid`]) or carries
    /// malformed data ([`ImportError::Malformed`]) is refused and changes
    /// nothing; [`ImportError::fault`] says whether its sender is to blame.
    pub fn insert(&mut self, block: Block) -> Result<InsertOutcome, ImportError> {
        let hash = block.header.hash_slow();
        let number = block.header.number;
        if number == 0 {
            return Ok(InsertOutcome::Known);
        }
        let reader = self.db.reader()?;
        if self.side.contains_key(&hash) || reader.canonical_hash(number)? == Some(hash) {
            return Ok(InsertOutcome::Known);
        }
        if block.header.parent_hash == self.head.hash {
            drop(reader);
            let committed = self.commit_on_head(&block)?;
            self.after_extend(std::slice::from_ref(&committed));
            return Ok(InsertOutcome::Extended(committed));
        }

        // Somewhere else: a side chain, or a block whose ancestors we lack.
        let parent_number = number - 1;
        let parent_td = if reader.canonical_hash(parent_number)? == Some(block.header.parent_hash) {
            if self.head.number - parent_number > MAX_REORG_DEPTH {
                return Ok(InsertOutcome::TooOld);
            }
            self.canonical_td(&reader, parent_number)?
        } else if let Some(parent) = self.side.get(&block.header.parent_hash) {
            parent.total_difficulty
        } else {
            return Ok(InsertOutcome::UnknownParent);
        };
        if let Some(clique) = &self.clique {
            let parent = self.header_of(&reader, block.header.parent_hash, parent_number)?;
            let recent = crate::clique_inputs::recent_signers(clique, &parent, |h| {
                self.header_of(&reader, h.parent_hash, h.number - 1)
            })?;
            clique
                .verify_header(
                    &block.header,
                    &parent,
                    &recent,
                    crate::clique_inputs::unix_now_s(),
                )
                .map_err(|e| ImportError::from_consensus(number, hash, e))?;
        }
        let total_difficulty = parent_td + block.header.difficulty;
        drop(reader);
        self.side.insert(
            hash,
            SideBlock {
                block: Arc::new(block),
                total_difficulty,
            },
        );
        self.prune_side();
        if total_difficulty > self.head.total_difficulty {
            return self.reorg_to(hash);
        }
        debug!(target: "infera::chain", number, %hash, %total_difficulty, head_td = %self.head.total_difficulty, "kept side-chain block");
        Ok(InsertOutcome::Side)
    }

    /// Builds, seals with `seal` and commits the next block on the head from
    /// the pool (the local authority's block).
    ///
    /// Every inference of the block runs on the CPU reference, never on the
    /// accelerator: a block built with a wrong GPU result would be refused by
    /// every peer (and get this node banned), and nothing after sealing would
    /// catch it. Gas is priced for the CPU reference, so a full block still
    /// fits the block time; the accelerator serves imports and RPC calls.
    pub fn seal_next(
        &mut self,
        beneficiary: Address,
        timestamp_s: u64,
        seal: &dyn Fn(&mut alloy_consensus::Header) -> NodeResult<()>,
    ) -> NodeResult<CommittedBlock> {
        let _cpu_only = AcceleratorWatch::cpu_only();
        let committed = crate::builder::build_and_commit_sealed(
            &self.db,
            &self.chain,
            &self.pool,
            beneficiary,
            timestamp_s,
            &self.models,
            seal,
        )?;
        self.set_head(&committed);
        let _ = self.events.send(ChainEvent::NewBlock {
            block: committed.block.clone(),
            receipts: committed.receipts.clone(),
        });
        Ok(committed)
    }

    /// Imports `block` on the head and updates the head.
    fn commit_on_head(&mut self, block: &Block) -> Result<CommittedBlock, ImportError> {
        let committed = import_block_with(&self.db, &self.chain, block, self.config, &self.models)?;
        self.set_head(&committed);
        Ok(committed)
    }

    fn set_head(&mut self, committed: &CommittedBlock) {
        self.head = HeadInfo {
            number: committed.block.number(),
            hash: committed.block.hash,
            total_difficulty: self.head.total_difficulty + committed.block.header.difficulty,
        };
        *self.shared_head.lock() = self.head;
    }

    /// Pool upkeep and events after blocks became canonical.
    fn after_extend(&self, committed: &[CommittedBlock]) {
        let mined: Vec<B256> = committed
            .iter()
            .flat_map(|c| c.block.transactions.iter().map(|tx| tx.hash))
            .collect();
        if let Ok(reader) = self.db.reader() {
            let state = reader.latest_state();
            self.pool.lock().on_new_block(&mined, |address| {
                state.account(address).ok().flatten().map_or(0, |a| a.nonce)
            });
        }
        for c in committed {
            let _ = self.events.send(ChainEvent::NewBlock {
                block: c.block.clone(),
                receipts: c.receipts.clone(),
            });
        }
    }

    /// Makes the side chain ending in `tip` canonical.
    fn reorg_to(&mut self, tip: B256) -> Result<InsertOutcome, ImportError> {
        // The side branch, oldest first, and the fork point below it.
        let mut branch = Vec::new();
        let mut cursor = tip;
        while let Some(side) = self.side.get(&cursor) {
            branch.push(side.block.clone());
            cursor = side.block.header.parent_hash;
        }
        branch.reverse();
        let fork = branch[0].header.number - 1;
        let reader = self.db.reader()?;
        if canonical_hash(&reader, fork)? != cursor {
            return Err(NodeError::Invariant(format!(
                "side chain to {tip} does not fork from the canonical block {fork}"
            ))
            .into());
        }
        let old: Vec<SealedBlock> = (fork + 1..=self.head.number)
            .map(|n| {
                reader.block(n)?.ok_or_else(|| {
                    NodeError::Invariant(format!("canonical block {n} missing")).into()
                })
            })
            .collect::<Result<_, ImportError>>()?;
        let fork_td = self.canonical_td(&reader, fork)?;
        drop(reader);
        let old_head = self.head;
        info!(
            target: "infera::chain",
            fork,
            old_head = old_head.number,
            new_head = branch.last().map_or(0, |b| b.header.number),
            %tip,
            "reorganising: a heavier chain arrived"
        );

        self.unwind_to(fork, fork_td)?;
        // The old canonical blocks become side blocks: a later switch back is
        // an ordinary reorg.
        let mut td = fork_td;
        for sealed in &old {
            td += sealed.header.difficulty;
            self.side.insert(
                sealed.hash,
                SideBlock {
                    block: Arc::new(block_of(sealed)),
                    total_difficulty: td,
                },
            );
        }

        let mut imported = Vec::new();
        let mut imported_tds = Vec::new();
        let mut failure = None;
        for block in &branch {
            let hash = block.header.hash_slow();
            match self.commit_on_head(block) {
                Ok(committed) => {
                    self.side.remove(&hash);
                    imported.push(committed);
                    imported_tds.push(self.head.total_difficulty);
                }
                Err(err) => {
                    failure = Some((hash, err));
                    break;
                }
            }
        }
        let mut error = None;
        if let Some((bad, err)) = failure {
            warn!(target: "infera::chain", %bad, %err, "side chain failed execution; dropping it");
            self.drop_side_descendants(bad);
            if self.head.total_difficulty <= old_head.total_difficulty {
                // Back to the old chain: its blocks were valid before.
                self.unwind_to(fork, fork_td)?;
                for sealed in &old {
                    self.commit_on_head(&block_of(sealed))?;
                    self.side.remove(&sealed.hash);
                }
                // The valid part of the side branch stays available.
                for (committed, td) in imported.iter().zip(imported_tds) {
                    self.side.insert(
                        committed.block.hash,
                        SideBlock {
                            block: Arc::new(block_of(&committed.block)),
                            total_difficulty: td,
                        },
                    );
                }
                return Err(err);
            }
            // The valid prefix alone outweighs the old chain: keep it.
            error = Some(err);
        }

        self.refill_pool(&old, &imported);
        for c in &imported {
            let _ = self.events.send(ChainEvent::NewBlock {
                block: c.block.clone(),
                receipts: c.receipts.clone(),
            });
        }
        info!(
            target: "infera::chain",
            unwound = old.len(),
            imported = imported.len(),
            head = self.head.number,
            hash = %self.head.hash,
            "reorg done"
        );
        match error {
            Some(err) => Err(err),
            None => Ok(InsertOutcome::Reorged {
                unwound: old.len() as u64,
                imported,
            }),
        }
    }

    fn unwind_to(&mut self, fork: BlockNumber, fork_td: U256) -> Result<(), ImportError> {
        let mut writer = self.db.writer()?;
        writer.unwind_to(fork)?;
        writer.commit()?;
        let reader = self.db.reader()?;
        self.head = HeadInfo {
            number: fork,
            hash: canonical_hash(&reader, fork)?,
            total_difficulty: fork_td,
        };
        *self.shared_head.lock() = self.head;
        Ok(())
    }

    /// Transactions of the unwound blocks that the new chain did not include
    /// go back to the pool; the new chain's transactions leave it.
    fn refill_pool(&self, old: &[SealedBlock], new: &[CommittedBlock]) {
        let included: std::collections::HashSet<B256> = new
            .iter()
            .flat_map(|c| c.block.transactions.iter().map(|tx| tx.hash))
            .collect();
        let Ok(reader) = self.db.reader() else { return };
        let state = reader.latest_state();
        let base_fee = header(&reader, self.head.number)
            .ok()
            .and_then(|h| self.chain.next_base_fee(&h))
            .unwrap_or(0);
        let mut pool = self.pool.lock();
        pool.on_new_block(&included.iter().copied().collect::<Vec<_>>(), |address| {
            state.account(address).ok().flatten().map_or(0, |a| a.nonce)
        });
        let mut restored = 0usize;
        for tx in old.iter().flat_map(|b| b.transactions.iter()) {
            if included.contains(&tx.hash) {
                continue;
            }
            let (nonce, balance) = state
                .account(tx.sender)
                .ok()
                .flatten()
                .map_or((0, U256::ZERO), |a| (a.nonce, a.balance));
            if pool.add(tx.clone(), nonce, balance, base_fee).is_ok() {
                restored += 1;
                // Peers may never have seen it (it may have come only in the
                // dropped block): announce it like a new transaction.
                let _ = self.events.send(ChainEvent::PendingTransaction(tx.hash));
            }
        }
        if restored > 0 {
            info!(target: "infera::chain", restored, "returned transactions of dropped blocks to the pool");
        }
    }

    /// Removes `bad` and every side block built on it.
    fn drop_side_descendants(&mut self, bad: B256) {
        let mut doomed = vec![bad];
        while let Some(hash) = doomed.pop() {
            self.side.remove(&hash);
            let children: Vec<B256> = self
                .side
                .iter()
                .filter(|(_, s)| s.block.header.parent_hash == hash)
                .map(|(h, _)| *h)
                .collect();
            doomed.extend(children);
        }
    }

    /// Forgets side blocks too far below the head, and the lowest ones when
    /// there are too many.
    fn prune_side(&mut self) {
        let floor = self.head.number.saturating_sub(MAX_REORG_DEPTH);
        self.side.retain(|_, s| s.block.header.number > floor);
        if self.side.len() > MAX_SIDE_BLOCKS {
            let mut numbers: Vec<(BlockNumber, B256)> = self
                .side
                .iter()
                .map(|(h, s)| (s.block.header.number, *h))
                .collect();
            numbers.sort_unstable();
            for (_, hash) in numbers.iter().take(self.side.len() - MAX_SIDE_BLOCKS) {
                self.side.remove(hash);
            }
        }
    }

    /// Total difficulty of canonical block `number` (at most
    /// [`MAX_REORG_DEPTH`] headers are read for the reorgs that need it).
    fn canonical_td(&self, reader: &Reader, number: BlockNumber) -> NodeResult<U256> {
        let mut td = self.head.total_difficulty;
        for n in number + 1..=self.head.number {
            td -= header(reader, n)?.difficulty;
        }
        Ok(td)
    }

    /// The header of `hash` (canonical block `number` or a side block).
    fn header_of(
        &self,
        reader: &Reader,
        hash: B256,
        number: BlockNumber,
    ) -> NodeResult<alloy_consensus::Header> {
        if let Some(side) = self.side.get(&hash) {
            return Ok(side.block.header.clone());
        }
        let header = header(reader, number)?;
        Ok(header)
    }
}

/// The block as it travels on the wire, rebuilt from storage. Bodies of the
/// blocks this node builds and imports on its own chains have no ommers and,
/// from Shanghai, an empty withdrawals list (the header's root says so).
pub fn block_of(sealed: &SealedBlock) -> Block {
    Block {
        header: sealed.header.clone(),
        body: BlockBody {
            transactions: sealed.transactions.iter().map(|tx| tx.tx.clone()).collect(),
            ommers: Vec::new(),
            withdrawals: sealed
                .header
                .withdrawals_root
                .map(|_| alloy_eips::eip4895::Withdrawals::new(Vec::new())),
        },
    }
}

fn canonical_hash(reader: &Reader, number: BlockNumber) -> NodeResult<B256> {
    reader
        .canonical_hash(number)?
        .ok_or_else(|| NodeError::Invariant(format!("canonical block {number} has no hash")))
}

fn header(reader: &Reader, number: BlockNumber) -> NodeResult<alloy_consensus::Header> {
    reader
        .header(number)?
        .ok_or_else(|| NodeError::Invariant(format!("canonical block {number} has no header")))
}
