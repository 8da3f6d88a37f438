//! Writing the genesis block into an empty datadir, and checking that a
//! datadir belongs to the chain the operator asked for.

use infera_chainspec::ChainSpec;
use infera_primitives::{B256, SealedBlock};
use infera_storage::Database;

use crate::{NodeError, NodeResult};

/// What [`init_genesis`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenesisOutcome {
    /// The datadir was empty; the genesis block was written.
    Written(B256),
    /// The datadir already holds this chain.
    AlreadyPresent(B256),
}

/// Writes the genesis block of `chain` into `db` if it holds no chain yet, and
/// refuses a datadir that holds another chain.
pub fn init_genesis(db: &Database, chain: &ChainSpec) -> NodeResult<GenesisOutcome> {
    let expected_root = chain.genesis_state_root();
    let header = chain.genesis_header(expected_root);
    let genesis = SealedBlock::new(header, Vec::new());

    let reader = db.reader()?;
    if let Some(stored) = reader.genesis_hash()? {
        if stored != genesis.hash {
            return Err(NodeError::WrongChain {
                stored,
                expected: genesis.hash,
            });
        }
        return Ok(GenesisOutcome::AlreadyPresent(stored));
    }
    drop(reader);

    let mut writer = db.writer()?;
    writer.apply_state(0, &chain.genesis_state())?;
    let root = writer.state_root()?;
    // Two independent computations of the same root: the in-memory trie over
    // the genesis file and storage's trie over its tables.
    if root != expected_root {
        return Err(NodeError::Invariant(format!(
            "genesis state root from storage {root} differs from the in-memory root {expected_root}"
        )));
    }
    writer.insert_block(&genesis, &[])?;
    writer.set_genesis_hash(genesis.hash)?;
    writer.set_chain_id(chain.chain_id())?;
    writer.commit()?;
    Ok(GenesisOutcome::Written(genesis.hash))
}
