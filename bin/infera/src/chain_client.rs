//! What the `infera model upload | list | info` commands need to talk to a
//! node: a blocking JSON-RPC client over HTTP, a signing key, and EIP-1559
//! transactions sent and waited for.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use eyre::{WrapErr, bail, eyre};
use secp256k1::SecretKey;
use serde_json::{Value, json};

/// How long one HTTP request may take, in seconds.
const HTTP_TIMEOUT_S: u64 = 60;
/// Largest JSON-RPC response read, in bytes (the node's own default limit).
const MAX_RESPONSE_BYTES: u64 = infera_rpc::DEFAULT_MAX_RESPONSE_BYTES as u64;
/// Largest request an infera node accepts unless started with another
/// `--rpc.max-request-bytes`, in bytes.
pub const NODE_MAX_REQUEST_BYTES: usize = infera_rpc::DEFAULT_MAX_REQUEST_BYTES as usize;
/// HTTP status of a request body over the server's size limit (jsonrpsee
/// answers it, with a "Request is too big" error object, when it gets to).
const HTTP_PAYLOAD_TOO_LARGE: u16 = 413;
/// How often a receipt is polled for, in milliseconds.
const RECEIPT_POLL_MS: u64 = 100;

/// A JSON-RPC error object returned by the node.
#[derive(Debug, Clone)]
pub struct JsonRpcError {
    pub method: String,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl JsonRpcError {
    /// The revert data of an "execution reverted" error (code 3, hex `data`).
    pub fn revert_data(&self) -> Option<Vec<u8>> {
        let hex = self.data.as_ref()?.as_str()?;
        alloy_primitives::hex::decode(hex).ok()
    }

    /// The precompile's custom error named with its fields, when the revert
    /// data is one.
    pub fn decoded_revert(&self) -> Option<String> {
        self.revert_data()
            .and_then(|d| infera_rpc::infera::describe_revert(&d))
    }
}

impl fmt::Display for JsonRpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.decoded_revert() {
            Some(reason) => write!(f, "{} reverted: {reason}", self.method),
            None => write!(
                f,
                "{} failed: {} (code {})",
                self.method, self.message, self.code
            ),
        }
    }
}

impl std::error::Error for JsonRpcError {}

/// A blocking JSON-RPC client over plain HTTP.
pub struct RpcClient {
    url: String,
    agent: ureq::Agent,
    next_id: Cell<u64>,
}

