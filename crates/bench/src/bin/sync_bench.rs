//! Catch-up speed of a follower over the peer-to-peer network, beside
//! importing the same blocks from a local file, in one process.
//!
//! ```text
//! cargo run --release --locked -p infera-bench --bin sync-bench -- [--blocks N] [--txs-per-block K]
//! ```
//!
//! 1. Builds a proof-of-authority chain of N blocks (default 1,000) with K
//!    ETH transfers each (default 50), sealed in turn by the three testnet
//!    authorities through the node's own `ChainManager`, and writes it to
//!    `chain.rlp`.
//! 2. File: a fresh datadir imports `chain.rlp` (read, decode, validate,
//!    execute, commit: `infera import`'s path).
//! 3. Network: the built datadir is served by a real node
//!    (`run_network_node`, no authority key) and a fresh follower node with
//!    it as bootnode catches up over libp2p on loopback (status handshake,
//!    range requests, full re-execution through fork choice); timed from
//!    the follower's start until its JSON-RPC reports the last block.
//!
//! Prints blocks/s and Mgas/s of both and the ratio network / file.

#[allow(dead_code)]
#[path = "../chain.rs"]
mod chain;

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{TxKind, U256};
use alloy_rlp::Encodable;
use eyre::{Context as _, ContextCompat as _, Result, bail, ensure};
use infera_chainspec::{ChainSpec, DEV_PRIVATE_KEYS, TESTNET_GENESIS_JSON};
use infera_consensus::{Clique, sign_header};
use infera_node::{
    ImportConfig, NodeConfig, P2pConfig,
    chain::{ChainManager, block_of},
    clique_sealer::address_of_key,
    decode_blocks, import_chain, open_datadir,
};
use infera_precompiles::ModelCache;
use infera_primitives::StateReader as _;
use infera_rpc::RpcConfig;
use infera_txpool::{PoolConfig, TxPool};
use parking_lot::Mutex;
use secp256k1::SecretKey;
use tokio::sync::{broadcast, oneshot};

use crate::chain::{Unsigned, fresh_address, key};

const TRANSFER_GAS: u64 = 21_000;
/// Longest the network phase may take before the benchmark gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(600);

