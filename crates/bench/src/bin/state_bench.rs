//! State-size sweep (issue 16): block execution + commit over a large state.
//!
//! ```text
//! cargo run --release --locked -p infera-bench --bin state-bench -- --accounts N --holders M [--blocks K]
//! ```
//!
//! Seeds two databases directly through storage's writer (no transactions):
//! `N` funded accounts and the test ERC-20 whose `balanceOf` mapping has `M`
//! holders. The seed goes in as empty blocks (at most
//! [`SEED_BATCH_ENTRIES`] accounts or slots each), each applied with
//! `apply_state`, given its `state_root` and inserted like a built block, so
//! every header's root matches the tables and memory stays bounded.
//!
//! Then `K` full 60 M-gas blocks of ETH transfers between existing accounts
//! and `K` of ERC-20 transfers between existing holders go through
//! `infera_node::builder::build_and_commit_timed` (the builder's own
//! per-phase timers) on one database and again on the other (block hashes
//! checked equal), and through plain revm with the same seeded state
//! in memory (gas checked equal). The last line has the form issue 16 asks
//! for; the line before it holds the ETH figures, and the MB written per
//! block are printed per workload.

#[path = "../chain.rs"]
#[allow(dead_code)]
mod chain;
#[path = "../node.rs"]
#[allow(dead_code)]
mod node;
#[path = "../raw.rs"]
mod raw;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use eyre::{ContextCompat as _, Result, WrapErr as _, ensure, eyre};
use infera_chainspec::{ChainSpec, SpecId};
use infera_primitives::{
    Account, AccountChange, EMPTY_ROOT_HASH, RecoveredTx, SealedBlock, StateChanges,
};

use crate::{
    chain::{ERC20_GAS, GAS_LIMIT, Key, Unsigned},
    node::{Phases, Rig},
};

/// Gas of a plain ETH transfer.
const TRANSFER_GAS: u64 = 21_000;
/// Accounts or token slots per seed block (one write transaction each):
/// bounds the memory of one `StateChanges` and of one MDBX transaction.
const SEED_BATCH_ENTRIES: u64 = 100_000;
/// Most signing keys (senders); the other accounts need no key.
const MAX_SENDERS: u64 = 2_000;
/// Timed blocks of each workload unless `--blocks` says otherwise.
const DEFAULT_BLOCKS: usize = 3;
/// Most timed blocks of each workload (the transactions are signed up front).
const MAX_BLOCKS: usize = 1_000;
/// Most accounts or holders: raw revm keeps all of them in memory.
const MAX_STATE_ENTRIES: u64 = 50_000_000;
/// Wei each seeded account holds (1e24).
const ACCOUNT_BALANCE_WEI: u128 = 1_000_000_000_000_000_000_000_000;
/// Token units each seeded holder holds (1e21).
const HOLDER_BALANCE_UNITS: u128 = 1_000_000_000_000_000_000_000;
/// Storage slot of the ERC-20's `totalSupply`
/// (bin/infera/tests/contracts/src/ERC20.sol: slot 0 = totalSupply).
const TOTAL_SUPPLY_SLOT: u64 = 0;
/// Storage slot of the ERC-20's `balanceOf` mapping (slot 1 in ERC20.sol).
const BALANCES_SLOT: u64 = 1;
/// Upper bound on ERC-20 transfers per 60 M-gas block (a transfer between
/// existing holders costs well above 25,000 gas): the pool is kept this full.
const ERC20_PER_BLOCK_MAX: usize = (GAS_LIMIT / 25_000) as usize;
/// First block timestamp (seconds); each block adds 2.
const START_TIMESTAMP_S: u64 = 1_800_000_000;

const ERC20_ARTIFACT: &str = include_str!("../../../../bin/infera/tests/contracts/out/ERC20.json");

struct Args {
    accounts: u64,
    holders: u64,
    blocks: usize,
}

