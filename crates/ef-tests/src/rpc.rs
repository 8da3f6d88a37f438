//! execution-apis JSON-RPC conformance: imports `tests/chain.rlp` with its
//! `genesis.json` through the node's block import, makes the block named in
//! `headfcu.json` the head, starts the node's own RPC server (`infera-rpc`)
//! on a free local port, and replays every `.io` file over HTTP.
//!
//! Comparison follows the hive `rpc-compat` harness: the response and the
//! expected line compare as JSON values, with the error `message` ignored
//! (codes and data compared), and the receipt members the node adds beyond
//! the spec ([`RECEIPT_EXTENSIONS`]) ignored where the expected receipt lacks
//! them. `speconly` tests promise only the shape of
//! the answer: they pass when the response has the expected member
//! (`result` or `error`) with a value of the same JSON type, and are counted
//! separately.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use infera_chainspec::ChainSpec;
use infera_node::{ImportConfig, decode_blocks, import_chain};
use infera_primitives::B256;
use infera_rpc::{RpcConfig, RpcContext};
use infera_txpool::{PoolConfig, TxAdmission};
use serde_json::Value;

/// Seconds one request may take before it counts as failed.
pub const REQUEST_TIMEOUT_S: u64 = 30;

/// The result of one `.io` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcOutcome {
    /// The method directory, e.g. `eth_getBlockByNumber`.
    pub method: String,
    /// The file name without `.io`.
    pub name: String,
    /// Schema-only test (`speconly`).
    pub spec_only: bool,
    /// `Ok` or the first difference.
    pub result: Result<(), String>,
}

/// Totals of an RPC run; `speconly` tests counted apart as well.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub spec_only_passed: usize,
    pub spec_only_failed: usize,
}

impl Summary {
    pub fn new(outcomes: &[RpcOutcome]) -> Self {
        let mut s = Self::default();
        for o in outcomes {
            match (o.result.is_ok(), o.spec_only) {
                (true, false) => s.passed += 1,
                (false, false) => s.failed += 1,
                (true, true) => s.spec_only_passed += 1,
                (false, true) => s.spec_only_failed += 1,
            }
        }
        s
    }

    /// Percent of all tests (value-compared and `speconly`) that passed.
    pub fn percent(&self) -> f64 {
        let passed = self.passed + self.spec_only_passed;
        let total = passed + self.failed + self.spec_only_failed;
        if total == 0 {
            0.0
        } else {
            100.0 * passed as f64 / total as f64
        }
    }

    /// `N passed, M failed (...)`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed ({:.1}%; of them speconly: {} passed, {} failed)",
            self.passed + self.spec_only_passed,
            self.failed + self.spec_only_failed,
            self.percent(),
            self.spec_only_passed,
            self.spec_only_failed
        )
    }
}

/// Counts per method: (passed, failed).
pub fn per_method(outcomes: &[RpcOutcome]) -> BTreeMap<String, (usize, usize)> {
    let mut map: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let entry = map.entry(o.method.clone()).or_default();
        if o.result.is_ok() {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
    map
}

/// Every `.io` file under `dir`, sorted.
pub fn io_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if p.extension().is_some_and(|e| e == "io") {
            files.push(p);
        }
    }
    files.sort();
    files
}

/// Imports the test chain into `datadir` and sets the head from `headfcu.json`.
pub fn prepare_chain(
    tests_dir: &Path,
    datadir: &Path,
) -> Result<(infera_storage::Database, ChainSpec), String> {
    let chain = ChainSpec::from_file(&tests_dir.join("genesis.json")).map_err(|e| e.to_string())?;
    let bytes =
        std::fs::read(tests_dir.join("chain.rlp")).map_err(|e| format!("chain.rlp: {e}"))?;
    let blocks = decode_blocks(&bytes)?;
    let db = infera_node::open_datadir(datadir, &chain).map_err(|e| e.to_string())?;
    let config = ImportConfig {
        allow_pre_merge: true,
    };
    import_chain(&db, &chain, &blocks, config, |_| {}).map_err(|e| e.to_string())?;

    let fcu: Value = std::fs::read_to_string(tests_dir.join("headfcu.json"))
        .map_err(|e| format!("headfcu.json: {e}"))
        .and_then(|s| serde_json::from_str(&s).map_err(|e| format!("headfcu.json: {e}")))?;
    let head: B256 = serde_json::from_value(fcu["params"][0]["headBlockHash"].clone())
        .map_err(|e| format!("headfcu.json has no headBlockHash: {e}"))?;
    let reader = db.reader().map_err(|e| e.to_string())?;
    let number = reader
        .block_number(head)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("head {head} of headfcu.json is not in chain.rlp"))?;
    let stored_head = reader
        .head_number()
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    drop(reader);
    if number != stored_head {
        let mut writer = db.writer().map_err(|e| e.to_string())?;
        writer.unwind_to(number).map_err(|e| e.to_string())?;
        writer.commit().map_err(|e| e.to_string())?;
    }
    Ok((db, chain))
}