impl RpcClient {
    /// A client for `url` (`http://host:port`). Nothing is sent yet.
    pub fn new(url: &str) -> eyre::Result<Self> {
        if url.starts_with("https://") {
            bail!(
                "--rpc {url}: https is not supported by this client; use the node's plain http endpoint (e.g. http://127.0.0.1:8545) or a local TLS-terminating proxy"
            );
        }
        if !url.starts_with("http://") {
            bail!("--rpc {url}: expected an http:// URL, e.g. http://127.0.0.1:8545");
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(HTTP_TIMEOUT_S)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            url: url.to_string(),
            agent,
            next_id: Cell::new(1),
        })
    }

    /// Sends one request. The outer error is transport trouble (node
    /// unreachable, not JSON-RPC); the inner one is the node's error object.
    pub fn try_request(
        &self,
        method: &str,
        params: Value,
    ) -> eyre::Result<Result<Value, JsonRpcError>> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let request_bytes = body.len();
        let mut resp = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| self.transport_error(method, request_bytes, e))?;
        let status = resp.status();
        if status.as_u16() == HTTP_PAYLOAD_TOO_LARGE {
            bail!(
                "{method}: the request of {request_bytes} bytes exceeds the node's size limit for requests (HTTP 413 from {})",
                self.url
            );
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| eyre!("reading the answer to {method} from {}: {e}", self.url))?;
        let v: Value = serde_json::from_str(&text).map_err(|_| {
            let head: String = text.chars().take(200).collect();
            eyre!(
                "{} is not a JSON-RPC endpoint: {method} got HTTP {status} with {head:?}",
                self.url
            )
        })?;
        if let Some(e) = v.get("error") {
            return Ok(Err(JsonRpcError {
                method: method.to_string(),
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or_default().to_string(),
                data: e.get("data").cloned(),
            }));
        }
        match v.get("result") {
            Some(r) => Ok(Ok(r.clone())),
            None => bail!("{method}: the node's answer has neither result nor error: {v}"),
        }
    }

    /// Names a failed HTTP exchange for what it is: no connection, no answer
    /// in time, or a connection the node closed (after a request over its
    /// size limit, the node answers and closes while the body is still being
    /// written, which the client sees as a broken pipe or a reset).
    fn transport_error(&self, method: &str, request_bytes: usize, e: ureq::Error) -> eyre::Report {
        use std::io::ErrorKind;
        let url = &self.url;
        match &e {
            ureq::Error::Timeout(_) => {
                eyre!("{method}: the node at {url} did not answer within {HTTP_TIMEOUT_S} s ({e})")
            }
            ureq::Error::Io(io)
                if matches!(
                    io.kind(),
                    ErrorKind::BrokenPipe
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                ) =>
            {
                if request_bytes > NODE_MAX_REQUEST_BYTES {
                    eyre!(
                        "{method}: the request of {request_bytes} bytes exceeds the node's limit (an infera node accepts {NODE_MAX_REQUEST_BYTES} bytes unless started with a larger --rpc.max-request-bytes); the node at {url} closed the connection: {e}"
                    )
                } else {
                    eyre!(
                        "{method}: the node at {url} closed the connection during a request of {request_bytes} bytes: {e}"
                    )
                }
            }
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                eyre!("cannot reach the node at {url} ({method}): {e}")
            }
            _ => eyre!("{method} to the node at {url} failed: {e}"),
        }
    }

    /// Sends one request; any error is an error.
    pub fn request(&self, method: &str, params: Value) -> eyre::Result<Value> {
        Ok(self.try_request(method, params)??)
    }

    pub fn chain_id(&self) -> eyre::Result<u64> {
        quantity(&self.request("eth_chainId", json!([]))?)
    }

    /// `eth_call` from `from` to `to`; the inner error is a revert or other
    /// JSON-RPC error.
    pub fn call(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        block: &str,
    ) -> eyre::Result<Result<Vec<u8>, JsonRpcError>> {
        let params = json!([{"from": from, "to": to, "data": hex(data)}, block]);
        Ok(match self.try_request("eth_call", params)? {
            Ok(v) => Ok(hex_bytes(&v)?),
            Err(e) => Err(e),
        })
    }

    /// `eth_estimateGas`; the inner error is a revert or other JSON-RPC error.
    pub fn estimate_gas(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
    ) -> eyre::Result<Result<u64, JsonRpcError>> {
        let params = json!([{"from": from, "to": to, "data": hex(data)}, "latest"]);
        Ok(match self.try_request("eth_estimateGas", params)? {
            Ok(v) => Ok(quantity(&v)?),
            Err(e) => Err(e),
        })
    }

    pub fn nonce(&self, who: Address, block: &str) -> eyre::Result<u64> {
        quantity(&self.request("eth_getTransactionCount", json!([who, block]))?)
    }

    /// Polls for the receipt of `hash` until `timeout`.
    pub fn wait_receipt(&self, hash: B256, timeout: Duration) -> eyre::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let r = self.request("eth_getTransactionReceipt", json!([hash]))?;
            if !r.is_null() {
                return Ok(r);
            }
            if Instant::now() > deadline {
                bail!(
                    "transaction {hash} was not included within {} s; is the node sealing blocks?",
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(RECEIPT_POLL_MS));
        }
    }
}

/// A secp256k1 signing key and its address.
pub struct Signer {
    key: SecretKey,
    pub address: Address,
}

impl Signer {
    /// The private key (for sealing blocks with `--authority.key`).
    pub fn secret_key(&self) -> SecretKey {
        self.key
    }

    /// Parses `--key`: 32 bytes of hex (with or without `0x`), or `env:VAR`
    /// to read that hex from an environment variable (keeps the key out of
    /// the shell history and the process list). Errors never echo the key.
    pub fn parse(spec: &str) -> eyre::Result<Self> {
        Self::parse_with_env(spec, |var| std::env::var(var).ok())
    }

