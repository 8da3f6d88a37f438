//! The `infera` command line: parses arguments and hands off to the crates.

mod cli;
mod model;

use clap::Parser;

fn main() -> eyre::Result<()> {
    cli::Cli::parse().run()
}
