//! Integration tests of the AI precompiles on a dev chain: real storage, the
//! node's block builder, `eth_call` through `infera-evm`.

mod common;
mod inference;
mod registry;