fn parse_args() -> Result<Option<Args>> {
    let usage = "usage: state-bench --accounts N --holders M [--blocks K]";
    let mut accounts = None;
    let mut holders = None;
    let mut blocks = DEFAULT_BLOCKS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<u64> {
            let v = args
                .next()
                .wrap_err_with(|| format!("{name} needs a value ({usage})"))?;
            v.replace('_', "")
                .parse()
                .wrap_err_with(|| format!("{name}: {v:?} is not a whole number"))
        };
        match arg.as_str() {
            "--accounts" => accounts = Some(value("--accounts")?),
            "--holders" => holders = Some(value("--holders")?),
            "--blocks" => blocks = usize::try_from(value("--blocks")?)?,
            "-h" | "--help" => {
                println!("{usage}");
                return Ok(None);
            }
            other => return Err(eyre!("unknown argument {other:?} ({usage})")),
        }
    }
    let accounts = accounts.wrap_err_with(|| format!("--accounts is required ({usage})"))?;
    let holders = holders.wrap_err_with(|| format!("--holders is required ({usage})"))?;
    for (name, n) in [("--accounts", accounts), ("--holders", holders)] {
        ensure!(
            (1..=MAX_STATE_ENTRIES).contains(&n),
            "{name} {n} is outside 1..={MAX_STATE_ENTRIES}"
        );
    }
    ensure!(
        (1..=MAX_BLOCKS).contains(&blocks),
        "--blocks {blocks} is outside 1..={MAX_BLOCKS}"
    );
    Ok(Some(Args {
        accounts,
        holders,
        blocks,
    }))
}

/// The seeded population: account `i` is sender key `i` for `i < senders`,
/// else a keyless address; holder `j` is account `j` for `j < accounts`, else
/// a keyless address. So every sender is funded and holds tokens.
struct Population {
    senders: Vec<Key>,
    accounts: u64,
    holders: u64,
}

impl Population {
    fn account(&self, i: u64) -> Address {
        match self.senders.get(i as usize) {
            Some(key) => key.address,
            None => chain::fresh_address("state-bench-account", i),
        }
    }

    fn holder(&self, j: u64) -> Address {
        if j < self.accounts {
            self.account(j)
        } else {
            chain::fresh_address("state-bench-holder", j)
        }
    }
}

/// Storage slot of `balanceOf[holder]`: keccak256(pad32(holder) ++ pad32(slot)).
fn balance_slot(holder: Address) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(holder.as_slice());
    preimage[32..].copy_from_slice(&U256::from(BALANCES_SLOT).to_be_bytes::<32>());
    U256::from_be_bytes(keccak256(preimage).0)
}

fn erc20_runtime_code() -> Result<Bytes> {
    let artifact: serde_json::Value = serde_json::from_str(ERC20_ARTIFACT)?;
    let hex = artifact["deployedBytecode"]
        .as_str()
        .wrap_err("ERC20.json has no deployedBytecode string")?;
    Ok(hex.parse()?)
}

/// The seed as a sequence of `StateChanges`, one per seed block: accounts
/// first, then the token's slots (its code and `totalSupply` with the first
/// slot batch).
struct Seed<'a> {
    pop: &'a Population,
    token: Address,
    token_info: Account,
    code: Bytes,
    next_account: u64,
    next_holder: u64,
}

impl Iterator for Seed<'_> {
    type Item = StateChanges;

    fn next(&mut self) -> Option<StateChanges> {
        let mut changes = StateChanges::default();
        if self.next_account < self.pop.accounts {
            let end = (self.next_account + SEED_BATCH_ENTRIES).min(self.pop.accounts);
            for i in self.next_account..end {
                changes.accounts.insert(
                    self.pop.account(i),
                    AccountChange {
                        info: Some(Account::with_balance(U256::from(ACCOUNT_BALANCE_WEI))),
                        ..Default::default()
                    },
                );
            }
            self.next_account = end;
            return Some(changes);
        }
        if self.next_holder < self.pop.holders {
            let mut storage = BTreeMap::new();
            if self.next_holder == 0 {
                changes
                    .contracts
                    .insert(self.token_info.code_hash, self.code.clone());
                storage.insert(
                    U256::from(TOTAL_SUPPLY_SLOT),
                    U256::from(HOLDER_BALANCE_UNITS) * U256::from(self.pop.holders),
                );
            }
            let end = (self.next_holder + SEED_BATCH_ENTRIES).min(self.pop.holders);
            for j in self.next_holder..end {
                storage.insert(
                    balance_slot(self.pop.holder(j)),
                    U256::from(HOLDER_BALANCE_UNITS),
                );
            }
            self.next_holder = end;
            changes.accounts.insert(
                self.token,
                AccountChange {
                    info: Some(self.token_info),
                    storage_wiped: false,
                    storage,
                },
            );
            return Some(changes);
        }
        None
    }
}

