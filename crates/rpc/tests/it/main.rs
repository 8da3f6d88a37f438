//! Integration tests of `infera-rpc` on a real database and server.

mod apis;
mod heavy;
