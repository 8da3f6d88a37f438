//! Ethereum conformance for infera.
//!
//! - [`state`]: ethereum/tests `GeneralStateTests` through the node's
//!   `BlockExecutor` over an in-memory state ([`memory`]).
//! - [`blockchain`]: `BlockchainTests` through the node's block import
//!   (`infera_node::import`) into real storage in a temporary datadir.
//! - [`rpc`]: execution-apis `.io` tests against the node's RPC server over
//!   the imported `chain.rlp`.
//!
//! [`run_path`] walks a directory, picks the runner by the fixture's shape,
//! and returns one [`Outcome`] per expected result; [`Report`] applies the
//! exclusions (`exclusions.txt`) and counts.

pub mod blockchain;
pub mod memory;
pub mod rpc;
pub mod state;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

/// The exclusions shipped with this crate: one test name per line followed
/// by `#` and the reason.
pub const EXCLUSIONS: &str = include_str!("../exclusions.txt");

/// Least share of the execution-apis JSON-RPC tests (percent) that must
/// pass; set at what passes now so that a regression fails the build.
pub const RPC_PASS_THRESHOLD_PERCENT: f64 = 92.0;

/// The result of one expected result of a fixture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The fixture file.
    pub file: String,
    /// Test name, with fork and indexes for state tests: `name[Cancun:d0,g1,v0]`.
    pub id: String,
    /// `Ok` when it passed, `Err(reason)` when it failed.
    pub result: Result<(), String>,
    /// Not run, with the reason (e.g. a fork revm does not model).
    pub skipped: Option<String>,
}

impl Outcome {
    pub fn new(file: impl Into<String>, id: impl Into<String>, result: Result<(), String>) -> Self {
        Self {
            file: file.into(),
            id: id.into(),
            result,
            skipped: None,
        }
    }

    pub fn failed(
        file: impl Into<String>,
        id: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(file, id, Err(reason.into()))
    }

    pub fn skipped(
        file: impl Into<String>,
        id: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            skipped: Some(reason.into()),
            ..Self::new(file, id, Ok(()))
        }
    }

    /// The test name without the fork/indexes suffix.
    pub fn name(&self) -> &str {
        self.id.split('[').next().unwrap_or(&self.id)
    }

    /// The fork of a state-test result (`Cancun` in `name[Cancun:d0,g0,v0]`).
    pub fn fork(&self) -> Option<&str> {
        let (_, rest) = self.id.rsplit_once('[')?;
        let (fork, indexes) = rest.split_once(':')?;
        (indexes.starts_with('d') && indexes.ends_with(']')).then_some(fork)
    }
}

/// Parsed exclusions: test name (or full id) -> reason.
#[derive(Clone, Debug, Default)]
pub struct Exclusions(BTreeMap<String, String>);

impl Exclusions {
    /// Parses `name  # reason` lines; blank lines and lines starting with `#`
    /// are ignored. A name without a reason is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, reason) = line
                .split_once('#')
                .ok_or_else(|| format!("exclusions line {}: `{line}` has no `# reason`", n + 1))?;
            let (name, reason) = (name.trim(), reason.trim());
            if name.is_empty() || reason.is_empty() {
                return Err(format!(
                    "exclusions line {}: needs a name and a reason",
                    n + 1
                ));
            }
            map.insert(name.to_string(), reason.to_string());
        }
        Ok(Self(map))
    }

    /// The reason the results of `fork` are not run, if a `fork:<name>` line
    /// gives one.
    pub fn fork(&self, fork: &str) -> Option<&str> {
        self.0.get(&format!("fork:{fork}")).map(String::as_str)
    }

    /// The reason `outcome` is excluded, if it is (by full id or by name).
    pub fn reason(&self, outcome: &Outcome) -> Option<&str> {
        self.0
            .get(&outcome.id)
            .or_else(|| self.0.get(outcome.name()))
            .map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Counts of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub passed: usize,
    /// Failures not covered by an exclusion.
    pub failed: Vec<Outcome>,
    /// Failures covered by an exclusion.
    pub excluded_failed: usize,
    /// Excluded results that passed anyway (the exclusion can go).
    pub excluded_passed: Vec<Outcome>,
    pub skipped: usize,
}

impl Report {
    pub fn new(outcomes: &[Outcome], exclusions: &Exclusions) -> Self {
        let mut report = Self::default();
        for outcome in outcomes {
            if let Some(skip) = &outcome.skipped {
                // A result of a fork the runner cannot run counts as a
                // failure unless the exclusions file says why it is not run.
                match outcome.fork() {
                    Some(fork) if exclusions.fork(fork).is_none() => {
                        report.failed.push(Outcome {
                            result: Err(format!(
                                "{skip}, and exclusions.txt has no `fork:{fork} # reason` line"
                            )),
                            skipped: None,
                            ..outcome.clone()
                        });
                    }
                    _ => report.skipped += 1,
                }
                continue;
            }
            let excluded = exclusions.reason(outcome).is_some();
            match (&outcome.result, excluded) {
                (Ok(()), false) => report.passed += 1,
                (Ok(()), true) => {
                    report.passed += 1;
                    report.excluded_passed.push(outcome.clone());
                }
                (Err(_), true) => report.excluded_failed += 1,
                (Err(_), false) => report.failed.push(outcome.clone()),
            }
        }
        report
    }