/// Writes the seed into `rig`'s database as empty blocks on top of genesis,
/// each with its own state root, as the builder writes a block.
fn seed(rig: &Rig, seed: Seed<'_>, timestamp: &mut u64) -> Result<u64> {
    let mut blocks = 0;
    for changes in seed {
        let parent = rig.head()?;
        let parent_hash = parent.hash_slow();
        let number = parent.number + 1;
        *timestamp += 2;
        let mut writer = rig.db.writer()?;
        writer
            .apply_state(number, &changes)
            .wrap_err_with(|| format!("seed block {number}: apply_state"))?;
        let state_root = writer.state_root()?;
        let header = empty_header(&rig.chain, &parent, parent_hash, *timestamp, state_root);
        writer.insert_block(&SealedBlock::new(header, Vec::new()), &[])?;
        writer.commit()?;
        blocks += 1;
    }
    Ok(blocks)
}

/// The header `build_and_commit` would give an empty block on `parent`.
fn empty_header(
    chain: &ChainSpec,
    parent: &Header,
    parent_hash: B256,
    timestamp: u64,
    state_root: B256,
) -> Header {
    let number = parent.number + 1;
    let timestamp = timestamp.max(parent.timestamp + 1);
    let spec = chain.spec_at(number, timestamp);
    let base_fee = chain.next_base_fee(parent).unwrap_or(0);
    let cancun = spec.is_enabled_in(SpecId::CANCUN);
    Header {
        parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: Address::ZERO,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        logs_bloom: Default::default(),
        difficulty: Default::default(),
        number,
        gas_limit: parent.gas_limit,
        gas_used: 0,
        timestamp,
        extra_data: Bytes::from_static(infera_node::builder::DEV_EXTRA_DATA),
        mix_hash: keccak256(parent_hash),
        nonce: Default::default(),
        base_fee_per_gas: spec.is_enabled_in(SpecId::LONDON).then_some(base_fee),
        withdrawals_root: spec
            .is_enabled_in(SpecId::SHANGHAI)
            .then_some(EMPTY_ROOT_HASH),
        blob_gas_used: cancun.then_some(0),
        excess_blob_gas: cancun.then_some(0),
        parent_beacon_block_root: cancun.then_some(B256::ZERO),
        requests_hash: spec
            .is_enabled_in(SpecId::PRAGUE)
            .then_some(EMPTY_REQUESTS_HASH),
        block_access_list_hash: None,
        slot_number: None,
    }
}

/// The benchmark chain with the seed added to its genesis allocation: the
/// pre-state raw revm starts from (the node's databases hold the same state
/// as genesis + seed blocks).
fn raw_chain(chain: &ChainSpec, seed: Seed<'_>) -> Result<ChainSpec> {
    let mut raw = chain.clone();
    let template = raw
        .genesis
        .alloc
        .values()
        .next()
        .cloned()
        .wrap_err("the benchmark genesis has no allocation")?;
    for changes in seed {
        for (address, change) in changes.accounts {
            let info = change.info.wrap_err("seeded accounts exist")?;
            let entry = raw.genesis.alloc.entry(address).or_insert_with(|| {
                let mut account = template.clone();
                account.storage = None;
                account
            });
            entry.balance = info.balance;
            entry.nonce = Some(info.nonce);
            entry.code = changes
                .contracts
                .get(&info.code_hash)
                .cloned()
                .or(entry.code.take());
            entry.storage.get_or_insert_default().extend(
                change
                    .storage
                    .into_iter()
                    .map(|(slot, value)| (B256::from(slot), B256::from(value))),
            );
        }
    }
    Ok(raw)
}

/// One timed block.
struct BlockRun {
    block: Arc<SealedBlock>,
    node: Duration,
    phases: Phases,
    raw: Duration,
}

