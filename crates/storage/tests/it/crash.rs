//! Crash safety: a child process (this test binary, re-invoked) commits
//! blocks in a loop and is killed with SIGKILL; the database must then hold
//! whole blocks only, with the head block's state complete and consistent.

use crate::{
    blocks::{sample_block, sample_receipts, sample_txs},
    eoa,
};
use alloy_primitives::{Address, B256, U256};
use infera_primitives::{AccountChange, StateChanges, StateReader};
use infera_storage::Database;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Env var naming the database directory: set, the child test runs its loop.
const CHILD_ENV: &str = "INFERA_STORAGE_CRASH_CHILD_DIR";
/// How long a child may run at most if nobody kills it.
const CHILD_MAX_RUNTIME: Duration = Duration::from_secs(120);
/// Kill rounds.
const ROUNDS: u64 = 6;

const COUNTER: Address = Address::repeat_byte(0xc0);
const CONTRACT: Address = Address::repeat_byte(0xcc);
const HEAD_SLOT: u64 = 1000;

/// The state changes of block `n` (a pure function of `n`).
fn changes_for(n: u64) -> StateChanges {
    let mut changes = StateChanges::default();
    changes.accounts.insert(
        COUNTER,
        AccountChange {
            info: Some(eoa(n, n)),
            ..Default::default()
        },
    );
    changes.accounts.insert(
        Address::with_last_byte((n % 16) as u8 + 1),
        AccountChange {
            info: Some(eoa(0, n * 1000 + 1)),
            ..Default::default()
        },
    );
    let storage = [
        (U256::from(n % 20), U256::from(n + 1)),
        (U256::from(HEAD_SLOT), U256::from(n)),
    ]
    .into_iter()
    .collect();
    changes.accounts.insert(
        CONTRACT,
        AccountChange {
            info: Some(eoa(1, 0)),
            storage_wiped: n % 10 == 9,
            storage,
        },
    );
    changes
}

fn commit_block(db: &Database, n: u64) {
    let mut w = db.writer().unwrap();
    w.apply_state(n, &changes_for(n)).unwrap();
    let root = w.state_root().unwrap();
    let parent = if n == 0 {
        B256::ZERO
    } else {
        w.canonical_hash(n - 1).unwrap().unwrap()
    };
    let block = sample_block(n, parent, root, sample_txs(n * 3));
    w.insert_block(&block, &sample_receipts(3)).unwrap();
    w.commit().unwrap();
}

/// The child side: does nothing unless [`CHILD_ENV`] is set.
#[test]
fn crash_child_process() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let db = Database::open(Path::new(&dir)).unwrap();
    let mut n = db
        .reader()
        .unwrap()
        .head_number()
        .unwrap()
        .map_or(0, |h| h + 1);
    let start = Instant::now();
    while start.elapsed() < CHILD_MAX_RUNTIME {
        commit_block(&db, n);
        println!("committed {n}");
        n += 1;
    }
}

fn verify(dir: &Path, last_reported: u64) -> u64 {
    let db = Database::open(dir).unwrap();
    let r = db.reader().unwrap();
    let head = r.head_number().unwrap().expect("a head block");
    assert!(
        head >= last_reported,
        "head {head} lost a reported commit {last_reported}"
    );

    // Whole chain present and linked.
    let mut parent = B256::ZERO;
    for n in 0..=head {
        let block = r
            .block(n)
            .unwrap()
            .unwrap_or_else(|| panic!("block {n} missing"));
        assert_eq!(block.header.parent_hash, parent, "block {n} parent");
        assert_eq!(r.receipts(n).unwrap().map(|x| x.len()), Some(3));
        let loc = r
            .transaction_location(block.transactions[2].hash)
            .unwrap()
            .unwrap();
        assert_eq!(loc.block_number, n);
        parent = block.hash;
    }

    // Head state complete: matches the header root and the deterministic changes.
    let header = r.header(head).unwrap().unwrap();
    let mut w = db.writer().unwrap();
    assert_eq!(
        w.state_root().unwrap(),
        header.state_root,
        "state root of head {head}"
    );
    drop(w);
    let latest = r.latest_state();
    assert_eq!(latest.account(COUNTER).unwrap(), Some(eoa(head, head)));
    assert_eq!(
        latest.storage(CONTRACT, U256::from(HEAD_SLOT)).unwrap(),
        U256::from(head)
    );
    assert_eq!(
        latest.storage(CONTRACT, U256::from(head % 20)).unwrap(),
        U256::from(head + 1)
    );
    if head > 0 {
        let before = r.state_at(head - 1);
        assert_eq!(
            before.account(COUNTER).unwrap(),
            Some(eoa(head - 1, head - 1))
        );
        assert_eq!(
            before.storage(CONTRACT, U256::from(HEAD_SLOT)).unwrap(),
            U256::from(head - 1)
        );
    }
    head
}

#[test]
fn killed_writer_leaves_whole_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last_head = None;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash::crash_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let wanted = 5 + round * 7;
        let mut seen = 0;
        let mut last_reported = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                last_reported = Some(n.trim().parse::<u64>().unwrap());
                seen += 1;
                if seen >= wanted {
                    break;
                }
            }
        }
        // Vary the moment of the kill within the next commit.
        std::thread::sleep(Duration::from_micros(round * 700));
        child.kill().expect("SIGKILL child"); // SIGKILL on Unix
        child.wait().unwrap();
        let last_reported = last_reported.expect("child committed nothing");
        let head = verify(dir.path(), last_reported);
        if let Some(prev) = last_head {
            assert!(head > prev, "no progress across rounds");
        }
        last_head = Some(head);
    }
}