fn main() -> Result<()> {
    let mut blocks = 1_000u64;
    let mut txs_per_block = 50u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64> {
            args.next()
                .wrap_err_with(|| format!("{name} needs a number"))?
                .parse()
                .wrap_err_with(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--blocks" => blocks = value("--blocks")?,
            "--txs-per-block" => txs_per_block = value("--txs-per-block")?,
            other => bail!(
                "unknown argument {other}; usage: sync-bench [--blocks N] [--txs-per-block K]"
            ),
        }
    }
    ensure!(blocks > 0, "--blocks must be positive");

    let work = tempfile::tempdir()?;
    let spec = chain_spec(txs_per_block)?;

    // 1. Build the chain.
    let started = Instant::now();
    let source = work.path().join("source");
    let (rlp, gas) = build_chain(&source, &spec, blocks, txs_per_block)?;
    let file = work.path().join("chain.rlp");
    std::fs::write(&file, &rlp)?;
    println!(
        "built {blocks} blocks ({txs_per_block} transfers each, {:.1} Mgas, {:.1} MB of RLP) in {:.1}s",
        gas as f64 / 1e6,
        rlp.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // 2. Import from the file.
    let started = Instant::now();
    let target = work.path().join("file-import");
    let db = open_datadir(&target, &spec)?;
    let bytes = std::fs::read(&file)?;
    let decoded = decode_blocks(&bytes).map_err(|e| eyre::eyre!(e))?;
    let progress = import_chain(&db, &spec, &decoded, ImportConfig::default(), |_| {})?;
    ensure!(
        progress.imported as u64 == blocks,
        "file import stopped early"
    );
    let file_s = started.elapsed().as_secs_f64();
    drop(db);
    report("file import (infera import)", blocks, gas, file_s);

    // 3. Catch up over the network.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sync_s = runtime.block_on(sync_over_network(work.path(), &source, &spec, blocks))?;
    report("network sync (libp2p, loopback)", blocks, gas, sync_s);
    println!(
        "ratio network / file: {:.2} (blocks per second of the follower over those of the file import)",
        file_s / sync_s
    );
    Ok(())
}

fn report(what: &str, blocks: u64, gas: u64, seconds: f64) {
    println!(
        "{what:<34} {blocks} blocks in {seconds:.2}s: {:.1} blocks/s, {:.1} Mgas/s",
        blocks as f64 / seconds,
        gas as f64 / 1e6 / seconds
    );
}

/// The testnet with chain id 6174 (the benchmark keys sign for it), a
/// one-second period, genesis at time 0 (so block n may carry timestamp n)
/// and the benchmark senders funded.
fn chain_spec(senders: u64) -> Result<ChainSpec> {
    let mut genesis: serde_json::Value = serde_json::from_str(TESTNET_GENESIS_JSON)?;
    genesis["config"]["chainId"] = chain::CHAIN_ID.into();
    genesis["config"]["clique"]["period"] = 1.into();
    genesis["timestamp"] = "0x0".into();
    genesis["gasLimit"] = format!("{:#x}", chain::GAS_LIMIT).into();
    let alloc = genesis["alloc"]
        .as_object_mut()
        .ok_or_else(|| eyre::eyre!("genesis has no alloc"))?;
    for i in 0..senders {
        alloc.insert(
            key(i).address.to_checksum(None),
            serde_json::json!({ "balance": "0xffffffffffffffffffffffffffffff" }),
        );
    }
    Ok(ChainSpec::from_json(&genesis.to_string())?)
}

/// Seals `blocks` blocks in turn into a datadir at `dir`; returns the RLP of
/// the blocks after genesis and their total gas.
fn build_chain(dir: &Path, spec: &ChainSpec, blocks: u64, txs: u64) -> Result<(Vec<u8>, u64)> {
    let db = open_datadir(dir, spec)?;
    let pool = Arc::new(Mutex::new(TxPool::new(PoolConfig {
        global_slots: usize::try_from(txs * 4).unwrap_or(usize::MAX).max(1024),
        ..PoolConfig::default()
    })));
    let (events, _) = broadcast::channel(16);
    let mut manager = ChainManager::new(
        db.clone(),
        Arc::new(spec.clone()),
        ModelCache::shared(),
        pool.clone(),
        events,
    )?;
    let clique = Clique::from_chain(spec).ok_or_else(|| eyre::eyre!("not a Clique chain"))?;
    let authorities: Vec<SecretKey> = DEV_PRIVATE_KEYS[7..10]
        .iter()
        .map(|k| SecretKey::from_byte_array(k.0))
        .collect::<Result<_, _>>()?;
    let mut rlp = Vec::new();
    let mut gas = 0u64;
    for n in 1..=blocks {
        let unsigned = (0..txs)
            .map(|i| {
                Unsigned::new(
                    key(i),
                    n - 1,
                    TxKind::Call(fresh_address("sync-bench", i)),
                    U256::from(1),
                    TRANSFER_GAS,
                    Default::default(),
                )
            })
            .collect();
        {
            let reader = db.reader()?;
            let state = reader.latest_state();
            let mut pool = pool.lock();
            for tx in chain::sign_all(unsigned) {
                let account = state.account(tx.sender)?.unwrap_or_default();
                pool.add(tx, account.nonce, account.balance, u64::MAX)?;
            }
        }
        let signer = clique.in_turn_signer(n);
        let secret = *authorities
            .iter()
            .find(|k| address_of_key(k) == signer)
            .ok_or_else(|| eyre::eyre!("no key for signer {signer}"))?;
        let difficulty = clique.difficulty(n, signer);
        let seal = move |header: &mut alloy_consensus::Header| {
            header.difficulty = difficulty;
            sign_header(header, &secret)
                .map(|_| ())
                .map_err(|e| infera_node::NodeError::Invariant(e.to_string()))
        };
        let committed = manager.seal_next(signer, n, &seal)?;
        ensure!(
            committed.block.transactions.len() as u64 == txs,
            "block {n} holds {} of {txs} transactions",
            committed.block.transactions.len()
        );
        gas += committed.block.header.gas_used;
        block_of(&committed.block).encode(&mut rlp);
    }
    Ok((rlp, gas))
}

/// Serves `source` from one node and times a fresh follower's catch-up.
async fn sync_over_network(
    work: &Path,
    source: &Path,
    spec: &ChainSpec,
    blocks: u64,
) -> Result<f64> {
    let loopback = "/ip4/127.0.0.1/tcp/0".parse()?;
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(infera_node::run_network_node(
        node_config(source, spec, None),
        P2pConfig {
            listen_addr: loopback,
            bootnodes: Vec::new(),
            discovery: true,
            max_peers: infera_node::DEFAULT_MAX_PEERS,
            authority_key: None,
            corrupt_inference: false,
            test_sync_block_delay: std::time::Duration::ZERO,
        },
        async move {
            let _ = server_stopped.await;
        },
    ));
    let addresses = source.join(infera_node::P2P_ADDRESSES_FILE);
    let deadline = Instant::now() + Duration::from_secs(30);
    let bootnode = loop {
        if let Ok(text) = std::fs::read_to_string(&addresses)
            && let Some(line) = text.lines().next()
        {
            break line.parse()?;
        }
        ensure!(Instant::now() < deadline, "the serving node did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let http = free_port()?;
    let (stop_follower, follower_stopped) = oneshot::channel::<()>();
    let started = Instant::now();
    let follower = tokio::spawn(infera_node::run_network_node(
        node_config(&work.join("follower"), spec, Some(http)),
        P2pConfig {
            listen_addr: "/ip4/127.0.0.1/tcp/0".parse()?,
            bootnodes: vec![bootnode],
            discovery: true,
            max_peers: infera_node::DEFAULT_MAX_PEERS,
            authority_key: None,
            corrupt_inference: false,
            test_sync_block_delay: std::time::Duration::ZERO,
        },
        async move {
            let _ = follower_stopped.await;
        },
    ));
    let rpc: SocketAddr = (Ipv4Addr::LOCALHOST, http).into();
    loop {
        if let Ok(head) = block_number(rpc)
            && head >= blocks
        {
            break;
        }
        ensure!(
            started.elapsed() < SYNC_TIMEOUT,
            "the follower did not catch up within {SYNC_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop_follower.send(());
    let _ = stop_server.send(());
    follower.await??;
    server.await??;
    Ok(seconds)
}

fn node_config(datadir: &Path, spec: &ChainSpec, http_port: Option<u16>) -> NodeConfig {
    NodeConfig {
        datadir: datadir.to_path_buf(),
        chain: spec.clone(),
        http_addr: http_port.map(|p| (Ipv4Addr::LOCALHOST, p).into()),
        ws_addr: None,
        dev_block_time: Duration::ZERO,
        coinbase: Default::default(),
        rpc: RpcConfig::default(),
        pool: PoolConfig::default(),
        // The benchmark measures the CPU path every node has.
        inference_device: infera_node::InferenceDevice::Cpu,
        metrics_addr: None,
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// `eth_blockNumber` over a plain HTTP/1.1 request.
fn block_number(rpc: SocketAddr) -> Result<u64> {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#;
    let mut stream = TcpStream::connect_timeout(&rpc, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {rpc}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let json = response
        .split("\r\n\r\n")
        .nth(1)
        .ok_or_else(|| eyre::eyre!("no HTTP body"))?;
    let v: serde_json::Value = serde_json::from_str(json)?;
    let hex = v["result"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("no result: {v}"))?;
    Ok(u64::from_str_radix(hex.trim_start_matches("0x"), 16)?)
}