    /// [`Signer::parse`] with the environment given by `env`.
    fn parse_with_env(spec: &str, env: impl Fn(&str) -> Option<String>) -> eyre::Result<Self> {
        let (hex_key, origin) = match spec.strip_prefix("env:") {
            Some(var) => {
                let value = env(var).ok_or_else(|| {
                    eyre!("--key env:{var}: the environment variable {var} is not set")
                })?;
                (value, format!("environment variable {var}"))
            }
            None => (spec.to_string(), "--key".to_string()),
        };
        let trimmed = hex_key.trim();
        let digits = trimmed.strip_prefix("0x").unwrap_or(trimmed);
        let bytes: [u8; 32] = alloy_primitives::hex::decode(digits)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                eyre!("bad key in {origin}: expected 32 bytes as 64 hex digits, or env:VAR")
            })?;
        let key = SecretKey::from_byte_array(bytes)
            .map_err(|_| eyre!("bad key in {origin}: not a valid secp256k1 private key"))?;
        Ok(Self {
            key,
            address: infera_primitives::address_of_secret(&key),
        })
    }

    /// Signs `tx`; returns the raw EIP-2718 bytes and the transaction hash.
    pub fn sign(&self, tx: TxEip1559) -> (Vec<u8>, B256) {
        let sig = infera_primitives::sign_hash(&self.key, tx.signature_hash());
        let signed = tx.into_signed(sig);
        (signed.encoded_2718(), *signed.hash())
    }
}

/// A transaction the node accepted, not yet in a block.
pub struct Submitted {
    pub hash: B256,
    to: Address,
    gas: u64,
}

/// A transaction that made it into a block.
pub struct Included {
    pub hash: B256,
    pub block: u64,
    pub gas_used: u64,
}

/// Sends transactions from one account: fees and nonce from the node.
pub struct Sender<'a> {
    pub rpc: &'a RpcClient,
    pub signer: &'a Signer,
    pub chain_id: u64,
    pub receipt_timeout: Duration,
}

impl Sender<'_> {
    /// Signs and sends a call of `to` with `data` and `gas`, waits for the
    /// receipt; a failed transaction is an error naming the decoded revert
    /// (replayed with `eth_call` on the state before its block).
    pub fn send(&self, to: Address, data: &[u8], gas: u64) -> eyre::Result<Included> {
        let sent = self.submit(to, data, gas)?;
        self.confirm(&sent, data)
    }

    /// Signs and sends a call of `to` with `data` and `gas`; returns once the
    /// node has accepted it into its pool.
    pub fn submit(&self, to: Address, data: &[u8], gas: u64) -> eyre::Result<Submitted> {
        let nonce = self.signer_nonce()?;
        let tip = quantity(&self.rpc.request("eth_maxPriorityFeePerGas", json!([]))?)?;
        let latest = self
            .rpc
            .request("eth_getBlockByNumber", json!(["latest", false]))?;
        let base_fee = quantity(&latest["baseFeePerGas"]).unwrap_or(0);
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit: gas,
            // Twice the base fee: stays valid through several full blocks of
            // EIP-1559 increases.
            max_fee_per_gas: u128::from(base_fee) * 2 + u128::from(tip),
            max_priority_fee_per_gas: u128::from(tip),
            to: TxKind::Call(to),
            value: U256::ZERO,
            input: Bytes::copy_from_slice(data),
            ..Default::default()
        };
        let (raw, hash) = self.signer.sign(tx);
        self.rpc
            .request("eth_sendRawTransaction", json!([hex(&raw)]))
            .wrap_err("the node refused the transaction")?;
        Ok(Submitted { hash, to, gas })
    }

    /// Waits for the receipt of `sent` (whose calldata was `data`); a failed
    /// transaction is an error naming the decoded revert.
    pub fn confirm(&self, sent: &Submitted, data: &[u8]) -> eyre::Result<Included> {
        let Submitted { hash, to, gas } = *sent;
        let receipt = self.rpc.wait_receipt(hash, self.receipt_timeout)?;
        let block = quantity(&receipt["blockNumber"])?;
        let gas_used = quantity(&receipt["gasUsed"])?;
        if receipt["status"] != "0x1" {
            let replay = self.rpc.call(
                self.signer.address,
                to,
                data,
                &format!("0x{:x}", block.saturating_sub(1)),
            )?;
            let why = match replay {
                Err(e) => e.to_string(),
                Ok(_) => {
                    format!("out of gas or reverted without data (gas used {gas_used} of {gas})")
                }
            };
            bail!("transaction {hash} failed in block {block}: {why}");
        }
        Ok(Included {
            hash,
            block,
            gas_used,
        })
    }

    /// The next nonce to use, after waiting (up to the receipt timeout) for
    /// this account's transactions still in the pool, e.g. those sent by an
    /// interrupted earlier run, so the chain state read next is final.
    pub fn signer_nonce(&self) -> eyre::Result<u64> {
        let who = self.signer.address;
        let deadline = Instant::now() + self.receipt_timeout;
        loop {
            let mined = self.rpc.nonce(who, "latest")?;
            let pending = self.rpc.nonce(who, "pending")?;
            if pending <= mined {
                return Ok(mined);
            }
            if Instant::now() > deadline {
                bail!(
                    "{who} has {} transaction(s) pending that were not included within {} s",
                    pending - mined,
                    self.receipt_timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(RECEIPT_POLL_MS));
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(b))
}

pub fn hex_bytes(v: &Value) -> eyre::Result<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| eyre!("expected hex data, got {v}"))?;
    alloy_primitives::hex::decode(s).map_err(|e| eyre!("bad hex data {s:?}: {e}"))
}

