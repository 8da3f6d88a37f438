//! Incremental Merkle-Patricia roots over stored branch nodes.
//!
//! Every branch node of the account trie and of each storage trie is stored
//! ([`Table::AccountsTrie`], [`Table::StoragesTrie`]) in alloy-trie's
//! [`BranchNodeCompact`] form: which children exist (`state_mask`), which are
//! branches themselves (`tree_mask`) and the hashes of the children whose
//! reference is a hash (`hash_mask`, `hashes`), leaves included: alloy-trie's
//! builder records only branch children's hashes, and we add the leaves' so
//! that an unchanged leaf next to a changed one costs neither a read nor a
//! hash. Leaves themselves are not stored twice: they are the entries of
//! `HashedAccounts` / `HashedStorage`.
//!
//! A root is recomputed from the keys that changed (the *targets*). The walk
//! starts at the top stored node and descends only into children that hold a
//! target; every other child enters alloy-trie's `HashBuilder` as its stored
//! hash (`add_branch`), or, for a leaf child, as that one leaf. So the work
//! is O(targets × depth × 16) reads, whatever the size of the trie.
//!
//! # Invariants
//!
//! - **The stored nodes are exactly the branch nodes of the current leaves**,
//!   at their absolute paths, after every commit. The builder runs with
//!   `with_all_branch_nodes`, so every branch it rebuilds is re-emitted, and
//!   every stored node the walk passed through but the builder did not
//!   re-emit no longer exists and is deleted. A stored node off the walk has
//!   no target below it, so it is unchanged.
//! - **A stored hash is used only where its node survives.** A child's hash
//!   is valid only while its parent branch keeps at least two children. When
//!   deletions leave a branch with one child, that child is walked into
//!   instead, so the builder can merge it with what is above (a leaf or an
//!   extension gets a longer key; a branch gets an extension in front).
//! - **The walk's decisions depend on reads only, never on hashes**: it
//!   produces the builder's inputs ([`TrieWalk`]), and building them is pure
//!   CPU work that may run on another thread.

use crate::{
    codec::WORD_BYTES,
    db::{Tables, drain_prefix},
    error::{StorageError, StorageResult},
    tables::Table,
};
use alloy_primitives::{B256, keccak256};
use alloy_trie::{
    BranchNodeCompact, HashBuilder, Nibbles, TrieMask,
    nodes::{BranchNodeRef, ExtensionNodeRef, LeafNodeRef, RlpNode},
    proof::{ProofNodes, ProofRetainer},
};
use signet_libmdbx::{MdbxError, TransactionKind, WriteFlags, tx::Tx, tx::aliases::RwTxSync};
use std::borrow::Cow;

/// Longest path of a branch node, in nibbles (a key has 64; a branch sits
/// above at least two keys, so at most 63 nibbles deep).
const MAX_BRANCH_PATH_NIBBLES: usize = 63;
/// Bytes of the three masks at the front of a stored node.
const NODE_MASK_BYTES: usize = 6;

/// One trie in the node tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrieId {
    /// The account trie.
    Accounts,
    /// The storage trie of the account with this hashed address.
    Storage(B256),
}

impl TrieId {
    fn nodes_table(self) -> Table {
        match self {
            Self::Accounts => Table::AccountsTrie,
            Self::Storage(_) => Table::StoragesTrie,
        }
    }

    fn leaves_table(self) -> Table {
        match self {
            Self::Accounts => Table::HashedAccounts,
            Self::Storage(_) => Table::HashedStorage,
        }
    }

    /// The bytes in front of every key of this trie, in both tables.
    fn key_prefix(&self) -> &[u8] {
        match self {
            Self::Accounts => &[],
            Self::Storage(hashed_address) => hashed_address.as_slice(),
        }
    }

    /// The node table key of the branch at `path`: prefix ++ one nibble a byte.
    fn node_key(&self, path: &Nibbles) -> Vec<u8> {
        let mut key = Vec::with_capacity(WORD_BYTES + path.len());
        key.extend_from_slice(self.key_prefix());
        key.extend(path.iter());
        key
    }
}

/// Encodes a stored branch node: `state_mask`, `tree_mask`, `hash_mask`
/// (u16 big-endian each), then the hashes in nibble order. The root hash is
/// not stored: the account trie's root is the header's, a storage trie's root
/// is in its `HashedAccounts` leaf.
pub(crate) fn encode_node(node: &BranchNodeCompact, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&node.state_mask.get().to_be_bytes());
    out.extend_from_slice(&node.tree_mask.get().to_be_bytes());
    out.extend_from_slice(&node.hash_mask.get().to_be_bytes());
    for hash in node.hashes.iter() {
        out.extend_from_slice(hash.as_slice());
    }
}

