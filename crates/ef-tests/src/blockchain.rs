//! BlockchainTests: a genesis from the fixture, then every block's RLP
//! through the node's block import (`infera_node::import_block`) into real
//! MDBX storage in a temporary datadir. Blocks marked `expectException`
//! must be refused; at the end the head must be `lastblockhash` and the
//! state must be `postState`.
//!
//! Fork choice is the post-merge one: the last valid block imported becomes
//! the head, unwinding a side chain where needed.

use std::{collections::BTreeMap, path::Path};

use alloy_primitives::{Address, B256, Bytes, U256};
use infera_chainspec::ChainSpec;
use infera_node::{ImportConfig, ImportError, decode_block, import::Block, import_block};
use infera_primitives::{StateReader, keccak256};
use infera_storage::Database;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Outcome, state::PreAccount};

/// One blockchain test (a key of a fixture file).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockchainTest {
    pub network: String,
    pub genesis_block_header: BTreeMap<String, Value>,
    pub pre: BTreeMap<Address, PreAccount>,
    #[serde(default)]
    pub post_state: Option<BTreeMap<Address, PreAccount>>,
    pub lastblockhash: B256,
    pub blocks: Vec<FixtureBlock>,
    #[serde(default)]
    pub config: Option<Value>,
}

/// One block of a blockchain test.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureBlock {
    pub rlp: Bytes,
    #[serde(default)]
    pub expect_exception: Option<String>,
}

/// The `config` of a genesis file for a fixture's network: `Cancun`,
/// `Prague`, ... or a transition such as `PragueToOsakaAtTime15k`.
pub fn network_config(network: &str, chain_id: u64) -> Result<Value, String> {
    const BLOCK_FORKS: [(&str, &str); 10] = [
        ("Homestead", "homesteadBlock"),
        ("EIP150", "eip150Block"),
        ("EIP158", "eip155Block"),
        ("EIP158", "eip158Block"),
        ("Byzantium", "byzantiumBlock"),
        ("ConstantinopleFix", "constantinopleBlock"),
        ("ConstantinopleFix", "petersburgBlock"),
        ("Istanbul", "istanbulBlock"),
        ("Berlin", "berlinBlock"),
        ("London", "londonBlock"),
    ];
    const ORDER: [&str; 15] = [
        "Frontier",
        "Homestead",
        "EIP150",
        "EIP158",
        "Byzantium",
        "Constantinople",
        "ConstantinopleFix",
        "Istanbul",
        "Berlin",
        "London",
        "Paris",
        "Shanghai",
        "Cancun",
        "Prague",
        "Osaka",
    ];
    const TIME_FORKS: [(&str, &str); 4] = [
        ("Shanghai", "shanghaiTime"),
        ("Cancun", "cancunTime"),
        ("Prague", "pragueTime"),
        ("Osaka", "osakaTime"),
    ];
    let (from, to, at) = match network.split_once("To") {
        Some((from, rest)) => {
            let (to, at) = rest
                .split_once("AtTime")
                .ok_or_else(|| format!("unsupported transition network {network}"))?;
            let at: u64 = match at.strip_suffix('k') {
                Some(k) => k.parse::<u64>().map(|k| k * 1000),
                None => at.parse(),
            }
            .map_err(|_| format!("bad transition time in {network}"))?;
            (from, Some(to), at)
        }
        None => (network, None, 0),
    };
    let rank = |name: &str| {
        let name = if name == "Merge" { "Paris" } else { name };
        ORDER
            .iter()
            .position(|f| *f == name)
            .ok_or_else(|| format!("unknown network {name}"))
    };
    let from_rank = rank(from)?;
    let to_rank = to.map(rank).transpose()?;
    let mut config = serde_json::Map::new();
    config.insert("chainId".into(), json!(chain_id));
    for (fork, key) in BLOCK_FORKS {
        if rank(fork)? <= from_rank {
            config.insert(key.into(), json!(0));
        }
    }
    if from_rank >= rank("Paris")? {
        config.insert("mergeNetsplitBlock".into(), json!(0));
        config.insert("terminalTotalDifficulty".into(), json!(0));
        config.insert("terminalTotalDifficultyPassed".into(), json!(true));
    }
    for (fork, key) in TIME_FORKS {
        let r = rank(fork)?;
        if r <= from_rank {
            config.insert(key.into(), json!(0));
        } else if to_rank.is_some_and(|to| r <= to) {
            config.insert(key.into(), json!(at));
        }
    }
    Ok(Value::Object(config))
}

