//! The proof-of-authority network with several real `infera node`
//! processes on loopback: authorities sealing in turn, transactions (a model
//! upload and an inference call among them) reaching every node, agreement on
//! head and state root, a killed node catching up, a late follower syncing
//! from genesis, a tampering authority's block rejected, and a partition
//! healed through a reorg.
//!
//! The chain is `genesis/testnet.json` with chain id 6174 (so the dev wallets
//! of these tests sign for it) and a one-second period.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::abi::selector;
use crate::http::{Rpc, b256, bytes, qty};
use crate::node::{CHAIN_ID, free_port};
use crate::wallet::{Wallet, ether};

/// The testnet authorities' keys (anvil's accounts #7, #8, #9), ascending by
/// address as in the genesis signer list.
const AUTHORITY_KEYS: [&str; 3] = [
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the network to reach a state (blocks every second).
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The testnet genesis with chain id 6174, a one-second period and the given
/// genesis timestamp, written into `dir`.
fn genesis_file(dir: &Path, timestamp_s: u64) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("genesis/testnet.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["config"]["chainId"] = json!(CHAIN_ID);
    v["config"]["clique"]["period"] = json!(1);
    v["timestamp"] = json!(format!("{timestamp_s:#x}"));
    let path = dir.join("genesis.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    path
}

/// One `infera node` process of the network, on its own datadir. Its
/// peer-to-peer port stays the same across restarts, so other nodes'
/// `--bootnodes` stay valid. Killed on drop; its log tail is printed when a
/// test fails.
struct NetNode {
    name: &'static str,
    dir: TempDir,
    genesis: PathBuf,
    authority: Option<usize>,
    extra_args: Vec<String>,
    p2p_port: u16,
    child: Option<Child>,
    starts: u32,
    rpc: Rpc,
    http: SocketAddr,
}

impl NetNode {
    fn new(name: &'static str, genesis: &Path, authority: Option<usize>) -> Self {
        let placeholder: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        Self {
            name,
            dir: tempfile::Builder::new()
                .prefix("infera-net-")
                .tempdir()
                .unwrap(),
            genesis: genesis.to_path_buf(),
            authority,
            extra_args: Vec::new(),
            p2p_port: free_port(),
            child: None,
            starts: 0,
            rpc: Rpc::new(placeholder),
            http: placeholder,
        }
    }

    fn datadir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("node-{}.log", self.starts))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_tail(&self, n: usize) -> String {
        let text = self.log();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Starts the process with these bootnodes and waits for its RPC and its
    /// peer-to-peer address file.
    fn start(&mut self, bootnodes: &[String]) {
        assert!(self.child.is_none(), "{} already running", self.name);
        self.starts += 1;
        let http_port = free_port();
        let _ = std::fs::remove_file(self.datadir().join("p2p-addresses"));
        let log = File::create(self.log_path()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_infera"));
        cmd.arg("node")
            .arg("--chain")
            .arg(&self.genesis)
            .arg("--datadir")
            .arg(self.datadir())
            .args(["--http", "--http.addr", "127.0.0.1"])
            .args(["--http.port", &http_port.to_string()])
            .args([
                "--p2p.addr",
                "127.0.0.1",
                "--port",
                &self.p2p_port.to_string(),
            ])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        if !bootnodes.is_empty() {
            cmd.args(["--bootnodes", &bootnodes.join(",")]);
        }
        if let Some(i) = self.authority {
            cmd.env("INFERA_AUTHORITY_KEY", AUTHORITY_KEYS[i])
                .args(["--authority.key", "env:INFERA_AUTHORITY_KEY"]);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        self.child = Some(cmd.spawn().expect("spawn infera"));
        self.http = (Ipv4Addr::LOCALHOST, http_port).into();
        self.rpc = Rpc::new(self.http);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "{} exited during startup with {status}; log tail:\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            let answered = matches!(self.rpc.try_request("eth_chainId", json!([])), Ok(Ok(_)));
            if answered && self.datadir().join("p2p-addresses").exists() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not start within {STARTUP_TIMEOUT:?}; log tail:\n{}",
                self.name,
                self.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its multiaddr with peer id, for other nodes' `--bootnodes`.
    fn enode(&self) -> String {
        let text = std::fs::read_to_string(self.datadir().join("p2p-addresses")).unwrap();
        text.lines().next().expect("an address").to_string()
    }

    fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        child.wait().unwrap();
    }

    fn head(&self) -> u64 {
        self.rpc.block_number()
    }

    fn block(&self, number: u64) -> Value {
        self.rpc.block(format!("{number:#x}"), false)
    }

    fn hash_at(&self, number: u64) -> Option<B256> {
        let block = self.block(number);
        (!block.is_null()).then(|| b256(&block["hash"]))
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- {} log ({}), last 40 lines ----\n{}\n---- end of {} log ----",
                self.name,
                self.log_path().display(),
                self.log_tail(40),
                self.name
            );
        }
    }
}

/// Waits until `check` holds, panicking with `what` after the timeout.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until every node has block `number` and they all agree on its hash
/// and state root; returns the hash.
fn wait_agreement(nodes: &[&NetNode], number: u64) -> B256 {
    wait_until(&format!("all nodes to agree on block {number}"), || {
        let blocks: Vec<Value> = nodes.iter().map(|n| n.block(number)).collect();
        blocks.iter().all(|b| !b.is_null())
            && blocks
                .iter()
                .all(|b| b["hash"] == blocks[0]["hash"] && b["stateRoot"] == blocks[0]["stateRoot"])
    });
    nodes[0].hash_at(number).unwrap()
}

fn wait_receipt(node: &NetNode, hash: B256) -> Value {
    let mut receipt = Value::Null;
    wait_until(&format!("receipt of {hash} on {}", node.name), || {
        receipt = node.rpc.ok("eth_getTransactionReceipt", json!([hash]));
        !receipt.is_null()
    });
    receipt
}

fn digits_model() -> Vec<u8> {
    std::fs::read(repo().join("kernels/models/digits/digits.infera")).unwrap()
}

fn classifier_code(model_id: B256) -> Vec<u8> {
    let path = repo().join("precompiles/solidity/out/DigitClassifier.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run ./scripts/compile-solidity.sh (./scripts/test.sh does)",
            path.display()
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut code = bytes(&v["bytecode"]);
    code.extend(model_id.abi_encode());
    code
}

/// A held-out digit image quantised the way the model expects (the first
/// sample of the demo model's test set).
fn digit_image() -> Vec<u8> {
    let dir = repo().join("kernels/models/digits");
    let x = infera_model_import::npy::Npy::read(&dir.join("test_x.npy")).unwrap();
    let sample = x.to_f32()[..64].to_vec();
    let model = infera_kernels::Model::decode(&digits_model()).unwrap();
    infera_model_import::tool::quantize_input(&model, &sample).unwrap()
}

/// The three transactions of the AI scenario, signed by dev account 0:
/// register the digits model, deploy the classifier, classify an image.
/// Returns them with the classifier's address.
fn ai_transactions() -> (Vec<crate::wallet::SignedTx>, Address) {
    let wallet = Wallet::dev(0);
    let model = digits_model();
    let id = keccak256(&model);
    let mut register = selector("register(bytes)").to_vec();
    register.extend((model,).abi_encode_params());
    let registry: Address = "0x00000000000000000000000000000000000a1001"
        .parse()
        .unwrap();
    let classifier = wallet.address.create(1);
    let mut classify = selector("classify(bytes)").to_vec();
    classify.extend((digit_image(),).abi_encode_params());
    let txs = vec![
        wallet.tx(0, Some(registry), U256::ZERO, register, 5_000_000),
        wallet.tx(1, None, U256::ZERO, classifier_code(id), 3_000_000),
        wallet.tx(2, Some(classifier), U256::ZERO, classify, 1_000_000),
    ];
    (txs, classifier)
}

/// The label a `Classified` event carries (its data word).
fn classified_label(receipt: &Value) -> U256 {
    let logs = receipt["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "one Classified event: {receipt}");
    let data = bytes(&logs[0]["data"]);
    U256::from_be_slice(&data[data.len() - 32..])
}

#[test]
fn authorities_seal_in_turn_and_every_node_reexecutes_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path(), unix_now_s());
    let mut a = NetNode::new("authority-1", &genesis, Some(0));
    let mut b = NetNode::new("authority-2", &genesis, Some(1));
    let mut c = NetNode::new("authority-3", &genesis, Some(2));
    b.extra_args
        .extend(["--http.api".into(), "eth,net,debug".into()]);
    a.start(&[]);
    b.start(&[a.enode()]);
    c.start(&[a.enode(), b.enode()]);

    // Not --dev: debug_ and testing_ are served only where --http.api asks.
    let latest = serde_json::json!(["latest"]);
    assert_eq!(a.rpc.err("debug_getRawHeader", latest.clone()).code, -32601);
    assert_eq!(
        a.rpc
            .err("testing_buildBlockV1", serde_json::json!([]))
            .code,
        -32601
    );
    assert!(a.rpc.ok("net_version", serde_json::json!([])).is_string());
    assert!(b.rpc.ok("debug_getRawHeader", latest).is_string());
    assert_eq!(
        b.rpc.err("txpool_status", serde_json::json!([])).code,
        -32601
    );

    // Sealed in turn: once all are up, the authorities take turns; a block
    // has difficulty 2 exactly when its sealer (the beneficiary) is the one
    // whose turn it is, and every authority seals.
    wait_until("all three connected", || {
        [&a, &b, &c]
            .iter()
            .all(|n| qty(&n.rpc.ok("net_peerCount", json!([]))) >= 2)
    });
    // On a loaded machine an in-turn authority may be late and a backup
    // seals instead, so look at up to 15 blocks for all three sealers.
    let signers: Vec<Address> = AUTHORITY_KEYS
        .iter()
        .map(|k| Wallet::from_key(k).address)
        .collect();
    let from = a.head() + 1;
    let mut sealers = std::collections::BTreeSet::new();
    let mut in_turn = 0;
    let mut n = from;
    while sealers.len() < 3 && n < from + 15 {
        wait_until(&format!("block {n}"), || a.head() >= n);
        let block = a.block(n);
        let miner: Address = block["miner"].as_str().unwrap().parse().unwrap();
        let turn = miner == signers[(n % 3) as usize];
        assert_eq!(
            qty(&block["difficulty"]),
            if turn { 2 } else { 1 },
            "block {n}: {block}"
        );
        in_turn += usize::from(turn);
        sealers.insert(miner);
        n += 1;
    }
    let seen = n - from;
    assert_eq!(
        sealers.len(),
        3,
        "not every authority sealed in {seen} blocks"
    );
    assert!(
        2 * in_turn >= seen as usize,
        "only {in_turn} of {seen} blocks in turn"
    );

    // A transfer sent to one node reaches every node.
    let alice = Wallet::dev(1);
    let bob = Wallet::fresh("network-bob");
    let transfer = alice.transfer(0, bob.address, ether(3));
    c.rpc.send_raw(&transfer.raw).unwrap();
    for node in [&a, &b, &c] {
        assert_eq!(qty(&wait_receipt(node, transfer.hash)["status"]), 1);
        assert_eq!(node.rpc.balance(bob.address, "latest"), ether(3));
    }

    // A model upload and an inference call sent to one node: every node
    // re-executes the inference and records the same label.
    let (txs, classifier) = ai_transactions();
    for tx in &txs {
        b.rpc.send_raw(&tx.raw).unwrap();
    }
    let receipts: Vec<Value> = [&a, &b, &c]
        .iter()
        .map(|node| wait_receipt(node, txs[2].hash))
        .collect();
    for r in &receipts {
        assert_eq!(qty(&r["status"]), 1, "{r}");
        assert_eq!(r["blockHash"], receipts[0]["blockHash"]);
        assert_eq!(classified_label(r), classified_label(&receipts[0]));
    }
    let label = classified_label(&receipts[0]);
    let code = a.rpc.code(classifier, "latest");
    assert!(!code.is_empty());
    let tip = a.head();
    wait_agreement(&[&a, &b, &c], tip);

    // A follower started late syncs from genesis and re-executes everything.
    let mut follower = NetNode::new("follower", &genesis, None);
    follower.start(&[a.enode(), c.enode()]);
    let tip = a.head();
    wait_agreement(&[&a, &b, &c, &follower], tip);
    let r = wait_receipt(&follower, txs[2].hash);
    assert_eq!(classified_label(&r), label);
    // The catch-up logs its end (after one more, empty range response).
    wait_until("the follower to log its catch-up", || {
        follower.log().contains("caught up")
    });
    assert_eq!(follower.rpc.ok("eth_syncing", json!([])), json!(false));
    wait_until("net_peerCount on the follower", || {
        qty(&follower.rpc.ok("net_peerCount", json!([]))) >= 1
    });

    // An authority killed mid-run: the others go on (backups seal its turns
    // out of turn); restarted, it catches up.
    b.kill9();
    let before = a.head();
    wait_until("blocks without authority-2", || a.head() >= before + 4);
    let out_of_turn = (before + 1..=a.head()).any(|n| qty(&a.block(n)["difficulty"]) == 1);
    assert!(out_of_turn, "nobody sealed authority-2's turns");
    b.start(&[a.enode(), c.enode()]);
    let tip = a.head();
    wait_agreement(&[&a, &b, &c, &follower], tip);
}

/// Needs the `test-hooks` feature (the tampering node's flag); `scripts/test.sh`
/// enables it.
#[cfg(feature = "test-hooks")]
#[test]
fn a_block_with_a_tampered_inference_is_rejected_and_the_honest_chain_wins() {
    let dir = tempfile::tempdir().unwrap();
    // Genesis a few seconds ahead: the first block may not be sealed before
    // genesis time + 1 s, which leaves time to fill the tampering node's pool.
    let genesis = genesis_file(dir.path(), unix_now_s() + 6);
    // Authority 2 (whose turn block 1 is) computes wrong inference outputs.
    // Alone, it seals block 1 with the model upload, the classifier and an
    // inference call.
    let mut liar = NetNode::new("tampering-authority", &genesis, Some(1));
    liar.extra_args.push("--test.corrupt-inference".into());
    liar.start(&[]);
    let (txs, _) = ai_transactions();
    for tx in &txs {
        liar.rpc.send_raw(&tx.raw).unwrap();
    }
    let tampered = wait_receipt(&liar, txs[2].hash);
    assert_eq!(qty(&tampered["blockNumber"]), 1);
    let tampered_label = classified_label(&tampered);
    let tampered_hash = liar.hash_at(1).unwrap();

    // The honest authorities start from genesis with the liar as a peer: its
    // chain is heavier (an in-turn block), so they fetch block 1, re-execute
    // it, refuse it and ban the liar.
    let mut a = NetNode::new("authority-1", &genesis, Some(0));
    let mut b = NetNode::new("authority-3", &genesis, Some(2));
    a.start(&[liar.enode()]);
    b.start(&[liar.enode(), a.enode()]);
    wait_until("the tampered block to be refused", || {
        let log = a.log() + &b.log();
        log.contains("invalid block 1") && log.contains("root")
    });
    let liar_peer = liar.enode().rsplit('/').next().unwrap().to_string();
    wait_until("the liar to be banned", || {
        (a.log() + &b.log())
            .lines()
            .any(|l| l.contains("peer banned") && l.contains(&liar_peer))
    });
    wait_until("the honest chain to grow", || {
        a.head() >= 3 && b.head() >= 3
    });
    assert_ne!(a.hash_at(1), Some(tampered_hash));

    // The same transactions on the honest chain: the true label.
    for tx in &txs {
        a.rpc.send_raw(&tx.raw).unwrap();
    }
    let honest = wait_receipt(&b, txs[2].hash);
    assert_eq!(qty(&honest["status"]), 1);
    let honest_label = classified_label(&honest);
    assert_ne!(
        honest_label, tampered_label,
        "the tampering changed the answer"
    );
    let truth =
        infera_model_import::npy::Npy::read(&repo().join("kernels/models/digits/test_y.npy"))
            .unwrap()
            .to_i64()
            .unwrap()[0];
    assert_eq!(
        honest_label,
        U256::from(truth as u64),
        "the honest chain has the right digit"
    );
    let tip = a.head();
    wait_agreement(&[&a, &b], tip);
    // The liar keeps its own version; nobody followed it. Its receipt need
    // not be in block 1: if the honest side outweighed it before the AI
    // transactions reached the honest chain, the liar reorged onto the
    // honest chain (which then had no inference to disagree on) and
    // re-sealed them in a later block of its own, with the same wrong answer.
    let liar_receipt = wait_receipt(&liar, txs[2].hash);
    let liar_block = b256(&liar_receipt["blockHash"]);
    assert_eq!(classified_label(&liar_receipt), tampered_label);
    let liar_number = qty(&liar_receipt["blockNumber"]);
    assert_ne!(
        a.hash_at(liar_number),
        Some(liar_block),
        "a followed the liar"
    );
    assert_ne!(
        b.hash_at(liar_number),
        Some(liar_block),
        "b followed the liar"
    );
    assert_ne!(b256(&honest["blockHash"]), tampered_hash);
    assert_ne!(b256(&honest["blockHash"]), liar_block);
}

#[test]
fn a_partition_heals_through_a_reorg() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path(), unix_now_s() + 4);
    // One side: authority 3 alone (it can seal one block before the
    // recent-signer rule stops it), with a transfer only it has seen.
    let mut lone = NetNode::new("lone-authority", &genesis, Some(2));
    lone.start(&[]);
    let alice = Wallet::dev(2);
    let carol = Wallet::fresh("network-carol");
    let transfer = alice.transfer(0, carol.address, ether(1));
    lone.rpc.send_raw(&transfer.raw).unwrap();
    let r = wait_receipt(&lone, transfer.hash);
    assert_eq!(qty(&r["blockNumber"]), 1);
    let lone_block = b256(&r["blockHash"]);

    // The other side: authorities 1 and 2 build a longer, heavier chain.
    let mut a = NetNode::new("authority-1", &genesis, Some(0));
    let mut b = NetNode::new("authority-2", &genesis, Some(1));
    a.start(&[]);
    b.start(&[a.enode()]);
    wait_until("the majority side to reach block 4", || b.head() >= 4);
    assert_eq!(lone.head(), 1, "alone, authority 3 may seal only one block");

    // The partition heals: the lone node reorgs onto the heavier chain, and
    // its transfer, dropped with its block, is mined on the winning chain.
    lone.kill9();
    lone.start(&[a.enode(), b.enode()]);
    wait_until("the lone node to reorg", || {
        lone.hash_at(1).is_some_and(|h| h != lone_block) && lone.log().contains("reorg")
    });
    let r = wait_receipt(&a, transfer.hash);
    assert_eq!(qty(&r["status"]), 1);
    assert_ne!(b256(&r["blockHash"]), lone_block);
    let tip = a.head();
    let hash = wait_agreement(&[&a, &b, &lone], tip);
    assert_eq!(lone.hash_at(tip), Some(hash));
    assert_eq!(lone.rpc.balance(carol.address, "latest"), ether(1));
}

