//! The AI precompiles: a model registry that stores models in state, and an
//! inference precompile that runs them with the deterministic engine
//! (`infera-kernels`).
//!
//! - [`abi`] is the one definition of their Solidity interface (addresses,
//!   functions, events, custom errors). The node, the RPC `infera_` namespace,
//!   the CLI and `precompiles/solidity/` all follow it.
//! - [`InferaPrecompiles`] is the revm precompile provider the node runs
//!   everywhere it executes (blocks, `eth_call`, `eth_estimateGas`): revm's
//!   Ethereum precompiles plus the two AI precompiles, with a shared
//!   [`ModelCache`] of decoded models.
//! - [`layout`] says where models and registry metadata live in state;
//!   [`gas`] is the gas schedule and its calibration.
//! - [`describe_revert`] turns revert data of the precompiles into text.
//!
//! - [`offload`] runs inferences on an accelerator (the node's GPU) where it
//!   is faster, always returning the CPU reference's bytes.
//!
//! Determinism: results and gas use no floating point, clock, environment,
//! thread count or randomness; the cache never changes a result or the gas,
//! and neither does the offload (its clock only decides where a model runs).

pub mod abi;
pub mod cache;
pub mod gas;
mod host;
mod inference;
pub mod layout;
pub mod offload;
mod provider;
mod registry;
mod revert;

pub use cache::ModelCache;
pub use inference::argmax;
pub use offload::{Accelerator, Offload, Placement};
pub use provider::{AI_PRECOMPILES, InferaPrecompiles};
pub use revert::describe_revert;