fn main() -> Result<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let run_start = Instant::now();
    println!(
        "state-bench: {} logical CPUs ({}), {}; accounts={} holders={} blocks={} per workload",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::env::consts::ARCH,
        if cfg!(debug_assertions) {
            "DEBUG build (use --release)"
        } else {
            "release build"
        },
        args.accounts,
        args.holders,
        args.blocks
    );

    let pop = Population {
        senders: (0..MAX_SENDERS.min(args.accounts).min(args.holders))
            .map(chain::key)
            .collect(),
        accounts: args.accounts,
        holders: args.holders,
    };
    let chain = Arc::new(chain::chain_spec(&[], U256::ZERO)?);
    let coinbase = chain::fresh_address("coinbase", 0);
    let token = chain::fresh_address("state-bench-token", 0);
    let code = erc20_runtime_code()?;
    let new_seed = || Seed {
        pop: &pop,
        token,
        token_info: Account {
            // A contract created under EIP-161 starts with nonce 1.
            nonce: 1,
            balance: U256::ZERO,
            code_hash: keccak256(&code),
        },
        code: code.clone(),
        next_account: 0,
        next_holder: 0,
    };

    // ------------------------------------------------------------- seeding
    let node_a = Rig::new(chain.clone(), coinbase)?;
    let node_b = Rig::new(chain.clone(), coinbase)?;
    let mut timestamp = START_TIMESTAMP_S;
    let mut seed_blocks = 0;
    for rig in [&node_a, &node_b] {
        let t = Instant::now();
        let mut ts = START_TIMESTAMP_S;
        seed_blocks = seed(rig, new_seed(), &mut ts)?;
        timestamp = ts;
        let (live, _) = rig.used_bytes()?;
        println!(
            "seeded: {seed_blocks} seed blocks ({} accounts, token {token} with {} holders) in {:.1} s, {:.1} MB in live pages (not timed)",
            pop.accounts,
            pop.holders,
            t.elapsed().as_secs_f64(),
            live as f64 / 1e6
        );
    }
    ensure!(
        node_a.head()?.hash_slow() == node_b.head()?.hash_slow(),
        "the two seeded databases differ"
    );
    {
        let reader = node_a.db.reader()?;
        let state = infera_primitives::StateReader::storage(
            &reader.latest_state(),
            token,
            balance_slot(pop.holder(pop.holders - 1)),
        )?;
        ensure!(
            state == U256::from(HOLDER_BALANCE_UNITS),
            "the last holder's seeded balance is not readable"
        );
    }

    // -------------------------------------------------------- transactions
    let senders = pop.senders.len() as u64;
    let mut nonces = vec![0u64; pop.senders.len()];
    let mut next = |s: usize| {
        let n = nonces[s];
        nonces[s] += 1;
        n
    };
    // Recipients scattered over the whole population (a multiplicative
    // hash of k), so the trie paths touched are spread like real traffic.
    let scatter = |k: u64, n: u64| k.wrapping_mul(2_654_435_761) % n;
    let per_eth_block = (GAS_LIMIT / TRANSFER_GAS) as usize;
    let eth_unsigned: Vec<Unsigned> = (0..(args.blocks * per_eth_block) as u64)
        .map(|k| {
            let s = (k % senders) as usize;
            Unsigned::new(
                pop.senders[s],
                next(s),
                TxKind::Call(pop.account(scatter(k, pop.accounts))),
                U256::from(1_000_000_000u64),
                TRANSFER_GAS,
                Default::default(),
            )
        })
        .collect();
    let erc20_unsigned: Vec<Unsigned> = (0..(args.blocks * ERC20_PER_BLOCK_MAX) as u64)
        .map(|k| {
            let s = (k % senders) as usize;
            Unsigned::new(
                pop.senders[s],
                next(s),
                TxKind::Call(token),
                U256::ZERO,
                ERC20_GAS,
                chain::erc20_transfer(pop.holder(scatter(k, pop.holders)), U256::from(1)),
            )
        })
        .collect();
    let eth_txs = chain::sign_all(eth_unsigned);
    let erc20_txs = chain::sign_all(erc20_unsigned);
    for tx in [&eth_txs[0], &erc20_txs[0]] {
        chain::check_signature(tx)?;
    }

    // ---------------------------------------------------------- node blocks
    let rigs = [&node_a, &node_b];
    let mut produce = || -> Result<(Arc<SealedBlock>, Duration, Phases)> {
        timestamp += 2;
        node::build_pair(&node_a, &node_b, timestamp)
    };
    let add = |txs: &[RecoveredTx]| -> Result<()> {
        for rig in rigs {
            rig.add(txs)?;
        }
        Ok(())
    };

    let mut eth_runs = Vec::new();
    for chunk in eth_txs.chunks(per_eth_block) {
        add(chunk)?;
        let (block, node, phases) = produce()?;
        ensure!(
            block.transactions.len() == chunk.len(),
            "block {} took {} of {} transfers",
            block.header.number,
            block.transactions.len(),
            chunk.len()
        );
        eth_runs.push(BlockRun {
            block,
            node,
            phases,
            raw: Duration::ZERO,
        });
    }
    ensure!(node_a.pool_len() == 0, "ETH phase left transactions behind");

    let mut erc20_runs = Vec::new();
    let mut cursor = 0;
    for _ in 0..args.blocks {
        let want = ERC20_PER_BLOCK_MAX.saturating_sub(node_a.pool_len());
        let end = (cursor + want).min(erc20_txs.len());
        add(&erc20_txs[cursor..end])?;
        cursor = end;
        let (block, node, phases) = produce()?;
        ensure!(
            block.header.gas_used + ERC20_GAS > GAS_LIMIT,
            "ERC-20 block {} is not full ({} gas)",
            block.header.number,
            block.header.gas_used
        );
        erc20_runs.push(BlockRun {
            block,
            node,
            phases,
            raw: Duration::ZERO,
        });
    }
    {
        let reader = node_a.db.reader()?;
        for run in eth_runs.iter().chain(&erc20_runs) {
            let number = run.block.header.number;
            let receipts = reader.receipts(number)?.unwrap_or_default();
            ensure!(
                receipts.iter().all(|r| r.status()),
                "block {number} has a failed transaction"
            );
        }
    }

    // ------------------------------------------------------------- raw revm
    let t = Instant::now();
    let mut raw = raw::RawRevm::new(&raw_chain(&chain, new_seed())?);
    println!(
        "raw revm: seeded state loaded into CacheDB in {:.1} s (not timed)",
        t.elapsed().as_secs_f64()
    );
    for run in eth_runs.iter_mut().chain(erc20_runs.iter_mut()) {
        let (gas, time) = raw.execute_block(&run.block)?;
        ensure!(
            gas == run.block.header.gas_used,
            "block {}: raw revm used {gas} gas, the node {}",
            run.block.header.number,
            run.block.header.gas_used
        );
        run.raw = time;
    }

    // --------------------------------------------------------------- report
    println!(
        "node = build_and_commit (real, database A), phases from the same build; database B builds the same blocks (same block hashes); raw = revm transact_commit on CacheDB with the same seeded state"
    );
    println!(
        "root_ms = state_root phase, commit_ms = MDBX durable commit phase (fsync), both mean per block; pg MB = pages MDBX allocated or copied-on-write in the block's write transaction (page ops newly + cow) x page size; io MB = /proc/self/io write_bytes during the build, i.e. its commit"
    );
    println!(
        "{:<6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "kind",
        "block",
        "txs",
        "exec ms",
        "apply ms",
        "root ms",
        "block ms",
        "commit",
        "pg MB",
        "io MB",
        "b&c ms",
        "raw ms"
    );
    for (name, runs) in [("eth", &eth_runs), ("erc20", &erc20_runs)] {
        for r in runs.iter() {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let p = &r.phases;
            println!(
                "{:<6} {:>6} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.2}",
                name,
                r.block.header.number,
                r.block.transactions.len(),
                ms(p.execute),
                ms(p.apply),
                ms(p.root),
                ms(p.block),
                ms(p.commit),
                p.dirty_bytes as f64 / 1e6,
                p.commit_bytes as f64 / 1e6,
                ms(r.node),
                ms(r.raw),
            );
        }
    }
    let (live, high_water) = node_a.used_bytes()?;
    println!(
        "database A at the end: {:.1} MB in live pages, data file high-water mark {:.1} MB; {seed_blocks} seed blocks; run took {:.1} s",
        live as f64 / 1e6,
        high_water as f64 / 1e6,
        run_start.elapsed().as_secs_f64()
    );
    for (name, runs) in [("eth", &eth_runs), ("erc20", &erc20_runs)] {
        let n = runs.len() as f64;
        let gas: u64 = runs.iter().map(|r| r.block.header.gas_used).sum();
        let mut phases = Phases::default();
        for r in runs.iter() {
            phases.add(&r.phases);
        }
        println!(
            "state-bench: accounts={} holders={} {name} written_per_block mb={:.1} txs_per_block={:.0}",
            args.accounts,
            args.holders,
            phases.dirty_bytes as f64 / 1e6 / n,
            runs.iter()
                .map(|r| r.block.transactions.len() as f64)
                .sum::<f64>()
                / n,
        );
        let node: Duration = runs.iter().map(|r| r.node).sum();
        let raw: Duration = runs.iter().map(|r| r.raw).sum();
        let node_mgas = gas as f64 / 1e6 / node.as_secs_f64();
        let raw_mgas = gas as f64 / 1e6 / raw.as_secs_f64();
        summaries_line(&args, name, node_mgas, raw_mgas, &phases, n);
    }
    Ok(())
}

/// The line issue 16 specifies (the ERC-20 one is printed last).
fn summaries_line(args: &Args, name: &str, node: f64, raw: f64, phases: &Phases, blocks: f64) {
    println!(
        "state-bench: accounts={} holders={} {name} node={node:.1} Mgas/s raw={raw:.1} Mgas/s ratio={:.4} root_ms={:.1} commit_ms={:.1}",
        args.accounts,
        args.holders,
        node / raw,
        phases.root.as_secs_f64() * 1e3 / blocks,
        phases.commit.as_secs_f64() * 1e3 / blocks,
    );
}