/// Decodes [`encode_node`]'s bytes, checking the masks agree with each other
/// and with the number of hashes (a corrupt node is an error, never a panic).
pub(crate) fn decode_node(table: Table, key: &[u8], v: &[u8]) -> StorageResult<BranchNodeCompact> {
    let corrupt = |reason: &str| StorageError::corrupt(table, key, reason);
    if v.len() < NODE_MASK_BYTES || !(v.len() - NODE_MASK_BYTES).is_multiple_of(WORD_BYTES) {
        return Err(corrupt("bad branch node length"));
    }
    let mask = |i: usize| TrieMask::new(u16::from_be_bytes([v[i], v[i + 1]]));
    let (state_mask, tree_mask, hash_mask) = (mask(0), mask(2), mask(4));
    let hashes: Vec<B256> = v[NODE_MASK_BYTES..]
        .chunks_exact(WORD_BYTES)
        .map(B256::from_slice)
        .collect();
    if state_mask.count_ones() < 2
        || !tree_mask.is_subset_of(state_mask)
        || !hash_mask.is_subset_of(state_mask)
        || hash_mask.count_ones() as usize != hashes.len()
    {
        return Err(corrupt("inconsistent branch node masks"));
    }
    Ok(BranchNodeCompact::new(
        state_mask, tree_mask, hash_mask, hashes, None,
    ))
}

/// One input of the hash builder, in key order.
#[derive(Clone, Debug)]
enum TrieInput {
    /// A leaf: full key and trie value (RLP).
    Leaf(Nibbles, Vec<u8>),
    /// An unchanged subtree, by the hash of its top node, and whether that
    /// node is a stored branch.
    Subtree(Nibbles, B256, bool),
}

impl TrieInput {
    fn key(&self) -> &Nibbles {
        match self {
            Self::Leaf(key, _) | Self::Subtree(key, _, _) => key,
        }
    }
}

/// What a walk read: the hash builder's inputs, in order, and the paths of
/// the stored nodes it passed through (each is either rebuilt or gone).
#[derive(Clone, Debug, Default)]
pub(crate) struct TrieWalk {
    inputs: Vec<TrieInput>,
    visited: Vec<Nibbles>,
    /// Children whose every key is gone and below which branches were
    /// stored: all of those go (the walk does not descend into them).
    emptied: Vec<Nibbles>,
}

/// The result of building a walk: the new root, the branch nodes to store
/// and the stored ones to delete.
#[derive(Debug, Default)]
pub(crate) struct TrieUpdate {
    pub(crate) root: B256,
    /// Branch nodes to (re)write, by path.
    pub(crate) nodes: Vec<(Nibbles, BranchNodeCompact)>,
    /// Paths of stored nodes that no longer exist.
    pub(crate) removed: Vec<Nibbles>,
    /// Paths whose whole stored subtree no longer exists.
    pub(crate) emptied: Vec<Nibbles>,
}

impl TrieWalk {
    fn feed<K>(&self, hb: &mut HashBuilder<K>)
    where
        K: AsRef<alloy_trie::proof::AddedRemovedKeys>,
    {
        for input in &self.inputs {
            match input {
                TrieInput::Leaf(key, value) => hb.add_leaf(*key, value),
                TrieInput::Subtree(key, hash, stored) => hb.add_branch(*key, *hash, *stored),
            }
        }
    }

    /// Builds the root and the node changes. Pure CPU: no database access.
    /// A large walk is built on two threads (see [`Self::build_split`]);
    /// the result is the same either way.
    pub(crate) fn build(&self) -> TrieUpdate {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads > 1
            && self.inputs.len() >= SPLIT_BUILD_MIN_INPUTS
            && let Some(update) = self.build_split()
        {
            return update;
        }
        self.build_whole()
    }

    /// Builds the whole walk with one hash builder.
    fn build_whole(&self) -> TrieUpdate {
        let mut hb = HashBuilder::default()
            .with_updates(true)
            .with_all_branch_nodes(true);
        self.feed(&mut hb);
        let root = hb.root();
        let (_, updates) = hb.split();
        self.finish(root, updates.into_iter().collect())
    }