pub fn quantity(v: &Value) -> eyre::Result<u64> {
    let s = v
        .as_str()
        .and_then(|s| s.strip_prefix("0x"))
        .ok_or_else(|| eyre!("expected a hex quantity, got {v}"))?;
    u64::from_str_radix(s, 16).map_err(|e| eyre!("bad quantity {v}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const DEV_ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    #[test]
    fn key_forms() {
        let want: Address = DEV_ADDRESS.parse().unwrap();
        assert_eq!(Signer::parse(DEV_KEY).unwrap().address, want);
        assert_eq!(
            Signer::parse(&format!("0x{DEV_KEY}")).unwrap().address,
            want
        );
        let env = |var: &str| (var == "DEPLOYER_KEY").then(|| format!(" 0x{DEV_KEY}\n"));
        assert_eq!(
            Signer::parse_with_env("env:DEPLOYER_KEY", env)
                .unwrap()
                .address,
            want
        );
    }

    #[test]
    fn bad_keys_are_named_without_echoing_them() {
        for (spec, needle) in [
            ("0x1234", "expected 32 bytes"),
            (&"zz".repeat(32), "expected 32 bytes"),
            (&"00".repeat(32), "not a valid secp256k1 private key"),
            ("env:INFERA_TEST_NO_SUCH_VAR", "is not set"),
        ] {
            let err = Signer::parse(spec).err().unwrap().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
            if spec.len() > 8 && !spec.starts_with("env:") {
                assert!(!err.contains(spec), "error echoes the key: {err}");
            }
        }
    }

    #[test]
    fn rpc_urls_are_checked() {
        assert!(
            RpcClient::new("https://x")
                .err()
                .unwrap()
                .to_string()
                .contains("https is not supported")
        );
        assert!(
            RpcClient::new("localhost:8545")
                .err()
                .unwrap()
                .to_string()
                .contains("expected an http:// URL")
        );
    }

    /// A one-connection HTTP server on loopback that reads `read` bytes of
    /// the request (all of it when `None`), writes `answer` and closes.
    fn one_shot_server(read: Option<usize>, answer: &'static [u8]) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let whole = got.windows(4).position(|w| w == b"\r\n\r\n").map(|end| {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    end + 4 + len
                });
                let enough = read.or(whole).is_some_and(|n| got.len() >= n);
                if enough {
                    break;
                }
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(answer);
        });
        url
    }

    #[test]
    fn a_request_over_the_nodes_limit_is_named_not_unreachable() {
        // The node closes the connection after a few kilobytes of a body
        // over its limit: the writer sees a broken pipe or a reset.
        let url = one_shot_server(Some(4096), b"");
        let rpc = RpcClient::new(&url).unwrap();
        let big = "ab".repeat(NODE_MAX_REQUEST_BYTES / 2 + 1);
        let err = rpc
            .request("eth_estimateGas", json!([{ "data": big }]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exceeds the node's limit") && !err.contains("cannot reach"),
            "{err}"
        );
        let bytes = err
            .split("the request of ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no request size in {err}"));
        assert!(bytes > NODE_MAX_REQUEST_BYTES, "{err}");
    }

    #[test]
    fn an_http_413_answer_is_named_as_the_size_limit() {
        let url = one_shot_server(
            None,
            b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
        );
        let rpc = RpcClient::new(&url).unwrap();
        let err = rpc.chain_id().unwrap_err().to_string();
        assert!(
            err.contains("exceeds the node's size limit") && err.contains("HTTP 413"),
            "{err}"
        );
    }

    #[test]
    fn unreachable_node_is_named() {
        // Port 9 (discard) on loopback: nothing listens there in the tests.
        let rpc = RpcClient::new("http://127.0.0.1:9").unwrap();
        let err = rpc.chain_id().unwrap_err().to_string();
        assert!(
            err.contains("cannot reach the node at http://127.0.0.1:9"),
            "{err}"
        );
    }
}
