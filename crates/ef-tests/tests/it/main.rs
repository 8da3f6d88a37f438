//! Conformance over the shared fixtures (`../shared/fixtures` next to the
//! checkout): every state and blockchain test passes except the listed
//! exclusions, the JSON-RPC tests pass at least at the recorded rate, and
//! block import refuses bad blocks without touching what was imported.
//! Each test says so and passes when the fixtures are not there.

use std::path::{Path, PathBuf};

use alloy_rlp::Encodable;
use infera_chainspec::ChainSpec;
use infera_ef_tests::{EXCLUSIONS, Exclusions, RPC_PASS_THRESHOLD_PERCENT, Report, rpc, run_path};
use infera_node::{ImportConfig, ImportError, decode_blocks, import_chain};

fn fixtures() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: conformance fixtures not found at {} (see ../shared/fixtures/README.md)",
            dir.display()
        );
        None
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn ethereum_state_and_blockchain_tests_pass_except_exclusions() {
    let Some(dir) = fixtures() else { return };
    let outcomes = run_path(&dir.join("ethtests"), threads());
    let exclusions = Exclusions::parse(EXCLUSIONS).unwrap();
    let report = Report::new(&outcomes, &exclusions);
    for failure in &report.failed {
        eprintln!(
            "FAIL {} ({}): {:?}",
            failure.id, failure.file, failure.result
        );
    }
    eprintln!("ethereum/tests: {}", report.summary());
    assert!(report.failed.is_empty(), "{}", report.summary());
    // About 7,660 state results and 263 blockchain tests: a run that finds
    // far fewer did not read the fixtures.
    assert!(report.passed > 7_500, "only {} results ran", report.passed);
    assert!(
        report.excluded_passed.is_empty(),
        "excluded tests pass now; remove their exclusions: {:?}",
        report
            .excluded_passed
            .iter()
            .map(|o| &o.id)
            .collect::<Vec<_>>()
    );
}

#[test]
fn json_rpc_tests_pass_at_least_at_the_recorded_rate() {
    let Some(dir) = fixtures() else { return };
    let outcomes = rpc::run(&dir.join("execution-apis/tests")).unwrap();
    for (method, (passed, failed)) in rpc::per_method(&outcomes) {
        eprintln!("{method:45} {passed}/{}", passed + failed);
    }
    let summary = rpc::Summary::new(&outcomes);
    eprintln!("RPC: {}", summary.line());
    assert!(
        outcomes.len() > 200,
        "only {} .io tests found",
        outcomes.len()
    );
    assert!(
        summary.percent() >= RPC_PASS_THRESHOLD_PERCENT,
        "RPC conformance fell below {RPC_PASS_THRESHOLD_PERCENT}%: {}",
        summary.line()
    );
}

#[test]
fn import_refuses_bad_blocks_and_keeps_what_was_imported() {
    let Some(dir) = fixtures() else { return };
    let tests = dir.join("execution-apis/tests");
    let chain = ChainSpec::from_file(&tests.join("genesis.json")).unwrap();
    let blocks = decode_blocks(&std::fs::read(tests.join("chain.rlp")).unwrap()).unwrap();
    let datadir = tempfile::tempdir().unwrap();
    let db = infera_node::open_datadir(datadir.path(), &chain).unwrap();

    // Proof-of-work blocks need the flag.
    let err = import_chain(&db, &chain, &blocks[..1], ImportConfig::default(), |_| {}).unwrap_err();
    assert!(err.to_string().contains("--allow-pre-merge"), "{err}");
    assert_eq!(db.reader().unwrap().head_number().unwrap(), Some(0));

    let config = ImportConfig {
        allow_pre_merge: true,
    };
    let done = import_chain(&db, &chain, &blocks[..40], config, |_| {}).unwrap();
    assert_eq!(done.imported, 40);
    let root_before = db.reader().unwrap().header(40).unwrap().unwrap().state_root;

    // Each tampered copy of block 41 is refused with the rule it breaks.
    type Tamper = fn(&mut infera_node::import::Block);
    let cases: [(&str, Tamper); 4] = [
        ("gas used", |b| b.header.gas_used += 1),
        ("state root", |b| b.header.state_root = Default::default()),
        ("timestamp", |b| b.header.timestamp = 400),
        ("transactions root", |b| {
            b.body.transactions.pop();
        }),
    ];
    for (rule, tamper) in cases {
        let mut bad = blocks[40].clone();
        tamper(&mut bad);
        let err =
            import_chain(&db, &chain, std::slice::from_ref(&bad), config, |_| {}).unwrap_err();
        assert!(
            matches!(*err.error, ImportError::Invalid { number: 41, .. }),
            "{rule}: {err}"
        );
        assert!(err.to_string().contains(rule), "{rule}: {err}");
        let reader = db.reader().unwrap();
        assert_eq!(reader.head_number().unwrap(), Some(40), "{rule}");
        assert_eq!(reader.header(40).unwrap().unwrap().state_root, root_before);
    }

    // The untouched rest imports; repeating the import changes nothing.
    let done = import_chain(&db, &chain, &blocks, config, |_| {}).unwrap();
    assert_eq!((done.imported, done.already_present), (14, 40));
    let reader = db.reader().unwrap();
    assert_eq!(reader.head_number().unwrap(), Some(54));
    let mut rlp = Vec::new();
    blocks[53].encode(&mut rlp);
    assert_eq!(
        reader.canonical_hash(54).unwrap(),
        Some(blocks[53].header.hash_slow())
    );

    // Garbage is an error naming the block, not a panic.
    let err = decode_blocks(&rlp[..rlp.len() - 1]).unwrap_err();
    assert!(err.contains("block #0"), "{err}");
}