/// The chain spec (genesis file) of a fixture.
pub fn chain_spec(test: &BlockchainTest) -> Result<ChainSpec, String> {
    let chain_id = test
        .config
        .as_ref()
        .and_then(|c| c.get("chainid"))
        .and_then(Value::as_str)
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(1);
    let h = &test.genesis_block_header;
    let field = |name: &str| h.get(name).cloned().unwrap_or(Value::Null);
    let alloc: serde_json::Map<String, Value> = test
        .pre
        .iter()
        .map(|(address, account)| {
            let storage: serde_json::Map<String, Value> = account
                .storage
                .iter()
                .map(|(k, v)| {
                    (
                        B256::from(*k).to_string(),
                        Value::String(B256::from(*v).to_string()),
                    )
                })
                .collect();
            (
                address.to_string(),
                json!({
                    "balance": account.balance,
                    "nonce": format!("{:#x}", account.nonce),
                    "code": account.code,
                    "storage": storage,
                }),
            )
        })
        .collect();
    let genesis = json!({
        "config": network_config(&test.network, chain_id)?,
        "nonce": field("nonce"),
        "timestamp": field("timestamp"),
        "extraData": field("extraData"),
        "gasLimit": field("gasLimit"),
        "difficulty": field("difficulty"),
        "mixHash": field("mixHash"),
        "coinbase": field("coinbase"),
        "baseFeePerGas": field("baseFeePerGas"),
        "excessBlobGas": field("excessBlobGas"),
        "blobGasUsed": field("blobGasUsed"),
        "parentHash": field("parentHash"),
        "number": field("number"),
        "alloc": alloc,
    });
    ChainSpec::from_json(&genesis.to_string()).map_err(|e| e.to_string())
}

/// Runs every test of one fixture file.
pub fn run_file(path: &Path) -> Vec<Outcome> {
    let file = path.display().to_string();
    let tests: BTreeMap<String, BlockchainTest> = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(tests) => tests,
        Err(err) => return vec![Outcome::failed(file, "cannot parse fixture file", err)],
    };
    tests
        .iter()
        .map(|(name, test)| Outcome::new(&file, name, run_test(test)))
        .collect()
}

/// Runs one blockchain test in a fresh temporary datadir.
pub fn run_test(test: &BlockchainTest) -> Result<(), String> {
    let chain = chain_spec(test)?;
    let dir = tempfile::tempdir().map_err(|e| format!("temporary datadir: {e}"))?;
    let db = infera_node::open_datadir(dir.path(), &chain).map_err(|e| e.to_string())?;
    let genesis_hash = db
        .reader()
        .and_then(|r| r.genesis_hash())
        .map_err(|e| e.to_string())?
        .ok_or("no genesis written")?;
    if let Some(expected) = test
        .genesis_block_header
        .get("hash")
        .and_then(|v| serde_json::from_value::<B256>(v.clone()).ok())
        && expected != genesis_hash
    {
        return Err(format!(
            "genesis hash {genesis_hash}, fixture says {expected}"
        ));
    }

    let mut chain_state = Chain::new(genesis_hash);
    let config = ImportConfig::default();
    for (i, fixture_block) in test.blocks.iter().enumerate() {
        let expect = &fixture_block.expect_exception;
        let block = match decode_block(&fixture_block.rlp) {
            Ok(block) => block,
            Err(_) if expect.is_some() => continue,
            Err(err) => return Err(format!("block #{i}: {err}")),
        };
        match chain_state.import(&db, &chain, block, config) {
            Ok(()) if expect.is_some() => {
                return Err(format!(
                    "block #{i} was imported, but it must fail with {}",
                    expect.as_deref().unwrap_or_default()
                ));
            }
            Ok(()) => {}
            Err(
                ImportError::Invalid { .. }
                | ImportError::Malformed { .. }
                | ImportError::NotOnHead { .. },
            ) if expect.is_some() => {}
            Err(err) => return Err(format!("block #{i}: {err}")),
        }
    }

    let reader = db.reader().map_err(|e| e.to_string())?;
    let head = reader
        .head_number()
        .and_then(|n| reader.canonical_hash(n.unwrap_or_default()))
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if head != test.lastblockhash {
        return Err(format!("head is {head}, expected {}", test.lastblockhash));
    }
    if let Some(post) = &test.post_state {
        check_post_state(&reader, post)?;
    }
    Ok(())
}