#[test]
fn a_heavier_branch_of_the_same_height_replaces_a_lighter_one() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path(), unix_now_s() + 2);
    // Apart, authority 2 seals block 1 in turn (difficulty 2) and authority 3
    // out of turn (difficulty 1); neither may seal block 2 on its own block
    // (recent-signer rule), so both chains stop at height 1.
    let mut heavy = NetNode::new("in-turn-authority", &genesis, Some(1));
    let mut light = NetNode::new("out-of-turn-authority", &genesis, Some(2));
    heavy.start(&[]);
    light.start(&[]);
    wait_until("both to seal block 1", || {
        heavy.head() == 1 && light.head() == 1
    });
    let heavy_block = heavy.hash_at(1).unwrap();
    assert_ne!(light.hash_at(1), Some(heavy_block));
    assert_eq!(qty(&heavy.block(1)["difficulty"]), 2);
    assert_eq!(qty(&light.block(1)["difficulty"]), 1);

    // Connected, the light node learns of a heavier chain that is no longer
    // than its own: it must fetch the peer's head block, not only blocks
    // above its own head, and reorg onto it. Then it seals block 2 in turn.
    light.kill9();
    light.start(&[heavy.enode()]);
    wait_until("the light node to take the heavier block 1", || {
        light.hash_at(1) == Some(heavy_block)
    });
    wait_until("the chain to grow again", || {
        heavy.head() >= 2 && light.head() >= 2
    });
    let tip = heavy.head();
    wait_agreement(&[&heavy, &light], tip);
    assert_eq!(light.hash_at(1), Some(heavy_block));
}

