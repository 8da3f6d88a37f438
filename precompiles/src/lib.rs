//! The AI precompiles: a model registry that stores models in state, and an
//! inference precompile that runs them with the deterministic engine
//! (`infera-kernels`).
//!
//! [`abi`] is the one definition of their Solidity interface (addresses,
//! functions, events, custom errors). The node, the RPC `infera_` namespace,
//! the CLI and `precompiles/solidity/` all follow it.

pub mod abi;
