//! GeneralStateTests: one transaction on a pre-state, for every fork and
//! every (data, gas, value) index the fixture lists, through the node's
//! [`BlockExecutor`]; the post state root and the logs hash must match.
//!
//! The transaction is the fixture's signed `txbytes`, decoded and recovered
//! as the node decodes transactions of imported blocks.

use std::{collections::BTreeMap, path::Path};

use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, Log, U256, keccak256};
use infera_evm::{BlockEnvInput, BlockExecutor, EvmError, ExecutionConfig, SpecId, recover_any};
use infera_primitives::{ReceiptEnvelope, TxEnvelope};
use serde::Deserialize;

use crate::{Outcome, memory::MemoryState};

/// One state test (a key of a fixture file).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateTest {
    pub env: Env,
    pub pre: BTreeMap<Address, PreAccount>,
    pub post: BTreeMap<String, Vec<PostEntry>>,
}

/// The block the transaction runs in.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Env {
    pub current_coinbase: Address,
    #[serde(default)]
    pub current_difficulty: U256,
    pub current_gas_limit: U256,
    pub current_number: U256,
    pub current_timestamp: U256,
    #[serde(default)]
    pub current_base_fee: Option<U256>,
    #[serde(default)]
    pub current_random: Option<B256>,
    #[serde(default)]
    pub current_excess_blob_gas: Option<U256>,
    #[serde(default)]
    pub current_chain_id: Option<U256>,
}

/// An account of a fixture's pre-state (state and blockchain tests).
#[derive(Debug, Deserialize)]
pub struct PreAccount {
    pub balance: U256,
    #[serde(default)]
    pub code: Bytes,
    pub nonce: U256,
    #[serde(default)]
    pub storage: BTreeMap<U256, U256>,
}

/// One expected result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostEntry {
    pub hash: B256,
    pub logs: B256,
    #[serde(default)]
    pub txbytes: Bytes,
    pub indexes: Indexes,
    #[serde(default)]
    pub expect_exception: Option<String>,
}

/// Which data, gas limit and value the transaction uses.
#[derive(Debug, Deserialize)]
pub struct Indexes {
    pub data: usize,
    pub gas: usize,
    pub value: usize,
}

/// revm's rules for a fixture's fork name; `None` for forks revm does not
/// model separately (Constantinople with EIP-1283) and transition forks.
pub fn spec_of_fork(name: &str) -> Option<SpecId> {
    Some(match name {
        "Frontier" => SpecId::FRONTIER,
        "Homestead" => SpecId::HOMESTEAD,
        "EIP150" => SpecId::TANGERINE,
        "EIP158" => SpecId::SPURIOUS_DRAGON,
        "Byzantium" => SpecId::BYZANTIUM,
        "ConstantinopleFix" | "Petersburg" => SpecId::PETERSBURG,
        "Istanbul" => SpecId::ISTANBUL,
        "Berlin" => SpecId::BERLIN,
        "London" => SpecId::LONDON,
        "Paris" | "Merge" => SpecId::MERGE,
        "Shanghai" => SpecId::SHANGHAI,
        "Cancun" => SpecId::CANCUN,
        "Prague" => SpecId::PRAGUE,
        "Osaka" => SpecId::OSAKA,
        _ => return None,
    })
}

/// Builds a [`MemoryState`] from a fixture's `pre`.
pub fn pre_state(pre: &BTreeMap<Address, PreAccount>) -> Result<MemoryState, String> {
    let mut state = MemoryState::default();
    for (address, account) in pre {
        let nonce = u64::try_from(account.nonce)
            .map_err(|_| format!("nonce of {address} does not fit 64 bits"))?;
        state.insert(
            *address,
            nonce,
            account.balance,
            account.code.clone(),
            account.storage.iter().map(|(k, v)| (*k, *v)),
        );
    }
    Ok(state)
}

/// keccak256 of the RLP list of logs, as state tests give it.
pub fn logs_hash(logs: &[Log]) -> B256 {
    let mut out = Vec::new();
    alloy_rlp::encode_list(logs, &mut out);
    keccak256(out)
}