    /// Builds the root's children on two threads, then the root from their
    /// hashes. Possible when the root stays a branch (the inputs begin with
    /// at least two different nibbles); `None` otherwise.
    ///
    /// Each child is built by its own hash builder from its inputs with the
    /// first nibble cut off: the root of that is exactly the node in the
    /// root's slot (its keys are relative to the slot), and its nodes' paths
    /// are relative to the slot. A node one nibble deep always has a hash as
    /// its reference: its keys are 63 nibbles long, so no child of the root
    /// can be short enough to be inlined.
    fn build_split(&self) -> Option<TrieUpdate> {
        let mut groups: Vec<(u8, &[TrieInput])> = Vec::with_capacity(16);
        let mut start = 0;
        while start < self.inputs.len() {
            let nibble = self.inputs[start].key().first()?;
            let len = self.inputs[start..]
                .iter()
                .take_while(|input| input.key().first() == Some(nibble))
                .count();
            groups.push((nibble, &self.inputs[start..start + len]));
            start += len;
        }
        if groups.len() < 2 {
            return None;
        }
        // Two halves of about equal input counts.
        let total = self.inputs.len();
        let mut seen = 0;
        let cut = groups
            .iter()
            .position(|(_, inputs)| {
                seen += inputs.len();
                seen * 2 >= total
            })
            .map_or(1, |i| (i + 1).clamp(1, groups.len() - 1));
        let (first, second) = groups.split_at(cut);
        let (mut children, rest) = std::thread::scope(|scope| {
            let other = scope.spawn(|| second.iter().map(|g| build_child(g.0, g.1)).collect());
            let mine: Vec<ChildBuild> = first.iter().map(|g| build_child(g.0, g.1)).collect();
            let rest: Vec<ChildBuild> = other.join().expect("a trie build panicked");
            (mine, rest)
        });
        children.extend(rest);

        let mut state_mask = TrieMask::default();
        let mut tree_mask = TrieMask::default();
        let mut stack = Vec::with_capacity(children.len());
        let mut hashes = Vec::with_capacity(children.len());
        let mut nodes = Vec::new();
        for child in children {
            state_mask.set_bit(child.nibble);
            if child.stored {
                tree_mask.set_bit(child.nibble);
            }
            stack.push(RlpNode::word_rlp(&child.hash));
            hashes.push(child.hash);
            nodes.extend(child.nodes);
        }
        let mut rlp = Vec::new();
        BranchNodeRef::new(&stack, state_mask).rlp(&mut rlp);
        let root = keccak256(&rlp);
        nodes.push((
            Nibbles::new(),
            BranchNodeCompact::new(state_mask, tree_mask, state_mask, hashes, Some(root)),
        ));
        Some(self.finish(root, nodes))
    }

    /// Adds the leaf hashes, sorts the nodes and lists the removed ones.
    fn finish(&self, root: B256, nodes: Vec<(Nibbles, BranchNodeCompact)>) -> TrieUpdate {
        let mut buf = Vec::new();
        let mut nodes: Vec<_> = nodes
            .into_iter()
            .map(|(path, node)| {
                let node = self.with_leaf_hashes(&path, node, &mut buf);
                (path, node)
            })
            .collect();
        nodes.sort_unstable_by_key(|(path, _)| *path);
        add_branch_child_hashes(&mut nodes);
        let removed = self
            .visited
            .iter()
            .filter(|path| nodes.binary_search_by_key(*path, |(p, _)| *p).is_err())
            .copied()
            .collect();
        TrieUpdate {
            root,
            nodes,
            removed,
            emptied: self.emptied.clone(),
        }
    }