/// Runs every `.io` test of `tests_dir` (execution-apis' `tests/`).
pub fn run(tests_dir: &Path) -> Result<Vec<RpcOutcome>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary datadir: {e}"))?;
    let (db, chain) = prepare_chain(tests_dir, dir.path())?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let ctx = RpcContext::new(
        TxAdmission::standalone(db, Arc::new(chain), PoolConfig::default()),
        infera_precompiles::ModelCache::shared(),
        RpcConfig::default(),
    );
    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
    let servers = runtime
        .block_on(infera_rpc::start_servers(ctx, Some(local), None))
        .map_err(|e| format!("starting the RPC server: {e}"))?;
    let addr = servers
        .http_addr
        .ok_or("the RPC server has no HTTP address")?;
    let url = format!("http://{addr}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(REQUEST_TIMEOUT_S)))
        .http_status_as_error(false)
        .build()
        .into();

    let outcomes = io_files(tests_dir)
        .iter()
        .map(|path| {
            let method = path
                .parent()
                .and_then(Path::file_name)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let spec_only = is_spec_only(&text);
            let result = replay(&agent, &url, &text, spec_only);
            RpcOutcome {
                method,
                name,
                spec_only,
                result,
            }
        })
        .collect();
    runtime.block_on(servers.stop());
    Ok(outcomes)
}

/// A test whose comments say `speconly` checks only the answer's shape.
pub fn is_spec_only(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("//") && l.contains("speconly"))
}

/// Replays one `.io` script against `url`.
fn replay(agent: &ureq::Agent, url: &str, text: &str, spec_only: bool) -> Result<(), String> {
    let mut response: Option<Value> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if let Some(request) = line.strip_prefix(">>") {
            let mut resp = agent
                .post(url)
                .header("content-type", "application/json")
                .send(request.trim())
                .map_err(|e| format!("request failed: {e}"))?;
            let body = resp
                .body_mut()
                .read_to_string()
                .map_err(|e| format!("reading the response: {e}"))?;
            response = Some(
                serde_json::from_str(&body)
                    .map_err(|e| format!("response is not JSON ({e}): {body}"))?,
            );
        } else if let Some(expected) = line.strip_prefix("<<") {
            let got = response.take().ok_or("response line before any request")?;
            let want: Value = serde_json::from_str(expected.trim())
                .map_err(|e| format!("expected line is not JSON: {e}"))?;
            compare(&got, &want, spec_only)?;
        } else {
            return Err(format!("invalid line in test script: {line}"));
        }
    }
    if response.is_some() {
        return Err("a request has no expected response".into());
    }
    Ok(())
}

/// Receipt members the node returns beyond the spec's `ReceiptInfo`, as
/// anvil, reth and erigon do: `blockTimestamp` on every receipt, and
/// `blobGasPrice` on every receipt from Cancun on (the spec names it for
/// blob transactions only). Where the expected receipt has one (a blob
/// transaction's `blobGasPrice`), it is compared like any member.
pub const RECEIPT_EXTENSIONS: &[&str] = &["blockTimestamp", "blobGasPrice"];

