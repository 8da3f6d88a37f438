//! Integration tests of the node's chain handling, in process.

mod accelerator;
mod fork_choice;
mod harness;
mod headers;
mod penalties;