    /// Replaces the values of leaves the walk read (by hashed key; sorted or
    /// not). Every key must be one of the walk's targets whose leaf exists:
    /// the walk always reads those, unless the stored nodes disagree with
    /// the leaves.
    pub(crate) fn replace_leaves(&mut self, leaves: &[(B256, Vec<u8>)]) -> StorageResult<()> {
        for (hashed_key, value) in leaves {
            let key = Nibbles::unpack(hashed_key);
            let i = self.inputs.partition_point(|input| input.key() < &key);
            match self.inputs.get_mut(i) {
                Some(TrieInput::Leaf(found, old)) if *found == key => *old = value.clone(),
                _ => {
                    return Err(StorageError::corrupt(
                        Table::AccountsTrie,
                        hashed_key.as_slice(),
                        "the stored branch nodes do not lead to this account's leaf",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Adds the hashes of a rebuilt node's leaf children, which the hash
    /// builder leaves out (it stores hashes of branch children only). With
    /// them, an unchanged leaf beside a changed key enters the next walk as
    /// its hash: no read, no hashing. The leaf is the one input under its
    /// slot; its node's key is what follows the slot.
    fn with_leaf_hashes(
        &self,
        path: &Nibbles,
        node: BranchNodeCompact,
        buf: &mut Vec<u8>,
    ) -> BranchNodeCompact {
        let leaves = node.state_mask.get() & !node.hash_mask.get() & !node.tree_mask.get();
        if leaves == 0 {
            return node;
        }
        let mut found = Vec::new();
        for nibble in (0u8..16).filter(|n| leaves & (1 << n) != 0) {
            let mut slot = *path;
            slot.push_unchecked(nibble);
            let i = self.inputs.partition_point(|input| input.key() < &slot);
            if let Some(TrieInput::Leaf(key, value)) = self.inputs.get(i)
                && key.starts_with(&slot)
            {
                buf.clear();
                let rlp = LeafNodeRef::new(&key.slice(slot.len()..), value).rlp(buf);
                found.extend(rlp.as_hash().map(|hash| (nibble, hash)));
            }
        }
        with_child_hashes(&node, &found)
    }

    /// The root and the nodes on the paths to `targets` (the walk must have
    /// been made with the same targets, so every such node is rebuilt).
    pub(crate) fn proof(&self, targets: Vec<Nibbles>) -> (B256, ProofNodes) {
        let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(targets));
        self.feed(&mut hb);
        let root = hb.root();
        (root, hb.take_proof_nodes())
    }
}

/// Adds the hashes of branch children the hash builder left out. It records
/// a child branch's hash only in some positions (about 4% of tree-mask
/// children go without, many below an extension); without it every later
/// walk past the parent must descend into the child. A child's hash follows
/// from its stored node when that node was rebuilt here with every child's
/// hash known: the branch's RLP from those hashes, behind an extension when
/// the node lies deeper than the slot. Deepest nodes first, so a child is
/// complete before its parent uses it. `nodes` is sorted by path.
fn add_branch_child_hashes(nodes: &mut [(Nibbles, BranchNodeCompact)]) {
    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(nodes[i].0.len()));
    let mut rlp = Vec::new();
    for i in order {
        let (path, node) = &nodes[i];
        let missing = node.tree_mask.get() & !node.hash_mask.get();
        if missing == 0 {
            continue;
        }
        let mut found = Vec::new();
        for nibble in (0u8..16).filter(|n| missing & (1 << n) != 0) {
            let mut slot = *path;
            slot.push_unchecked(nibble);
            // The first node at or below the slot is the child's top branch.
            let j = nodes.partition_point(|(p, _)| *p < slot);
            let Some((child_path, child)) = nodes.get(j) else {
                continue;
            };
            if !child_path.starts_with(&slot) || child.hash_mask != child.state_mask {
                continue;
            }
            let stack: Vec<RlpNode> = child.hashes.iter().map(RlpNode::word_rlp).collect();
            rlp.clear();
            let branch = BranchNodeRef::new(&stack, child.state_mask).rlp(&mut rlp);
            let reference = if *child_path == slot {
                branch
            } else {
                let key = child_path.slice(slot.len()..);
                rlp.clear();
                ExtensionNodeRef::new(&key, &branch).rlp(&mut rlp)
            };
            if let Some(hash) = reference.as_hash() {
                found.push((nibble, hash));
            }
        }
        if !found.is_empty() {
            nodes[i].1 = with_child_hashes(&nodes[i].1, &found);
        }
    }
}

/// `node` with the hashes of the `found` children (nibbles ascending, none
/// of them hashed yet) added to those it holds, in nibble order.
fn with_child_hashes(node: &BranchNodeCompact, found: &[(u8, B256)]) -> BranchNodeCompact {
    let mut hash_mask = node.hash_mask;
    let mut hashes = Vec::with_capacity(16);
    let mut stored = node.hashes.iter();
    let mut found = found.iter().peekable();
    for nibble in 0u8..16 {
        if node.hash_mask.is_bit_set(nibble) {
            hashes.extend(stored.next());
        } else if let Some((_, hash)) = found.next_if(|(n, _)| *n == nibble) {
            hash_mask.set_bit(nibble);
            hashes.push(*hash);
        }
    }
    BranchNodeCompact::new(
        node.state_mask,
        node.tree_mask,
        hash_mask,
        hashes,
        node.root_hash,
    )
}

/// Walks with fewer inputs are built on one thread (a thread costs more
/// than the hashing it would share).
const SPLIT_BUILD_MIN_INPUTS: usize = 2048;

/// One child of the root, built on its own.
struct ChildBuild {
    nibble: u8,
    /// The hash of the node in the root's slot.
    hash: B256,
    /// Whether a branch is stored below the slot (the root's tree mask).
    stored: bool,
    /// The branch nodes below the slot, at their full paths.
    nodes: Vec<(Nibbles, BranchNodeCompact)>,
}

/// Builds the subtree in the root's slot `nibble` from its inputs.
fn build_child(nibble: u8, inputs: &[TrieInput]) -> ChildBuild {
    if let [TrieInput::Subtree(key, hash, stored)] = inputs
        && key.len() == 1
    {
        return ChildBuild {
            nibble,
            hash: *hash,
            stored: *stored,
            nodes: Vec::new(),
        };
    }
    let mut hb = HashBuilder::default()
        .with_updates(true)
        .with_all_branch_nodes(true);
    for input in inputs {
        match input {
            TrieInput::Leaf(key, value) => hb.add_leaf(key.slice(1..), value),
            TrieInput::Subtree(key, hash, stored) => hb.add_branch(key.slice(1..), *hash, *stored),
        }
    }
    let hash = hb.root();
    let (_, updates) = hb.split();
    let slot = Nibbles::from_nibbles_unchecked([nibble]);
    let nodes: Vec<_> = updates
        .into_iter()
        .map(|(path, mut node)| {
            node.root_hash = None;
            (slot.join(&path), node)
        })
        .collect();
    ChildBuild {
        nibble,
        hash,
        stored: !nodes.is_empty(),
        nodes,
    }
}

/// Whether the first `path.len()` nibbles of `key` are `path`.
fn key_has_prefix(key: &[u8], path: &Nibbles) -> bool {
    let full = path.len() / 2;
    if key.len() * 2 < path.len() {
        return false;
    }
    for (i, byte) in key[..full].iter().enumerate() {
        if *byte != (path.get_unchecked(2 * i) << 4 | path.get_unchecked(2 * i + 1)) {
            return false;
        }
    }
    path.len().is_multiple_of(2) || key[full] >> 4 == path.get_unchecked(path.len() - 1)
}

/// Nibble `i` of a 32-byte key.
fn nibble_at(key: &B256, i: usize) -> u8 {
    let byte = key[i / 2];
    if i.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0xf
    }
}

/// The smallest 32-byte key with nibble prefix `path` (the path, zero padded).
fn lowest_key(path: &Nibbles) -> [u8; WORD_BYTES] {
    let mut key = [0u8; WORD_BYTES];
    path.pack_to(&mut key);
    key
}

/// Walks one trie from the targets (sorted, unique hashed keys).
pub(crate) fn walk<K: TransactionKind>(
    tx: &Tx<K>,
    tables: &Tables,
    trie: TrieId,
    targets: &[B256],
) -> StorageResult<TrieWalk> {
    debug_assert!(targets.windows(2).all(|w| w[0] < w[1]));
    let mut walker = Walker {
        nodes: tx.cursor(tables.get(trie.nodes_table()))?,
        leaves: tx.cursor(tables.get(trie.leaves_table()))?,
        trie,
        seek: Vec::with_capacity(2 * WORD_BYTES),
        out: TrieWalk::default(),
    };
    walker.subtree(Nibbles::new(), true, targets)?;
    Ok(walker.out)
}

struct Walker<'tx, K: TransactionKind> {
    nodes: signet_libmdbx::Cursor<'tx, K>,
    leaves: signet_libmdbx::Cursor<'tx, K>,
    trie: TrieId,
    /// Scratch for seek keys.
    seek: Vec<u8>,
    out: TrieWalk,
}

/// A table entry as a cursor returns it.
type RawEntry<'tx> = (Cow<'tx, [u8]>, Cow<'tx, [u8]>);

/// What a branch's child becomes after this block's changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Child {
    Absent,
    /// No target below: the stored node's view of it holds.
    Unchanged,
    /// A target below and at least one key left.
    Changed,
}

impl<K: TransactionKind> Walker<'_, K> {
    /// The topmost stored branch at or below `path`: the first stored path
    /// with that prefix (a prefix sorts before its extensions).
    fn top_node(&mut self, path: &Nibbles) -> StorageResult<Option<(Nibbles, BranchNodeCompact)>> {
        let table = self.trie.nodes_table();
        let prefix_len = self.trie.key_prefix().len();
        self.seek.clear();
        self.seek.extend_from_slice(self.trie.key_prefix());
        self.seek.extend(path.iter());
        let Some((k, v)) = self
            .nodes
            .set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(&self.seek)?
        else {
            return Ok(None);
        };
        if !k.starts_with(&self.seek) {
            return Ok(None);
        }
        let nibbles = &k[prefix_len..];
        if nibbles.len() > MAX_BRANCH_PATH_NIBBLES || nibbles.iter().any(|n| *n > 0xf) {
            return Err(StorageError::corrupt(table, &k, "bad branch node path"));
        }
        let node = decode_node(table, &k, &v)?;
        Ok(Some((Nibbles::from_nibbles_unchecked(nibbles), node)))
    }