fn saturating_u64(value: U256) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// Runs every result of one fixture file. Results for forks the runner
/// does not model are reported as skipped (`Outcome::skipped`).
pub fn run_file(path: &Path) -> Vec<Outcome> {
    let file = path.display().to_string();
    let tests: BTreeMap<String, StateTest> = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(tests) => tests,
        Err(err) => return vec![Outcome::failed(file, "cannot parse fixture file", err)],
    };
    let mut outcomes = Vec::new();
    for (name, test) in &tests {
        let pre = match pre_state(&test.pre) {
            Ok(pre) => pre,
            Err(err) => {
                outcomes.push(Outcome::failed(&file, name, err));
                continue;
            }
        };
        for (fork, entries) in &test.post {
            for entry in entries {
                let i = &entry.indexes;
                let id = format!("{name}[{fork}:d{},g{},v{}]", i.data, i.gas, i.value);
                let Some(spec) = spec_of_fork(fork) else {
                    outcomes.push(Outcome::skipped(
                        &file,
                        id,
                        format!("fork {fork} not modelled"),
                    ));
                    continue;
                };
                let result = run_one(test, &pre, spec, entry);
                outcomes.push(Outcome::new(&file, id, result));
            }
        }
    }
    outcomes
}

/// Runs one (fork, indexes) result.
pub fn run_one(
    test: &StateTest,
    pre: &MemoryState,
    spec: SpecId,
    entry: &PostEntry,
) -> Result<(), String> {
    let env = &test.env;
    let tx = TxEnvelope::decode_2718(&mut entry.txbytes.as_ref())
        .map_err(|e| e.to_string())
        .and_then(|tx| recover_any(tx).map_err(|e| e.to_string()));
    let tx = match (tx, &entry.expect_exception) {
        (Ok(tx), _) => tx,
        (Err(_), Some(_)) => return Ok(()),
        (Err(err), None) => return Err(format!("transaction does not decode: {err}")),
    };
    let cfg = ExecutionConfig {
        chain_id: env.current_chain_id.map_or(1, saturating_u64),
        spec,
    };
    let block = BlockEnvInput {
        number: saturating_u64(env.current_number),
        timestamp: saturating_u64(env.current_timestamp),
        beneficiary: env.current_coinbase,
        gas_limit: saturating_u64(env.current_gas_limit),
        base_fee_per_gas: env.current_base_fee.map_or(0, saturating_u64),
        prevrandao: env.current_random.unwrap_or_default(),
        excess_blob_gas: env.current_excess_blob_gas.map_or(0, saturating_u64),
        parent_hash: B256::ZERO,
        parent_beacon_block_root: None,
        difficulty: env.current_difficulty,
        blob_base_fee_update_fraction: None,
    };
    let mut executor =
        BlockExecutor::new(pre, cfg, block).map_err(|e| format!("executor setup: {e}"))?;
    let logs = match executor.execute_transaction(&tx) {
        Ok(receipt) => receipt_logs(receipt),
        Err(EvmError::InvalidTransaction(err)) => {
            return match &entry.expect_exception {
                Some(_) => Ok(()),
                None => Err(format!("transaction rejected: {err}")),
            };
        }
        Err(err) => return Err(format!("execution failed: {err}")),
    };
    if let Some(expected) = &entry.expect_exception {
        return Err(format!(
            "expected exception {expected}, but the transaction executed"
        ));
    }
    let mut post = pre.clone();
    post.apply(&executor.finish().changes);
    let got_logs = logs_hash(&logs);
    if got_logs != entry.logs {
        return Err(format!("logs hash {got_logs}, expected {}", entry.logs));
    }
    let root = post.state_root();
    if root != entry.hash {
        return Err(format!("state root {root}, expected {}", entry.hash));
    }
    Ok(())
}

fn receipt_logs(receipt: &ReceiptEnvelope) -> Vec<Log> {
    receipt.logs().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_names_map_to_revm_specs() {
        assert_eq!(spec_of_fork("Cancun"), Some(SpecId::CANCUN));
        assert_eq!(spec_of_fork("ConstantinopleFix"), Some(SpecId::PETERSBURG));
        assert_eq!(spec_of_fork("Constantinople"), None);
        assert_eq!(spec_of_fork("ShanghaiToCancunAtTime15k"), None);
    }

    #[test]
    fn no_logs_hash_is_keccak_of_empty_list() {
        assert_eq!(
            logs_hash(&[]),
            alloy_primitives::b256!(
                "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
            )
        );
    }
}
