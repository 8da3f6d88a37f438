//! Integration tests of the node's chain handling, in process.

mod fork_choice;