/// A follower catching up answers `eth_syncing` with geth's progress
/// object (`startingBlock`, `currentBlock`, `highestBlock`), then `false`
/// once it has caught up. The follower pauses before each range-synced
/// block (a `test-hooks` flag) so that the catch-up lasts long enough to
/// be watched.
#[cfg(feature = "test-hooks")]
#[test]
fn eth_syncing_reports_a_catch_up_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path(), unix_now_s() + 2);
    // Two of the three authorities: enough to seal every block.
    let mut a = NetNode::new("authority-1", &genesis, Some(0));
    let mut b = NetNode::new("authority-2", &genesis, Some(1));
    a.start(&[]);
    b.start(&[a.enode()]);
    wait_until("the authorities to reach block 6", || a.head() >= 6);

    let mut follower = NetNode::new("follower", &genesis, None);
    follower
        .extra_args
        .extend(["--test.sync-block-delay-ms".to_string(), "300".to_string()]);
    follower.start(&[a.enode()]);
    let mut seen = None;
    wait_until("eth_syncing to report the catch-up", || {
        let v = follower.rpc.ok("eth_syncing", json!([]));
        if v.is_object() {
            seen = Some(v);
        }
        seen.is_some()
    });
    let progress = seen.unwrap();
    let (starting, current, highest) = (
        qty(&progress["startingBlock"]),
        qty(&progress["currentBlock"]),
        qty(&progress["highestBlock"]),
    );
    assert_eq!(starting, 0, "{progress}");
    assert!(current < highest, "{progress}");
    assert!(highest >= 6, "{progress}");

    let tip = a.head();
    wait_agreement(&[&a, &follower], tip);
    wait_until("the follower to log its catch-up", || {
        follower.log().contains("caught up")
    });
    assert_eq!(follower.rpc.ok("eth_syncing", json!([])), json!(false));
    assert!(
        follower.log().contains("blocks_per_s"),
        "{}",
        follower.log_tail(10)
    );
}

