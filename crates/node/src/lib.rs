//! The node: opens storage, writes genesis, seals blocks in dev mode, serves
//! JSON-RPC, and shuts down cleanly.
//!
//! Crash safety does not depend on a clean shutdown: every block is committed
//! in one MDBX write transaction ([`builder::build_and_commit`]), so a
//! `kill -9` at any moment leaves the last committed block and its state.

pub mod builder;
pub mod chain;
mod clique_inputs;
pub mod clique_sealer;
mod config;
mod error;
pub mod genesis;
pub mod import;
pub mod inference_device;
mod metrics;
mod net_admin;
mod run;
mod sealer;
pub mod sync;

pub use config::{
    DEFAULT_MAX_PEERS, KNOWN_PEERS_FILE, NODE_KEY_FILE, NodeConfig, P2P_ADDRESSES_FILE, P2pConfig,
};
pub use error::{NodeError, NodeResult};
pub use genesis::{GenesisOutcome, init_genesis};
pub use import::{
    ChainImport, ChainImportError, ImportConfig, ImportError, decode_block, decode_blocks,
    import_block, import_block_with, import_chain,
};
pub use inference_device::InferenceDevice;
pub use run::{CHAIN_EVENT_CAPACITY, open_datadir, run_dev_node, run_network_node};
