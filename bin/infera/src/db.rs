//! `infera db ...`: operator tools over a datadir's database. The work is in
//! `infera-storage` (`Database::stats`, `Reader::verify_state`); this file
//! opens the database read-only and prints.

use std::path::{Path, PathBuf};

use eyre::WrapErr;
use infera_storage::{DATA_FILE_NAME, Database, DbStats, VerifyReport};

/// Name of the database directory inside a node's datadir.
const DB_DIR: &str = "db";

/// Subcommands of `infera db`. Both open the database read-only: they work on
/// a stopped node's datadir, and also beside a running node (as one more
/// MDBX reader, seeing the last committed block).
#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Print every table's entries, size, pages (branch/leaf/overflow) and
    /// B-tree depth, then totals, the data file's size, the page size and the
    /// head block.
    Stats(DbArgs),
    /// Recompute the state root from scratch from the plain state (accounts,
    /// storage, code) and compare it with the head header's state root. Exits
    /// non-zero on a mismatch or any other inconsistency. Takes time and
    /// memory in proportion to the state (52 bytes an account).
    Verify(DbArgs),
}

/// Where the database is.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The node's data directory (the one passed to `infera node --datadir`).
    #[arg(long)]
    datadir: PathBuf,
}

impl DbCommand {
    /// Execute the subcommand, printing its result to stdout.
    pub fn run(self) -> eyre::Result<()> {
        match self {
            DbCommand::Stats(args) => {
                let db = open(&args.datadir)?;
                let stats = db.stats().wrap_err("reading the table statistics")?;
                print!("{}", format_stats(&stats));
                Ok(())
            }
            DbCommand::Verify(args) => {
                let db = open(&args.datadir)?;
                let report = db
                    .reader()
                    .and_then(|r| r.verify_state())
                    .wrap_err("verifying the state")?;
                print!("{}", format_report(&report));
                if !report.root_matches() {
                    eyre::bail!(
                        "state root mismatch: the plain state gives {}, but the header of the \
                         head block {} says {}",
                        report.computed_state_root,
                        report.head_number,
                        report.header_state_root
                    );
                }
                if !report.is_ok() {
                    eyre::bail!(
                        "the state root matches, but the database has {} inconsistencies \
                         (listed above)",
                        report.problem_count
                    );
                }
                Ok(())
            }
        }
    }
}

fn open(datadir: &Path) -> eyre::Result<Database> {
    let dir = datadir.join(DB_DIR);
    if !dir.join(DATA_FILE_NAME).is_file() {
        eyre::bail!(
            "no database in {}: expected {}; pass the directory given to `infera node --datadir`",
            datadir.display(),
            dir.join(DATA_FILE_NAME).display()
        );
    }
    Database::open_read_only(&dir)
        .wrap_err_with(|| format!("opening the database in {} read-only", dir.display()))
}

fn format_stats(stats: &DbStats) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let line =
        |out: &mut String, name: &str, entries: u64, size: u64, pages: [u64; 3], depth: &str| {
            let _ = writeln!(
                out,
                "{name:<18} {entries:>12} {size:>16} {:>10} {:>12} {:>10} {depth:>6}",
                pages[0], pages[1], pages[2]
            );
        };
    let _ = writeln!(
        out,
        "{:<18} {:>12} {:>16} {:>10} {:>12} {:>10} {:>6}",
        "table", "entries", "size (bytes)", "branch", "leaf", "overflow", "depth"
    );
    for t in &stats.tables {
        line(
            &mut out,
            t.table.name(),
            t.entries,
            t.size_bytes(stats.page_size),
            [t.branch_pages, t.leaf_pages, t.overflow_pages],
            &t.depth.to_string(),
        );
    }
    let sum = |f: fn(&infera_storage::TableStats) -> u64| stats.tables.iter().map(f).sum::<u64>();
    line(
        &mut out,
        "total",
        stats.total_entries(),
        stats.total_size_bytes(),
        [
            sum(|t| t.branch_pages),
            sum(|t| t.leaf_pages),
            sum(|t| t.overflow_pages),
        ],
        "",
    );
    let _ = writeln!(out, "file size: {} bytes", stats.file_size_bytes);
    let _ = writeln!(out, "page size: {} bytes", stats.page_size);
    match stats.head_number {
        Some(n) => {
            let _ = writeln!(out, "head block: {n}");
        }
        None => {
            let _ = writeln!(out, "head block: none (no genesis written)");
        }
    }
    out
}

fn format_report(report: &VerifyReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "head block:    {} ({})",
        report.head_number, report.head_hash
    );
    let _ = writeln!(out, "header root:   {}", report.header_state_root);
    let _ = writeln!(out, "computed root: {}", report.computed_state_root);
    let _ = writeln!(out, "accounts:      {}", report.accounts);
    let _ = writeln!(out, "storage slots: {}", report.slots);
    let _ = writeln!(out, "code entries:  {}", report.code_entries);
    for problem in &report.problems {
        let _ = writeln!(out, "problem: {problem}");
    }
    let unlisted = report.problem_count - report.problems.len() as u64;
    if unlisted > 0 {
        let _ = writeln!(out, "... and {unlisted} more problems");
    }
    let verdict = if report.is_ok() {
        "state root matches"
    } else if report.root_matches() {
        "state root matches, but the database is inconsistent"
    } else {
        "STATE ROOT MISMATCH"
    };
    let _ = writeln!(out, "{verdict}");
    out
}