/// Discovery: five nodes that each know only node 1 find one another through
/// the DHT, and once node 1 is gone the blocks the authorities seal still
/// reach every node.
#[test]
fn five_nodes_that_know_only_one_find_one_another_and_outlive_it() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path(), unix_now_s());
    let mut first = NetNode::new("bootnode", &genesis, None);
    first
        .extra_args
        .extend(["--http.api".into(), "eth,net,admin".into()]);
    first.start(&[]);
    let bootnode = [first.enode()];
    let mut others = [
        NetNode::new("authority-1", &genesis, Some(0)),
        NetNode::new("authority-2", &genesis, Some(1)),
        NetNode::new("authority-3", &genesis, Some(2)),
        NetNode::new("follower", &genesis, None),
    ];
    for node in &mut others {
        node.start(&bootnode);
    }
    let peer_count = |n: &NetNode| qty(&n.rpc.ok("net_peerCount", json!([])));
    wait_until("every node to have at least 3 peers", || {
        peer_count(&first) >= 3 && others.iter().all(|n| peer_count(n) >= 3)
    });
    let peers = first.rpc.ok("admin_peers", json!([]));
    assert!(peers.as_array().unwrap().len() >= 3, "{peers}");
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["direction"] == "inbound"),
        "everyone dialled the bootnode: {peers}"
    );

    first.kill9();
    let after = others.iter().map(NetNode::head).max().unwrap() + 2;
    let remaining: Vec<&NetNode> = others.iter().collect();
    wait_agreement(&remaining, after);
    for node in &others {
        assert!(peer_count(node) >= 2, "{} lost its peers", node.name);
    }
    eprintln!("discovery test took {:?}", started.elapsed());
}