    /// Positions the leaf cursor at the first leaf at or after `path`'s
    /// lowest key, returning it if it lies under `within`.
    fn first_leaf(
        &mut self,
        from: &Nibbles,
        within: &Nibbles,
    ) -> StorageResult<Option<(Nibbles, Vec<u8>)>> {
        self.seek.clear();
        self.seek.extend_from_slice(self.trie.key_prefix());
        self.seek.extend_from_slice(&lowest_key(from));
        let item = self
            .leaves
            .set_range::<Cow<'_, [u8]>, Cow<'_, [u8]>>(&self.seek)?;
        self.leaf_under(item, within)
    }

    fn next_leaf(&mut self, within: &Nibbles) -> StorageResult<Option<(Nibbles, Vec<u8>)>> {
        let item = self.leaves.next::<Cow<'_, [u8]>, Cow<'_, [u8]>>()?;
        self.leaf_under(item, within)
    }

    fn leaf_under(
        &self,
        item: Option<RawEntry<'_>>,
        within: &Nibbles,
    ) -> StorageResult<Option<(Nibbles, Vec<u8>)>> {
        let Some((k, v)) = item else {
            return Ok(None);
        };
        let prefix = self.trie.key_prefix();
        if !k.starts_with(prefix) {
            return Ok(None);
        }
        let key = &k[prefix.len()..];
        if key.len() != WORD_BYTES {
            return Err(StorageError::corrupt(
                self.trie.leaves_table(),
                &k,
                "bad key length",
            ));
        }
        if !key_has_prefix(key, within) {
            return Ok(None);
        }
        Ok(Some((Nibbles::unpack(key), v.into_owned())))
    }

