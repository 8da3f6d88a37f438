//! `infera import`: imports an RLP-encoded chain (`chain.rlp`, blocks one
//! after another) with full validation and execution, through the same
//! import function peers' blocks will take.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Args;
use eyre::WrapErr;
use infera_node::{ImportConfig, decode_blocks, import_chain};
use tracing::info;

use crate::cli::{default_datadir, load_chain};

/// How often progress is logged during a long import.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The chain file: RLP-encoded blocks, one after another (geth's `export` format).
    #[arg(value_name = "CHAIN_RLP")]
    file: PathBuf,

    /// Genesis file (geth format) of the chain the blocks belong to.
    #[arg(long, value_name = "FILE")]
    chain: PathBuf,

    /// Data directory. Default: <user data dir>/infera/chain-CHAINID.
    #[arg(long, value_name = "DIR")]
    datadir: Option<PathBuf>,

    /// Accept proof-of-work blocks (before the merge) without verifying
    /// their seal or difficulty.
    #[arg(long)]
    allow_pre_merge: bool,
}

/// Runs `infera import`.
pub fn run(args: ImportArgs) -> eyre::Result<()> {
    let chain = load_chain(&args.chain)?;
    let bytes =
        std::fs::read(&args.file).wrap_err_with(|| format!("reading {}", args.file.display()))?;
    let blocks = decode_blocks(&bytes).map_err(|e| eyre::eyre!("{}: {e}", args.file.display()))?;
    let datadir = match args.datadir {
        Some(dir) => dir,
        None => default_datadir(&format!("chain-{}", chain.chain_id()))?,
    };
    let db = infera_node::open_datadir(&datadir, &chain)?;
    info!(target: "infera::import", file = %args.file.display(), blocks = blocks.len(), datadir = %datadir.display(), "importing");

    let start = Instant::now();
    let mut last_log = Instant::now();
    let config = ImportConfig {
        allow_pre_merge: args.allow_pre_merge,
    };
    let result = import_chain(&db, &chain, &blocks, config, |committed| {
        if last_log.elapsed() >= PROGRESS_INTERVAL {
            last_log = Instant::now();
            info!(target: "infera::import", number = committed.block.number(), hash = %committed.block.hash, "imported");
        }
    });
    let head = db.reader()?.head_number()?.unwrap_or_default();
    match result {
        Ok(done) => {
            println!(
                "imported {} blocks ({} already present) in {:.1}s; head is block {head}",
                done.imported,
                done.already_present,
                start.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(err) => Err(eyre::eyre!(
            "import stopped: {}; the {} blocks before it are kept, head is block {head}",
            err.error,
            err.progress.imported + err.progress.already_present
        )),
    }
}