/// Compares the stored state with the fixture's `postState`: the state root
/// of the head (which import checked against storage's own root) must be the
/// root of `postState`, and every listed account must read back as listed.
fn check_post_state(
    reader: &infera_storage::Reader,
    post: &BTreeMap<Address, PreAccount>,
) -> Result<(), String> {
    let expected_root = crate::state::pre_state(post)?.state_root();
    let head = reader
        .head_number()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let header = reader
        .header(head)
        .map_err(|e| e.to_string())?
        .ok_or("head header missing")?;
    let state = reader.latest_state();
    for (address, expected) in post {
        let account = state
            .account(*address)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("post state: account {address} missing"))?;
        if account.balance != expected.balance || U256::from(account.nonce) != expected.nonce {
            return Err(format!(
                "post state: {address} has balance {} nonce {}, expected {} and {}",
                account.balance, account.nonce, expected.balance, expected.nonce
            ));
        }
        let code_hash = if expected.code.is_empty() {
            infera_primitives::KECCAK256_EMPTY
        } else {
            keccak256(&expected.code)
        };
        if account.code_hash != code_hash {
            return Err(format!("post state: code of {address} differs"));
        }
        for (slot, value) in &expected.storage {
            let got = state.storage(*address, *slot).map_err(|e| e.to_string())?;
            if got != *value {
                return Err(format!(
                    "post state: {address} slot {slot:#x} is {got:#x}, expected {value:#x}"
                ));
            }
        }
    }
    if header.state_root != expected_root {
        return Err(format!(
            "post state root {expected_root} differs from the head's {}",
            header.state_root
        ));
    }
    Ok(())
}

/// The blocks imported so far, for switching to a side chain: the
/// post-merge rule makes the last valid block imported the head.
struct Chain {
    genesis: B256,
    known: BTreeMap<B256, Block>,
}

impl Chain {
    fn new(genesis: B256) -> Self {
        Self {
            genesis,
            known: BTreeMap::new(),
        }
    }

    fn import(
        &mut self,
        db: &Database,
        chain: &ChainSpec,
        block: Block,
        config: ImportConfig,
    ) -> Result<(), ImportError> {
        let previous_head = head_hash(db)?;
        let parent = block.header.parent_hash;
        if parent != previous_head {
            if parent != self.genesis && !self.known.contains_key(&parent) {
                return Err(ImportError::Invalid {
                    number: block.header.number,
                    hash: block.header.hash_slow(),
                    reason: format!("unknown parent {parent}"),
                });
            }
            self.set_head(db, chain, parent, config)?;
        }
        match import_block(db, chain, &block, config) {
            Ok(committed) => {
                self.known.insert(committed.block.hash, block);
                Ok(())
            }
            Err(err) => {
                if parent != previous_head {
                    self.set_head(db, chain, previous_head, config)?;
                }
                Err(err)
            }
        }
    }

    /// Makes the known block `target` the head: unwinds to the newest
    /// canonical ancestor and re-imports the blocks from there.
    fn set_head(
        &self,
        db: &Database,
        chain: &ChainSpec,
        target: B256,
        config: ImportConfig,
    ) -> Result<(), ImportError> {
        let mut path = Vec::new();
        let mut cursor = target;
        let ancestor = loop {
            let reader = db.reader()?;
            if let Some(number) = reader.block_number(cursor)?
                && reader.canonical_hash(number)? == Some(cursor)
            {
                break number;
            }
            let block = self.known.get(&cursor).ok_or_else(|| {
                ImportError::Node(infera_node::NodeError::Invariant(format!(
                    "block {cursor} is neither canonical nor known"
                )))
            })?;
            path.push(block);
            cursor = block.header.parent_hash;
        };
        let mut writer = db.writer()?;
        writer.unwind_to(ancestor)?;
        writer.commit()?;
        for block in path.into_iter().rev() {
            import_block(db, chain, block, config)?;
        }
        Ok(())
    }
}

fn head_hash(db: &Database) -> Result<B256, ImportError> {
    let reader = db.reader()?;
    let head = reader.head_number()?.unwrap_or_default();
    Ok(reader.canonical_hash(head)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_map_to_fork_schedules() {
        let cancun = network_config("Cancun", 1).unwrap();
        assert_eq!(cancun["cancunTime"], json!(0));
        assert_eq!(cancun["londonBlock"], json!(0));
        assert!(cancun.get("pragueTime").is_none());
        let t = network_config("PragueToOsakaAtTime15k", 1).unwrap();
        assert_eq!(t["pragueTime"], json!(0));
        assert_eq!(t["osakaTime"], json!(15_000));
        let berlin = network_config("Berlin", 1).unwrap();
        assert!(berlin.get("londonBlock").is_none());
        assert!(network_config("Nowhere", 1).is_err());
    }
}