/// The admin API on a networked node: off unless --http.api names it; node
/// info; a peer added, reported from both sides, and removed; bad addresses
/// refused with the problem named.
#[test]
fn admin_adds_reports_and_removes_peers() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = genesis_file(dir.path(), unix_now_s());
    let mut a = NetNode::new("a", &genesis, None);
    let mut b = NetNode::new("b", &genesis, None);
    for node in [&mut a, &mut b] {
        node.extra_args
            .extend(["--http.api", "eth,net,admin", "--no-discovery"].map(String::from));
    }
    let mut plain = NetNode::new("plain", &genesis, None);
    plain.start(&[]);
    assert_eq!(plain.rpc.err("admin_nodeInfo", json!([])).code, -32601);
    drop(plain);
    let since = unix_now_s();
    a.start(&[]);
    b.start(&[]);

    let info = a.rpc.ok("admin_nodeInfo", json!([]));
    let enode = a.enode();
    assert_eq!(info["enode"], json!(enode), "{info}");
    assert!(enode.ends_with(&format!("/p2p/{}", info["id"].as_str().unwrap())));
    assert_eq!(
        info["listenAddr"],
        json!(format!("/ip4/127.0.0.1/tcp/{}", a.p2p_port))
    );
    assert_eq!(info["ports"]["listener"], json!(a.p2p_port));
    assert!(
        info["name"].as_str().unwrap().starts_with("infera/"),
        "{info}"
    );
    let chain = &info["protocols"]["infera"];
    assert_eq!(chain["chainId"], json!(CHAIN_ID));
    assert_eq!(chain["genesis"], a.block(0)["hash"]);
    assert_eq!(chain["headNumber"], json!(0));
    assert_eq!(a.rpc.ok("net_listening", json!([])), json!(true));
    assert_eq!(a.rpc.ok("admin_peers", json!([])), json!([]));

    for (bad, problem) in [
        ("nonsense", "not a multiaddr"),
        ("/ip4/127.0.0.1/tcp/1", "/p2p/<peer id>"),
        ("enode://abc@127.0.0.1:30303", "enode URL"),
    ] {
        let err = a.rpc.err("admin_addPeer", json!([bad]));
        assert_eq!(err.code, -32602, "{bad}: {err:?}");
        assert!(err.message.contains(problem), "{bad}: {}", err.message);
    }
    let err = a.rpc.err("admin_addPeer", json!([enode]));
    assert!(err.message.contains("own peer id"), "{}", err.message);

    assert_eq!(a.rpc.ok("admin_addPeer", json!([b.enode()])), json!(true));
    let peer_count = |n: &NetNode| qty(&n.rpc.ok("net_peerCount", json!([])));
    wait_until("a and b to connect", || {
        peer_count(&a) == 1 && peer_count(&b) == 1
    });
    let b_id = b.rpc.ok("admin_nodeInfo", json!([]))["id"].clone();
    let peers = a.rpc.ok("admin_peers", json!([]));
    let peer = &peers[0];
    assert_eq!(peer["id"], b_id, "{peers}");
    assert_eq!(peer["direction"], "outbound");
    assert_eq!(peer["network"]["inbound"], json!(false));
    let connected = peer["connectedSince"].as_u64().unwrap();
    assert!(connected >= since && connected <= unix_now_s(), "{peer}");
    assert_eq!(peer["head"]["number"], json!(0));
    assert_eq!(peer["head"]["hash"], b.block(0)["hash"]);
    assert!(
        peer["addresses"][0]
            .as_str()
            .unwrap()
            .contains(&format!("/tcp/{}", b.p2p_port)),
        "{peer}"
    );
    assert_eq!(
        b.rpc.ok("admin_peers", json!([]))[0]["direction"],
        "inbound"
    );

    assert_eq!(
        a.rpc.ok("admin_removePeer", json!([b.enode()])),
        json!(true)
    );
    wait_until("a and b to disconnect", || {
        peer_count(&a) == 0 && peer_count(&b) == 0
    });
    assert_eq!(a.rpc.ok("admin_peers", json!([])), json!([]));
}
