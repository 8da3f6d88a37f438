//! Integration tests of `infera-evm` against an in-memory state.

mod common;
mod executor;
mod limits;
mod rpc;
mod trace;