    /// Adds every leaf under `within` from `from` on, stopping before
    /// `until` (a path whose subtree is handled separately).
    fn leaves(
        &mut self,
        from: &Nibbles,
        within: &Nibbles,
        until: Option<&Nibbles>,
    ) -> StorageResult<()> {
        let mut item = self.first_leaf(from, within)?;
        while let Some((key, value)) = item {
            if until.is_some_and(|u| key >= *u) {
                break;
            }
            self.out.inputs.push(TrieInput::Leaf(key, value));
            item = self.next_leaf(within)?;
        }
        Ok(())
    }

    /// Adds everything under `path`, which holds a target (or whose branch
    /// parent is going away). `may_hold_node` is false when the parent's
    /// tree mask says no stored branch lies below: one seek saved.
    fn subtree(
        &mut self,
        path: Nibbles,
        may_hold_node: bool,
        targets: &[B256],
    ) -> StorageResult<()> {
        let top = if may_hold_node {
            self.top_node(&path)?
        } else {
            None
        };
        let Some((top, node)) = top else {
            // No stored branch below: at most one leaf before this block's
            // inserts, so reading the leaves is bounded by the changes.
            return self.leaves(&path, &path, None);
        };
        self.out.visited.push(top);
        if top == path {
            return self.branch(top, &node, targets);
        }
        // An extension led from `path` to `top`; new keys may have split it.
        let lowest = B256::from(lowest_key(&top));
        let start = targets.partition_point(|t| *t < lowest);
        let len = targets[start..]
            .iter()
            .take_while(|t| key_has_prefix(t.as_slice(), &top))
            .count();
        self.leaves(&path, &path, Some(&top))?;
        self.branch(top, &node, &targets[start..start + len])?;
        if let Some(after) = top.increment() {
            self.leaves(&after, &path, None)?;
        }
        Ok(())
    }

