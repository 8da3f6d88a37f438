//! The offline subcommands as a user runs them: `infera import` of an RLP
//! chain, `infera model import | inspect` of the demo model, and
//! `infera db stats | verify` of a dev node's datadir.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn infera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infera"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("spawn infera")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn import_takes_an_rlp_chain_with_full_validation_and_is_idempotent() {
    let fixtures = repo().join("../shared/fixtures/execution-apis/tests");
    if !fixtures.join("chain.rlp").exists() {
        eprintln!("SKIPPED: no {} (../shared/fixtures)", fixtures.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("data");
    let chain = fixtures.join("chain.rlp");
    let genesis = fixtures.join("genesis.json");
    let args = |extra: &[&'static str]| {
        let mut v = vec![
            "import".to_string(),
            chain.display().to_string(),
            "--chain".into(),
            genesis.display().to_string(),
            "--datadir".into(),
            datadir.display().to_string(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&'static str]| {
        let a = args(extra);
        infera(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Its blocks are proof-of-work blocks: refused unless the operator says so.
    let refused = run(&[]);
    assert!(!refused.status.success());
    let t = text(&refused);
    assert!(
        t.contains("invalid block 1")
            && t.contains("--allow-pre-merge")
            && t.contains("head is block 0"),
        "{t}"
    );
    let imported = run(&["--allow-pre-merge"]);
    let t = text(&imported);
    assert!(imported.status.success(), "{t}");
    assert!(t.contains("imported 54 blocks (0 already present)"), "{t}");
    assert!(t.contains("head is block 54"), "{t}");
    let again = run(&["--allow-pre-merge"]);
    let t = text(&again);
    assert!(again.status.success(), "{t}");
    assert!(t.contains("imported 0 blocks (54 already present)"), "{t}");

    // A chain file cut in the middle of a block is refused with a reason and
    // the imported chain stays as it was.
    let bytes = std::fs::read(&chain).unwrap();
    let cut = dir.path().join("cut.rlp");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let out = infera(&[
        "import",
        cut.to_str().unwrap(),
        "--chain",
        genesis.to_str().unwrap(),
        "--datadir",
        datadir.to_str().unwrap(),
        "--allow-pre-merge",
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    let again = run(&["--allow-pre-merge"]);
    assert!(
        text(&again).contains("head is block 54"),
        "{}",
        text(&again)
    );
}

#[test]
fn model_import_and_inspect_from_the_binary() {
    let models = repo().join("kernels/models/digits");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("digits.infera");
    let p = |name: &str| models.join(name).display().to_string();
    let out = infera(&[
        "model",
        "import",
        &p("digits.onnx"),
        "--calibrate",
        &p("calib.npy"),
        "-o",
        output.to_str().unwrap(),
        "--eval",
        &p("test_x.npy"),
        "--labels",
        &p("test_y.npy"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("import prints JSON");
    assert_eq!(report["macs"], 6464);
    assert!(
        report["top1_agreement_with_float"]
            .as_str()
            .unwrap()
            .starts_with("200/200"),
        "{report}"
    );
    let eval = &report["eval"];
    assert!(
        eval["integer_accuracy"].as_f64().unwrap() >= 0.95,
        "{report}"
    );
    assert!(eval["points_lost"].as_f64().unwrap() <= 1.0, "{report}");

    let out = infera(&["model", "inspect", output.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("MACs 6464") && t.contains("parameters 6570"),
        "{t}"
    );
    assert!(t.contains("inference gas") && t.contains("per call"), "{t}");

    // A truncated model file: a precise error, no panic.
    let bytes = std::fs::read(&output).unwrap();
    let bad = dir.path().join("truncated.infera");
    std::fs::write(&bad, &bytes[..100]).unwrap();
    let out = infera(&["model", "inspect", bad.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("truncated") && t.contains("offset"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
}

/// The value after `label` on the line of `out` that starts with it.
fn field<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{out}"))
        .trim()
}

#[test]
fn db_stats_and_verify_on_a_dev_datadir() {
    use crate::node::Node;
    use crate::wallet::{Wallet, ether};

    let mut node = Node::start();
    let alice = Wallet::dev(0);
    let bob = Wallet::fresh("db_tools/bob");
    for nonce in 0..2 {
        crate::send_ok(&node.rpc, &alice.transfer(nonce, bob.address, ether(1)));
    }
    let storage_code = {
        let mut code = crate::abi::storage().bytecode;
        code.extend_from_slice(crate::abi::w(42).as_slice());
        code
    };
    crate::deploy(&node.rpc, &alice, 2, storage_code, 1_000_000);
    let latest = node.rpc.block("latest", false);
    let head = crate::http::qty(&latest["number"]);
    let state_root = latest["stateRoot"].as_str().unwrap().to_string();
    let datadir = node.datadir();
    let datadir = datadir.to_str().unwrap();

    // Beside the running node: one more MDBX reader.
    let live = infera(&["db", "stats", "--datadir", datadir]);
    assert!(live.status.success(), "{}", text(&live));

    node.stop();
    let out = infera(&["db", "stats", "--datadir", datadir]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for table in [
        "CanonicalHeaders",
        "PlainAccounts",
        "PlainStorage",
        "HashedAccounts",
        "Bytecodes",
        "Meta",
    ] {
        assert!(
            t.lines().any(|l| l.starts_with(table)),
            "no {table} line in:\n{t}"
        );
    }
    let canonical: Vec<&str> = t
        .lines()
        .find(|l| l.starts_with("CanonicalHeaders "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(canonical[1], (head + 1).to_string(), "genesis..=head: {t}");
    assert_eq!(field(&t, "head block:"), head.to_string(), "{t}");
    assert!(field(&t, "page size:").ends_with(" bytes"), "{t}");
    assert!(t.lines().any(|l| l.starts_with("total ")), "{t}");

    let out = infera(&["db", "verify", "--datadir", datadir]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert_eq!(field(&t, "computed root:"), state_root, "{t}");
    assert_eq!(field(&t, "header root:"), state_root, "{t}");
    assert!(t.contains("state root matches"), "{t}");
    let slots: u64 = field(&t, "storage slots:").parse().unwrap();
    assert!(slots >= 1, "the Storage contract holds its value: {t}");
    let accounts: u64 = field(&t, "accounts:").parse().unwrap();
    assert!(accounts >= 3, "alice, bob and the contract at least: {t}");

    // Not a datadir: a clear error, no panic.
    let empty = tempfile::tempdir().unwrap();
    let out = infera(&["db", "verify", "--datadir", empty.path().to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("no database in"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
}
