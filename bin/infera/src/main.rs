//! The `infera` command line: parses arguments and hands off to the crates.

mod chain_client;
mod cli;
mod db;
mod import;
mod model;
mod model_chain;

use clap::Parser;

fn main() -> eyre::Result<()> {
    cli::Cli::parse().run()
}