    /// Adds everything under the branch `node` at `path`; `targets` are the
    /// targets below it, in order.
    fn branch(
        &mut self,
        path: Nibbles,
        node: &BranchNodeCompact,
        targets: &[B256],
    ) -> StorageResult<()> {
        // The targets below each child: consecutive runs, by the nibble
        // after `path`.
        let depth = path.len();
        let mut below: [std::ops::Range<usize>; 16] = Default::default();
        let mut start = 0;
        while start < targets.len() {
            let nibble = nibble_at(&targets[start], depth);
            let len = targets[start..]
                .iter()
                .take_while(|t| nibble_at(t, depth) == nibble)
                .count();
            below[usize::from(nibble)] = start..start + len;
            start += len;
        }
        let mut children = [Child::Absent; 16];
        for (nibble, child) in (0u8..16).zip(children.iter_mut()) {
            *child = if !below[usize::from(nibble)].is_empty() {
                Child::Changed
            } else if node.state_mask.is_bit_set(nibble) {
                Child::Unchanged
            } else {
                Child::Absent
            };
        }
        // Whether the branch keeps two children. Only when the unchanged ones
        // do not already make two does it matter which changed ones still
        // hold a key (a changed child left empty adds no input either way).
        let unchanged = children.iter().filter(|c| **c == Child::Unchanged).count();
        let survives = unchanged >= 2 || {
            let mut left = unchanged;
            for (nibble, child) in (0u8..16).zip(children.iter_mut()) {
                if *child == Child::Changed {
                    let mut child_path = path;
                    child_path.push_unchecked(nibble);
                    if self.first_leaf(&child_path, &child_path)?.is_some() {
                        left += 1;
                    } else {
                        *child = Child::Absent;
                    }
                }
            }
            left >= 2
        };
        for (nibble, child) in (0u8..16).zip(children) {
            let mut child_path = path;
            child_path.push_unchecked(nibble);
            let stored_below = node.tree_mask.is_bit_set(nibble);
            let targets = &targets[below[usize::from(nibble)].clone()];
            match child {
                Child::Absent if stored_below => self.out.emptied.push(child_path),
                Child::Absent => {}
                Child::Changed => self.subtree(child_path, stored_below, targets)?,
                // The branch collapses into its one child: walk into it so
                // the builder can merge it with what is above.
                Child::Unchanged if !survives => self.subtree(child_path, stored_below, targets)?,
                Child::Unchanged if node.hash_mask.is_bit_set(nibble) => {
                    self.out.inputs.push(TrieInput::Subtree(
                        child_path,
                        node.hash_for_nibble(nibble),
                        stored_below,
                    ));
                }
                // A branch short enough to be inlined has no stored hash.
                Child::Unchanged if stored_below => self.subtree(child_path, true, targets)?,
                Child::Unchanged => self.leaves(&child_path, &child_path, None)?,
            }
        }
        Ok(())
    }
}