/// Removes from `got`'s receipts the [`RECEIPT_EXTENSIONS`] members that
/// the expected receipts at the same place lack.
fn strip_receipt_extensions(got: &mut Value, want: &Value) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let is_receipt = ["transactionHash", "cumulativeGasUsed", "logsBloom"]
                .iter()
                .all(|k| w.contains_key(*k));
            if is_receipt {
                for key in RECEIPT_EXTENSIONS {
                    if !w.contains_key(*key) {
                        g.remove(*key);
                    }
                }
            }
            for (key, value) in g.iter_mut() {
                if let Some(w) = w.get(key) {
                    strip_receipt_extensions(value, w);
                }
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            for (g, w) in g.iter_mut().zip(w) {
                strip_receipt_extensions(g, w);
            }
        }
        _ => {}
    }
}

/// Compares a response with the expected one (see the module docs).
pub fn compare(got: &Value, want: &Value, spec_only: bool) -> Result<(), String> {
    if spec_only {
        for member in ["result", "error"] {
            if let Some(w) = want.get(member) {
                let g = got
                    .get(member)
                    .ok_or_else(|| format!("expected a `{member}`, got {}", short(got)))?;
                if json_type(g) != json_type(w) {
                    return Err(format!(
                        "`{member}` is a {}, expected a {}",
                        json_type(g),
                        json_type(w)
                    ));
                }
            }
        }
        return Ok(());
    }
    let mut got = got.clone();
    strip_receipt_extensions(&mut got, want);
    if let (Some(g), Some(w)) = (got.get_mut("error"), want.get("error"))
        && let (Some(g), Some(message)) = (g.as_object_mut(), w.get("message"))
    {
        g.insert("message".into(), message.clone());
    }
    if &got == want {
        Ok(())
    } else {
        Err(first_difference("", &got, want))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 {
        format!("{}…", &s[..300])
    } else {
        s
    }
}

/// The path and values of the first place two JSON values differ.
fn first_difference(path: &str, got: &Value, want: &Value) -> String {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (key, wv) in w {
                match g.get(key) {
                    Some(gv) if gv == wv => {}
                    Some(gv) => return first_difference(&format!("{path}.{key}"), gv, wv),
                    None => return format!("{path}.{key}: missing, expected {}", short(wv)),
                }
            }
            for key in g.keys() {
                if !w.contains_key(key) {
                    return format!("{path}.{key}: not expected (got {})", short(&g[key]));
                }
            }
            format!("{path}: differs")
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                if gv != wv {
                    return first_difference(&format!("{path}[{i}]"), gv, wv);
                }
            }
            format!("{path}: differs")
        }
        _ => format!("{path}: got {}, expected {}", short(got), short(want)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_messages_are_ignored_but_codes_compared() {
        let want = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}});
        let got = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"other words"}});
        assert!(compare(&got, &want, false).is_ok());
        let got = json!({"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"bad"}});
        assert!(
            compare(&got, &want, false)
                .unwrap_err()
                .contains(".error.code")
        );
    }

    #[test]
    fn receipt_extensions_are_ignored_only_where_not_expected() {
        let want = json!({"result": [{"transactionHash": "0x1", "cumulativeGasUsed": "0x5",
            "logsBloom": "0x0", "blobGasPrice": "0x1"}]});
        let mut got = want.clone();
        got["result"][0]["blockTimestamp"] = json!("0x10");
        assert_eq!(compare(&got, &want, false), Ok(()));
        // An expected member still compares.
        got["result"][0]["blobGasPrice"] = json!("0x2");
        assert!(compare(&got, &want, false).is_err());
        // Only in receipts: elsewhere an extra member is a difference.
        let want = json!({"result": {"number": "0x1"}});
        let got = json!({"result": {"number": "0x1", "blockTimestamp": "0x10"}});
        assert!(compare(&got, &want, false).is_err());
    }

    #[test]
    fn values_compare_exactly_and_speconly_by_shape() {
        let want = json!({"jsonrpc":"2.0","id":1,"result":{"a":"0x1","b":[1,2]}});
        let got = json!({"jsonrpc":"2.0","id":1,"result":{"a":"0x1","b":[1,3]}});
        assert_eq!(
            compare(&got, &want, false).unwrap_err(),
            ".result.b[1]: got 3, expected 2"
        );
        assert!(compare(&got, &want, true).is_ok());
        let got = json!({"jsonrpc":"2.0","id":1,"result":"0x1"});
        assert!(compare(&got, &want, true).is_err());
        assert!(is_spec_only(
            "// speconly: client response is only checked for schema validity.\n"
        ));
    }
}
