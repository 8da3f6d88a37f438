//! infera throughput benchmark.
//!
//! ```text
//! cargo run --release -p infera-bench -- [--quick]
//! ```
//!
//! 1. Block execution + commit in Mgas/s through the node's own builder
//!    (`infera_node::builder::build_and_commit`: pool, executor, state root,
//!    MDBX durable commit) for (a) plain ETH transfers and (b) ERC-20
//!    transfers, beside plain revm executing the same transactions on an
//!    in-memory database; prints the ratio. The builder's own phase timings
//!    (`build_and_commit_timed`) split the time into execution and commit; a
//!    second node database builds the same blocks (same block hashes, checked).
//! 2. JSON-RPC requests/s for `eth_blockNumber` and an `eth_call`
//!    (`balanceOf`) with 64 concurrent keep-alive connections on loopback.
//!
//! `--rpc-heavy` instead measures `eth_blockNumber` and
//! `eth_sendRawTransaction` latency while 200 infinite-loop `eth_call`s flood
//! the node (see `rpc_heavy.rs`).

mod chain;
mod node;
mod raw;
mod rpc;
mod rpc_heavy;

use std::{sync::Arc, time::Duration};

use alloy_primitives::{Address, TxKind, U256};
use eyre::{Result, ensure, eyre};
use infera_primitives::{RecoveredTx, SealedBlock, StateReader as _};

use crate::{
    chain::{ERC20_GAS, GAS_LIMIT, Key, Unsigned},
    node::{Phases, Rig},
};

/// Gas of a plain ETH transfer.
const TRANSFER_GAS: u64 = 21_000;
/// Concurrent JSON-RPC connections.
const RPC_CONNECTIONS: usize = 64;

struct Config {
    senders: u64,
    blocks: usize,
    rpc_warmup: Duration,
    rpc_duration: Duration,
}

impl Config {
    fn full() -> Self {
        Self {
            senders: 2_000,
            blocks: 24,
            rpc_warmup: Duration::from_secs(2),
            rpc_duration: Duration::from_secs(10),
        }
    }

    fn quick() -> Self {
        Self {
            senders: 200,
            blocks: 2,
            rpc_warmup: Duration::from_millis(200),
            rpc_duration: Duration::from_secs(1),
        }
    }
}

/// One timed block.
struct BlockRun {
    block: Arc<SealedBlock>,
    /// `build_and_commit`, whole.
    node: Duration,
    /// The same build, by phase (the builder's `BuildTimings`).
    phases: Phases,
    /// Accounts in state after the block.
    accounts: u64,
    /// Nonzero storage slots of the token after the block.
    token_slots: u64,
    /// Raw revm execution of the same transactions.
    raw: Duration,
}

impl BlockRun {
    fn gas(&self) -> u64 {
        self.block.header.gas_used
    }
}