/// Writes a build's node changes for `trie`.
pub(crate) fn write_update(
    tx: &RwTxSync,
    tables: &Tables,
    trie: TrieId,
    update: &TrieUpdate,
    buf: &mut Vec<u8>,
) -> StorageResult<()> {
    let db = tables.get(trie.nodes_table());
    for path in &update.emptied {
        drain_prefix(
            tx,
            tables,
            trie.nodes_table(),
            &trie.node_key(path),
            |_, _| Ok(()),
        )?;
    }
    for path in &update.removed {
        match tx.del(db, trie.node_key(path), None) {
            Ok(_) | Err(MdbxError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for (path, node) in &update.nodes {
        encode_node(node, buf);
        tx.put(db, trie.node_key(path), &buf[..], WriteFlags::empty())?;
    }
    Ok(())
}

/// Deletes every stored node of one storage trie (a wipe or destruction).
pub(crate) fn delete_storage_trie(
    tx: &RwTxSync,
    tables: &Tables,
    hashed_address: &B256,
) -> StorageResult<()> {
    drain_prefix(
        tx,
        tables,
        Table::StoragesTrie,
        hashed_address.as_slice(),
        |_, _| Ok(()),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_of_key() {
        let key = [0xab, 0xcd, 0xef];
        assert!(key_has_prefix(&key, &Nibbles::new()));
        assert!(key_has_prefix(&key, &Nibbles::from_nibbles([0xa])));
        assert!(key_has_prefix(
            &key,
            &Nibbles::from_nibbles([0xa, 0xb, 0xc])
        ));
        assert!(!key_has_prefix(
            &key,
            &Nibbles::from_nibbles([0xa, 0xb, 0xd])
        ));
        assert!(!key_has_prefix(&key, &Nibbles::from_nibbles([0xb])));
        assert_eq!(
            lowest_key(&Nibbles::from_nibbles([0xa, 0xb, 0xc]))[..3],
            [0xab, 0xc0, 0]
        );
    }

    fn leaves(count: usize, seed: u64) -> Vec<TrieInput> {
        let mut keys: Vec<B256> = (0..count as u64)
            .map(|i| keccak256([seed.to_be_bytes(), i.to_be_bytes()].concat()))
            .collect();
        keys.sort_unstable();
        keys.iter()
            .map(|k| TrieInput::Leaf(Nibbles::unpack(k), alloy_rlp::encode(k.as_slice())))
            .collect()
    }

    fn walk_of(inputs: Vec<TrieInput>) -> TrieWalk {
        TrieWalk {
            inputs,
            ..TrieWalk::default()
        }
    }

    /// Every hash a build stores is the hash of the node in that slot: the
    /// root of the slot's leaves with the slot's path cut off.
    #[test]
    fn every_stored_hash_is_the_slots_node_hash() {
        for (count, seed) in [(5, 11), (40, 12), (700, 13), (5000, 14)] {
            let walk = walk_of(leaves(count, seed));
            for update in [walk.build_whole(), walk.build_split().unwrap()] {
                let mut checked = 0;
                for (path, node) in &update.nodes {
                    for nibble in (0..16).filter(|n| node.hash_mask.is_bit_set(*n)) {
                        let mut slot = *path;
                        slot.push(nibble);
                        let mut hb = HashBuilder::default();
                        for input in walk.inputs.iter().filter(|i| i.key().starts_with(&slot)) {
                            if let TrieInput::Leaf(key, value) = input {
                                hb.add_leaf(key.slice(slot.len()..), value);
                            }
                        }
                        assert_eq!(node.hash_for_nibble(nibble), hb.root(), "{count}: {slot:?}");
                        checked += 1;
                    }
                    // Every branch child's hash is known, none left to a walk.
                    assert_eq!(node.hash_mask, node.state_mask, "{count}: {path:?}");
                }
                assert!(checked > 0);
            }
        }
    }

    /// The two-thread build gives the whole build's root and nodes, for
    /// leaves alone and for stored subtrees in the root's slots.
    #[test]
    fn split_build_equals_whole_build() {
        for (count, seed) in [(2, 1), (3, 2), (17, 3), (100, 4), (600, 5), (3000, 6)] {
            let walk = walk_of(leaves(count, seed));
            let whole = walk.build_whole();
            let split = walk.build_split().expect("leaves under several nibbles");
            assert_eq!(split.root, whole.root, "{count} leaves");
            // Same nodes and masks. alloy-trie's builder leaves the hash bit
            // out for a few branch children (about 4%, the walk then reads
            // them); a child build records every hash, so the split may
            // hold more hashes, never different ones.
            assert_eq!(split.nodes.len(), whole.nodes.len(), "{count} leaves");
            for ((path, s), (whole_path, w)) in split.nodes.iter().zip(&whole.nodes) {
                assert_eq!(path, whole_path);
                assert_eq!((s.state_mask, s.tree_mask), (w.state_mask, w.tree_mask));
                assert!(w.hash_mask.is_subset_of(s.hash_mask), "{path:?}");
                for nibble in (0..16).filter(|n| w.hash_mask.is_bit_set(*n)) {
                    assert_eq!(s.hash_for_nibble(nibble), w.hash_for_nibble(nibble));
                }
            }

            // Half the slots as the hashes the whole build stored for them.
            let root = &whole.nodes.iter().find(|(p, _)| p.is_empty()).unwrap().1;
            let mut inputs = Vec::new();
            for input in walk.inputs.iter() {
                let nibble = input.key().first().unwrap();
                if nibble < 8 || !root.hash_mask.is_bit_set(nibble) {
                    inputs.push(input.clone());
                } else if !inputs
                    .iter()
                    .any(|i: &TrieInput| i.key() == &Nibbles::from_nibbles([nibble]))
                {
                    inputs.push(TrieInput::Subtree(
                        Nibbles::from_nibbles([nibble]),
                        root.hash_for_nibble(nibble),
                        root.tree_mask.is_bit_set(nibble),
                    ));
                }
            }
            let mixed = walk_of(inputs);
            assert_eq!(
                mixed.build_split().unwrap().root,
                whole.root,
                "{count} mixed"
            );
            assert_eq!(mixed.build_whole().root, whole.root, "{count} mixed whole");
        }
        // One slot only: the root is not a branch, no split.
        let one = walk_of(vec![TrieInput::Leaf(Nibbles::unpack(B256::ZERO), vec![1])]);
        assert!(one.build_split().is_none());
    }

    #[test]
    fn node_round_trip_and_corruption() {
        let node = BranchNodeCompact::new(
            TrieMask::new(0b1011),
            TrieMask::new(0b0010),
            TrieMask::new(0b1010),
            vec![B256::repeat_byte(1), B256::repeat_byte(2)],
            None,
        );
        let mut buf = Vec::new();
        encode_node(&node, &mut buf);
        assert_eq!(decode_node(Table::AccountsTrie, b"k", &buf).unwrap(), node);
        assert!(decode_node(Table::AccountsTrie, b"k", &buf[..buf.len() - 1]).is_err());
        // A hash mask naming three children with two hashes stored.
        buf[5] |= 0b0001;
        assert!(decode_node(Table::AccountsTrie, b"k", &buf).is_err());
    }
}