    /// `N passed, M failed` (+ excluded and skipped counts).
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed ({} excluded failures, {} skipped)",
            self.passed,
            self.failed.len(),
            self.excluded_failed,
            self.skipped
        )
    }
}

/// Which runner a fixture file needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    State,
    Blockchain,
}

/// Every `.json` file under `path` (or `path` itself), sorted.
pub fn fixture_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if p.extension().is_some_and(|e| e == "json") {
            files.push(p);
        }
    }
    files.sort();
    files
}

/// The kind of a fixture file, from its directory name, else its contents.
pub fn kind_of(path: &Path) -> Option<Kind> {
    let s = path.to_string_lossy();
    if s.contains("BlockchainTests") || s.contains("blockchain_test") {
        return Some(Kind::Blockchain);
    }
    if s.contains("GeneralStateTests") || s.contains("state_test") {
        return Some(Kind::State);
    }
    let text = std::fs::read_to_string(path).ok()?;
    if text.contains("\"genesisBlockHeader\"") {
        Some(Kind::Blockchain)
    } else if text.contains("\"transaction\"") && text.contains("\"post\"") {
        Some(Kind::State)
    } else {
        None
    }
}

/// Fixture files that take longer are named on stderr, to keep the run fast.
pub const SLOW_FILE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs every fixture file under `path` on `threads` threads.
pub fn run_path(path: &Path, threads: usize) -> Vec<Outcome> {
    let files = fixture_files(path);
    let next = Mutex::new(files.iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let Some(file) = next.lock().expect("not poisoned").next() else {
                        break;
                    };
                    let started = std::time::Instant::now();
                    let outcomes = run_file(file);
                    let took = started.elapsed();
                    if took >= SLOW_FILE {
                        eprintln!("slow: {} took {:.1}s", file.display(), took.as_secs_f64());
                    }
                    results.lock().expect("not poisoned").extend(outcomes);
                }
            });
        }
    });
    let mut outcomes = results.into_inner().expect("not poisoned");
    outcomes.sort_by(|a, b| (&a.file, &a.id).cmp(&(&b.file, &b.id)));
    outcomes
}

/// Runs one fixture file with the runner its shape asks for. A panic in a
/// runner is caught and reported as that file's failure.
pub fn run_file(path: &Path) -> Vec<Outcome> {
    let file = path.display().to_string();
    let run = || match kind_of(path) {
        Some(Kind::State) => state::run_file(path),
        Some(Kind::Blockchain) => blockchain::run_file(path),
        None => vec![Outcome::skipped(
            &file,
            "-",
            "not a state or blockchain fixture",
        )],
    };
    std::panic::catch_unwind(run)
        .unwrap_or_else(|_| vec![Outcome::failed(&file, "-", "runner panicked")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_exclusions_parse_and_bad_lines_are_refused() {
        Exclusions::parse(EXCLUSIONS).unwrap();
        assert!(
            Exclusions::parse("someTest\n")
                .unwrap_err()
                .contains("no `# reason`")
        );
        assert!(Exclusions::parse("someTest #  \n").is_err());
        let ex =
            Exclusions::parse("# comment\nfoo # slow\nbar[Cancun:d0,g0,v0] # one index\n").unwrap();
        assert_eq!(ex.len(), 2);
        let foo = Outcome::failed("f", "foo[Cancun:d1,g0,v0]", "x");
        assert_eq!(ex.reason(&foo), Some("slow"));
        let bar = Outcome::failed("f", "bar[Cancun:d1,g0,v0]", "x");
        assert_eq!(ex.reason(&bar), None);
        let report = Report::new(&[foo, bar, Outcome::new("f", "baz", Ok(()))], &ex);
        assert_eq!(report.passed, 1);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.excluded_failed, 1);
        assert!(report.summary().starts_with("1 passed, 1 failed"));
    }

    #[test]
    fn a_skipped_fork_must_be_listed_in_the_exclusions() {
        let skipped = Outcome::skipped("f", "foo[Constantinople:d0,g0,v0]", "fork not modelled");
        assert_eq!(skipped.fork(), Some("Constantinople"));
        assert_eq!(Outcome::new("f", "foo", Ok(())).fork(), None);
        let unlisted = Report::new(std::slice::from_ref(&skipped), &Exclusions::default());
        assert_eq!(unlisted.failed.len(), 1);
        let reason = unlisted.failed[0].result.clone().unwrap_err();
        assert!(reason.contains("fork:Constantinople"), "{reason}");
        let listed = Exclusions::parse("fork:Constantinople # withdrawn\n").unwrap();
        assert_eq!(listed.fork("Constantinople"), Some("withdrawn"));
        let report = Report::new(&[skipped], &listed);
        assert_eq!((report.skipped, report.failed.len()), (1, 0));
        // The shipped file lists every fork the state runner cannot run.
        let shipped = Exclusions::parse(EXCLUSIONS).unwrap();
        assert!(shipped.fork("Constantinople").is_some());
    }
}