fn main() -> Result<()> {
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            "--rpc-heavy" => return rpc_heavy::run(),
            "-h" | "--help" => {
                println!("usage: cargo run --release -p infera-bench -- [--quick | --rpc-heavy]");
                return Ok(());
            }
            other => return Err(eyre!("unknown argument {other:?} (try --help)")),
        }
    }
    let config = if quick {
        Config::quick()
    } else {
        Config::full()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "infera throughput benchmark{}",
        if quick { " (--quick)" } else { "" }
    );
    println!(
        "machine: {cpus} logical CPUs ({}), {}; figures are noisy on shared machines: compare runs on the same machine only",
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "DEBUG build (use --release)"
        } else {
            "release build"
        },
    );

    // ------------------------------------------------------------------ setup
    let senders: Vec<Key> = (0..config.senders).map(chain::key).collect();
    let deployer = chain::key(u64::MAX);
    let coinbase = chain::fresh_address("coinbase", 0);
    let funded: Vec<Address> = senders
        .iter()
        .chain([&deployer])
        .map(|k| k.address)
        .collect();
    let chain = Arc::new(chain::chain_spec(
        &funded,
        U256::from(10).pow(U256::from(24)),
    )?);
    let genesis_accounts = chain.genesis.alloc.len() as u64;
    let token = deployer.address.create(0);
    let token_per_sender = U256::from(10).pow(U256::from(23));

    let per_eth_block = (GAS_LIMIT / TRANSFER_GAS) as usize;
    let erc20_per_block_max = (GAS_LIMIT / 40_000) as usize;
    println!(
        "chain: id {}, gas limit {} M, {} funded senders, {} genesis accounts; {} timed blocks per workload",
        chain.chain_id(),
        GAS_LIMIT / 1_000_000,
        config.senders,
        genesis_accounts,
        config.blocks
    );

    let t = std::time::Instant::now();
    let mut nonces = vec![0u64; senders.len()];
    let mut next = |i: usize| {
        let n = nonces[i];
        nonces[i] += 1;
        n
    };
    let mut setup_unsigned = vec![Unsigned::new(
        deployer,
        0,
        TxKind::Create,
        U256::ZERO,
        3_000_000,
        chain::erc20_creation_code()?,
    )];
    for (i, key) in senders.iter().enumerate() {
        setup_unsigned.push(Unsigned::new(
            deployer,
            i as u64 + 1,
            TxKind::Call(token),
            U256::ZERO,
            ERC20_GAS,
            chain::erc20_transfer(key.address, token_per_sender),
        ));
    }
    let eth_count = config.blocks * per_eth_block;
    let eth_unsigned: Vec<Unsigned> = (0..eth_count)
        .map(|k| {
            let s = k % senders.len();
            Unsigned::new(
                senders[s],
                next(s),
                TxKind::Call(chain::fresh_address("eth-recipient", k as u64)),
                U256::from(1_000_000_000u64),
                TRANSFER_GAS,
                Default::default(),
            )
        })
        .collect();
    let erc20_count = config.blocks * erc20_per_block_max;
    let erc20_unsigned: Vec<Unsigned> = (0..erc20_count)
        .map(|k| {
            let s = k % senders.len();
            Unsigned::new(
                senders[s],
                next(s),
                TxKind::Call(token),
                U256::ZERO,
                ERC20_GAS,
                chain::erc20_transfer(
                    chain::fresh_address("erc20-recipient", k as u64),
                    U256::from(1),
                ),
            )
        })
        .collect();
    let setup_txs = chain::sign_all(setup_unsigned);
    let eth_txs = chain::sign_all(eth_unsigned);
    let erc20_txs = chain::sign_all(erc20_unsigned);
    for tx in [&setup_txs[0], &eth_txs[0], &erc20_txs[0]] {
        chain::check_signature(tx)?;
    }
    println!(
        "signed {} transactions in {:.1} s (not timed)",
        setup_txs.len() + eth_txs.len() + erc20_txs.len(),
        t.elapsed().as_secs_f64()
    );

    let node_a = Rig::new(chain.clone(), coinbase)?;
    let node_b = Rig::new(chain.clone(), coinbase)?;
    let rigs = [&node_a, &node_b];
    let mut timestamp = 1_800_000_000u64;
    let mut produce = |rigs: [&Rig; 2]| -> Result<(Arc<SealedBlock>, Duration, Phases)> {
        timestamp += 2;
        node::build_pair(rigs[0], rigs[1], timestamp)
    };
    let add = |txs: &[RecoveredTx]| -> Result<()> {
        for rig in rigs {
            rig.add(txs)?;
        }
        Ok(())
    };

    // Setup blocks (not timed): deploy the token, give every sender tokens.
    let mut setup_blocks = Vec::new();
    add(&setup_txs[..1])?;
    setup_blocks.push(produce(rigs)?.0);
    add(&setup_txs[1..])?;
    while node_a.pool_len() > 0 {
        let (block, ..) = produce(rigs)?;
        ensure!(!block.transactions.is_empty(), "setup block is empty");
        setup_blocks.push(block);
    }
    {
        let reader = node_a.db.reader()?;
        let state = reader.latest_state();
        ensure!(
            state.account(token)?.is_some_and(|a| a.has_code()),
            "ERC-20 not deployed"
        );
    }
    // Genesis accounts + token + coinbase.
    let mut accounts = genesis_accounts + 2;
    let mut token_slots = 1 + 1 + config.senders; // totalSupply, deployer, senders
    println!(
        "setup: {} blocks (ERC-20 deployed at {token}, {} holders), not timed",
        setup_blocks.len(),
        config.senders
    );

    // (a) ETH transfers: exactly one full block per pool fill.
    let mut eth_runs = Vec::new();
    for chunk in eth_txs.chunks(per_eth_block) {
        add(chunk)?;
        let (block, node, phases) = produce(rigs)?;
        ensure!(
            block.transactions.len() == chunk.len(),
            "block {} took {} of {} transfers",
            block.header.number,
            block.transactions.len(),
            chunk.len()
        );
        accounts += block.transactions.len() as u64;
        eth_runs.push(BlockRun {
            block,
            node,
            phases,
            accounts,
            token_slots,
            raw: Duration::ZERO,
        });
    }
    ensure!(node_a.pool_len() == 0, "ETH phase left transactions behind");

    // (b) ERC-20 transfers to fresh recipients: keep the pool above one
    // block's worth; the builder fills each block to the gas limit.
    let mut erc20_runs = Vec::new();
    let mut cursor = 0;
    for _ in 0..config.blocks {
        let want = erc20_per_block_max.saturating_sub(node_a.pool_len());
        let end = (cursor + want).min(erc20_txs.len());
        add(&erc20_txs[cursor..end])?;
        cursor = end;
        let (block, node, phases) = produce(rigs)?;
        ensure!(
            block.header.gas_used + ERC20_GAS > GAS_LIMIT,
            "ERC-20 block {} is not full ({} gas)",
            block.header.number,
            block.header.gas_used
        );
        token_slots += block.transactions.len() as u64;
        erc20_runs.push(BlockRun {
            block,
            node,
            phases,
            accounts,
            token_slots,
            raw: Duration::ZERO,
        });
    }

    // Every receipt of the node must be a success (a revert would make the
    // comparison meaningless).
    {
        let reader = node_a.db.reader()?;
        let head = reader.head_number()?.unwrap_or(0);
        for number in 1..=head {
            let receipts = reader.receipts(number)?.unwrap_or_default();
            ensure!(
                receipts.iter().all(|r| r.status()),
                "block {number} has a failed transaction"
            );
        }
    }

    // -------------------------------------------------------------- raw revm
    let mut raw = raw::RawRevm::new(&chain);
    for block in &setup_blocks {
        let (gas, _) = raw.execute_block(block)?;
        ensure!(gas == block.header.gas_used, "setup gas differs");
    }
    for run in eth_runs.iter_mut().chain(erc20_runs.iter_mut()) {
        let (gas, time) = raw.execute_block(&run.block)?;
        ensure!(
            gas == run.gas(),
            "block {}: raw revm used {gas} gas, the node {}",
            run.block.header.number,
            run.gas()
        );
        run.raw = time;
    }

    // ---------------------------------------------------------------- report
    println!();
    println!("== Block execution + commit (Mgas/s, higher is better) ==");
    println!(
        "node = infera_node::builder::build_and_commit (pool selection, revm executor over MDBX state, state root, block + receipts, durable MDBX commit, pool update)"
    );
    println!(
        "raw  = revm 43 transact_commit per tx on CacheDB<EmptyDB>, same blocks, same pre-state (total gas checked equal)"
    );
    println!();
    let summaries = [
        summarize("eth transfers", &eth_runs),
        summarize("erc20 transfers", &erc20_runs),
    ];
    println!(
        "{:<16} {:>6} {:>7} {:>8} {:>12} {:>12} {:>12} {:>8}",
        "workload", "blocks", "txs", "Mgas", "node Mgas/s", "exec Mgas/s", "raw Mgas/s", "ratio"
    );
    for s in &summaries {
        println!(
            "{:<16} {:>6} {:>7} {:>8.1} {:>12.1} {:>12.1} {:>12.1} {:>8.3}",
            s.name,
            s.blocks,
            s.txs,
            s.gas as f64 / 1e6,
            s.node_mgas,
            s.exec_mgas,
            s.raw_mgas,
            s.node_mgas / s.raw_mgas
        );
    }
    println!("(exec Mgas/s = the node's execution phase alone, from the builder's phase timings)");
    println!();
    for s in &summaries {
        println!(
            "{}: node {:.1} Mgas/s (execute+commit), raw revm {:.1} Mgas/s, ratio {:.3} (node execution alone {:.1} Mgas/s, {:.2} of raw)",
            s.name,
            s.node_mgas,
            s.raw_mgas,
            s.node_mgas / s.raw_mgas,
            s.exec_mgas,
            s.exec_mgas / s.raw_mgas
        );
    }

    println!();
    println!(
        "== Where the node's time goes (build_and_commit's phase timings, ms per block, mean) =="
    );
    println!(
        "{:<16} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>9} {:>8} {:>8}",
        "workload",
        "select",
        "execute",
        "apply",
        "root",
        "block",
        "commit",
        "pool",
        "total",
        "exec %",
        "commit %",
        "b&c total",
        "pg MB",
        "io MB"
    );
    for s in &summaries {
        let n = s.blocks as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
        let p = &s.phases;
        let total = p.total().as_secs_f64();
        println!(
            "{:<16} {:>7.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} | {:>7.1}% {:>7.1}% {:>9.1} {:>8.1} {:>8.1}",
            s.name,
            ms(p.select),
            ms(p.execute),
            ms(p.apply),
            ms(p.root),
            ms(p.block),
            ms(p.commit),
            ms(p.pool),
            ms(p.total()),
            100.0 * p.execute.as_secs_f64() / total,
            100.0 * p.commit_side().as_secs_f64() / total,
            ms(s.node),
            p.dirty_bytes as f64 / 1e6 / n,
            p.commit_bytes as f64 / 1e6 / n,
        );
    }
    println!(
        "select = pool.best_transactions; execute = BlockExecutor (EVM + receipts); apply = apply_state (plain/hashed/history tables);"
    );
    println!(
        "root = state_root (storage roots of touched accounts over all their slots + account trie over ALL accounts);"
    );
    println!(
        "block = tx/receipt roots, header, insert_block; commit = MDBX durable commit (fsync); pool = on_new_block;"
    );
    println!(
        "pg MB = MDBX pages allocated or copied-on-write per block (page ops newly + cow): what the commit writes; io MB = /proc/self/io write_bytes during the build, i.e. its commit (kernel page-cache accounting, can count whole large folios);"
    );
    println!(
        "commit % = apply + root + block + commit; b&c total = the real build_and_commit on the other database."
    );

    for (name, runs) in [
        ("eth transfers", &eth_runs),
        ("erc20 transfers", &erc20_runs),
    ] {
        println!();
        println!("-- per block: {name} --");
        println!(
            "{:>6} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9}",
            "block",
            "txs",
            "accts",
            "slots",
            "exec",
            "apply",
            "root",
            "commit",
            "MB",
            "pg MB",
            "b&c ms",
            "raw ms",
            "node Mg/s",
            "raw Mg/s"
        );
        for r in runs.iter() {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{:>6} {:>6} {:>7} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1} {:>9.1}",
                r.block.header.number,
                r.block.transactions.len(),
                r.accounts,
                r.token_slots,
                ms(r.phases.execute),
                ms(r.phases.apply),
                ms(r.phases.root),
                ms(r.phases.commit),
                r.phases.commit_bytes as f64 / 1e6,
                r.phases.dirty_bytes as f64 / 1e6,
                ms(r.node),
                ms(r.raw),
                r.gas() as f64 / 1e6 / r.node.as_secs_f64(),
                r.gas() as f64 / 1e6 / r.raw.as_secs_f64(),
            );
        }
    }
    println!(
        "(accts = accounts in state; slots = the token's storage slots; exec/apply/root/commit from the builder's phase timings;"
    );
    println!(
        " MB = io MB, write_bytes during the build, i.e. its commit; pg MB = pages MDBX allocated or copied-on-write in the block's write transaction)"
    );

    // State root vs number of accounts: least squares over the ETH blocks
    // (accounts grow by one per transfer; the root walks all of them).
    println!();
    println!("== State root cost vs number of accounts ==");
    let points: Vec<(f64, f64)> = eth_runs
        .iter()
        .map(|r| (r.accounts as f64, r.phases.root.as_secs_f64() * 1e3))
        .collect();
    if let Some((a, b)) = linear_fit(&points) {
        println!(
            "eth blocks: root_ms ~= {a:.2} + {:.3} * (accounts / 1000)  (fit over {} blocks, {}..{} accounts)",
            b * 1000.0,
            points.len(),
            points.first().map_or(0.0, |p| p.0),
            points.last().map_or(0.0, |p| p.0)
        );
        for n in [100_000f64, 1_000_000.0, 10_000_000.0] {
            let root_ms = a + b * n;
            println!(
                "  extrapolated at {:>10} accounts: state root {:>9.0} ms per block -> at most {:>7.1} Mgas/s for 60 M-gas blocks from the root alone",
                n as u64,
                root_ms,
                GAS_LIMIT as f64 / 1e6 / (root_ms / 1e3)
            );
        }
    }
    let idle_root = node_a.time_state_root()?;
    println!(
        "state_root() with no changes at the end ({accounts} accounts, {token_slots} token slots): {:.1} ms",
        idle_root.as_secs_f64() * 1e3
    );

    let (live, high_water) = node_a.used_bytes()?;
    println!(
        "database at the end ({} blocks): {:.1} MB in live pages, data file high-water mark {:.1} MB",
        node_a.head()?.number,
        live as f64 / 1e6,
        high_water as f64 / 1e6
    );

    // --------------------------------------------------------------- JSON-RPC
    println!();
    println!(
        "== JSON-RPC over HTTP on loopback: {RPC_CONNECTIONS} connections (one keep-alive connection per task, one request in flight each) =="
    );
    println!(
        "server = infera_rpc::start_servers over the benchmark database (head block {}), client in the same process: both share the {cpus} CPUs",
        node_a.head()?.number
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(async {
        let (addr, servers) =
            rpc::start(node_a.db.clone(), chain.clone(), node_a.pool.clone()).await?;
        let block_number = rpc::load(
            addr,
            "eth_blockNumber",
            r#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#.to_string(),
            RPC_CONNECTIONS,
            config.rpc_warmup,
            config.rpc_duration,
            |v| {
                v.as_str()
                    .is_some_and(|s| s.starts_with("0x") && s.len() > 2)
            },
        )
        .await?;
        let call_body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_call",
            "params": [
                { "to": token, "data": chain::erc20_balance_of(senders[0].address) },
                "latest"
            ]
        })
        .to_string();
        let call = rpc::load(
            addr,
            "eth_call balanceOf",
            call_body,
            RPC_CONNECTIONS,
            config.rpc_warmup,
            config.rpc_duration,
            |v| {
                v.as_str()
                    .is_some_and(|s| s.len() == 66 && s != "0x".to_owned() + &"0".repeat(64))
            },
        )
        .await?;
        servers.stop().await;
        Ok::<_, eyre::Report>([block_number, call])
    })?;
    println!(
        "{:<20} {:>6} {:>10} {:>8} {:>11} {:>9} {:>9} {:>9}",
        "method", "conns", "requests", "errors", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for r in &results {
        println!(
            "{:<20} {:>6} {:>10} {:>8} {:>11.0} {:>9.3} {:>9.3} {:>9.3}",
            r.method,
            r.connections,
            r.requests,
            r.errors,
            r.rps(),
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.max.as_secs_f64() * 1e3,
        );
    }
    for r in &results {
        println!("sample response, {}: {}", r.method, r.sample.trim());
    }
    for r in &results {
        ensure!(
            r.errors == 0,
            "{}: {} of {} responses were errors (sample: {})",
            r.method,
            r.errors,
            r.requests,
            r.sample
        );
        ensure!(r.requests > 0, "{}: no request completed", r.method);
    }
    println!();
    println!(
        "done: all blocks identical on both databases, gas equal to raw revm, every receipt and RPC response a success"
    );
    Ok(())
}

struct Summary {
    name: &'static str,
    blocks: usize,
    txs: usize,
    gas: u64,
    node: Duration,
    phases: Phases,
    node_mgas: f64,
    exec_mgas: f64,
    raw_mgas: f64,
}

fn summarize(name: &'static str, runs: &[BlockRun]) -> Summary {
    let gas: u64 = runs.iter().map(BlockRun::gas).sum();
    let node: Duration = runs.iter().map(|r| r.node).sum();
    let raw: Duration = runs.iter().map(|r| r.raw).sum();
    let mut phases = Phases::default();
    for r in runs {
        phases.add(&r.phases);
    }
    let mgas = |d: Duration| gas as f64 / 1e6 / d.as_secs_f64();
    Summary {
        name,
        blocks: runs.len(),
        txs: runs.iter().map(|r| r.block.transactions.len()).sum(),
        gas,
        node,
        phases,
        node_mgas: mgas(node),
        exec_mgas: mgas(phases.execute),
        raw_mgas: mgas(raw),
    }
}

/// Least squares y = a + b x.
fn linear_fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(sxy, sxx), (x, y)| {
        (sxy + (x - mx) * (y - my), sxx + (x - mx) * (x - mx))
    });
    if sxx == 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}
