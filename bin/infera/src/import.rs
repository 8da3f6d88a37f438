//! `infera import`: imports an RLP-encoded chain (`chain.rlp`, blocks one
//! after another) with full validation and execution, through the same
//! import function peers' blocks will take.

use std::{
    io::IsTerminal,
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Args;
use eyre::WrapErr;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infera_node::builder::CommittedBlock;
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
    let config = ImportConfig {
        allow_pre_merge: args.allow_pre_merge,
    };
    let first = blocks.first().map_or(0, |b| b.header.number);
    let mut progress = ImportProgress::new(first, blocks.len() as u64, start);
    let result = import_chain(&db, &chain, &blocks, config, |committed| {
        progress.block(committed)
    });
    progress.finish();
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

/// Progress of an import on stderr: a bar (blocks, Mgas/s, ETA) on a
/// terminal; a plain log line every [`PROGRESS_INTERVAL`] otherwise, so that
/// logs stay readable.
struct ImportProgress {
    bar: Option<ProgressBar>,
    first: u64,
    total: u64,
    started: Instant,
    last_log: Instant,
    imported: u64,
    gas: u64,
}

impl ImportProgress {
    fn new(first: u64, total: u64, started: Instant) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "[{elapsed_precise}] [{wide_bar}] {pos}/{len} blocks, {per_sec} {msg} (eta {eta})",
                )
                .expect("static progress template")
                .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            first,
            total,
            started,
            last_log: started,
            imported: 0,
            gas: 0,
        }
    }

    fn block(&mut self, committed: &CommittedBlock) {
        let header = &committed.block.header;
        self.imported += 1;
        self.gas += header.gas_used;
        let done = header.number - self.first + 1;
        let now = Instant::now();
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-9);
        let mgas_per_s = self.gas as f64 / 1e6 / secs;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(format!("{mgas_per_s:.1} Mgas/s"));
            }
            None if now.duration_since(self.last_log) >= PROGRESS_INTERVAL => {
                self.last_log = now;
                let blocks_per_s = self.imported as f64 / secs;
                let eta_s = (self.total - done) as f64 / blocks_per_s.max(1e-9);
                info!(
                    target: "infera::import",
                    number = header.number,
                    hash = %committed.block.hash,
                    done,
                    total = self.total,
                    blocks_per_s = format!("{blocks_per_s:.1}"),
                    mgas_per_s = format!("{mgas_per_s:.2}"),
                    eta_s = format!("{eta_s:.0}"),
                    "imported"
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
