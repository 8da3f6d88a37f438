//! A tiny blocking HTTP/1.1 client and a JSON-RPC wrapper over it.
//!
//! Hand-rolled on purpose: the edge-case tests need raw control over the request
//! (oversized bodies, invalid JSON, batches) and over how the response is read.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use serde_json::{Value, json};

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// POSTs `body` to `addr` (path `/`) and returns status + body.
pub fn post(addr: SocketAddr, body: &[u8], timeout: Duration) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    // For oversized bodies the server may answer (and close) before we finished writing:
    // still try to read whatever response it sent.
    let written = s.write_all(body).and_then(|_| s.flush());
    match read_response(&mut s) {
        Ok(r) => Ok(r),
        Err(read_err) => Err(written.err().unwrap_or(read_err)),
    }
}

/// GETs `path` from `addr` and returns status + body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes())?;
    read_response(&mut s)
}

fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut tmp = [0u8; 16 * 1024];
    let n = s.read(&mut tmp)?;
    buf.extend_from_slice(&tmp[..n]);
    Ok(n)
}

fn read_to_eof(s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    loop {
        match read_some(s, buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // A reset after the body was sent is as good as EOF here.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !buf.is_empty() => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

fn read_response(s: &mut TcpStream) -> io::Result<HttpResponse> {
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if read_some(s, &mut buf)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response headers",
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut content_length = None;
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                content_length = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            }
        }
    }
    let mut rest = buf[header_end + 4..].to_vec();
    let body = if let Some(len) = content_length {
        while rest.len() < len {
            if read_some(s, &mut rest)? == 0 {
                break;
            }
        }
        rest.truncate(len);
        rest
    } else if chunked {
        read_to_eof(s, &mut rest)?;
        dechunk(&rest)?
    } else {
        read_to_eof(s, &mut rest)?;
        rest
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or_else(|| io::Error::other("bad chunk"))?;
        let size_str = String::from_utf8_lossy(&data[..line_end]);
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| io::Error::other(format!("bad chunk size {size_str:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(io::Error::other("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// A JSON-RPC error object.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn from_json(e: &Value) -> Self {
        RpcError {
            code: e["code"]
                .as_i64()
                .unwrap_or_else(|| panic!("error without integer code: {e}")),
            message: e["message"].as_str().unwrap_or_default().to_string(),
            data: e.get("data").cloned(),
        }
    }
}

/// JSON-RPC over HTTP.
pub struct Rpc {
    pub addr: SocketAddr,
    next_id: AtomicU64,
}

impl Rpc {
    pub fn new(addr: SocketAddr) -> Self {
        Rpc {
            addr,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends one request; I/O errors are returned, JSON-RPC errors are the inner `Err`.
    pub fn try_request(&self, method: &str, params: Value) -> io::Result<Result<Value, RpcError>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = post(
            self.addr,
            body.to_string().as_bytes(),
            Duration::from_secs(30),
        )?;
        let v: Value = serde_json::from_slice(&resp.body).map_err(|e| {
            io::Error::other(format!(
                "{method}: HTTP {} with a non-JSON body ({e}): {}",
                resp.status,
                resp.text()
            ))
        })?;
        if resp.status != 200 {
            return Err(io::Error::other(format!(
                "{method}: HTTP status {} body {}",
                resp.status,
                resp.text()
            )));
        }
        assert_eq!(
            v["jsonrpc"], "2.0",
            "{method}: response without jsonrpc 2.0: {v}"
        );
        assert_eq!(v["id"], json!(id), "{method}: response id mismatch: {v}");
        if let Some(e) = v.get("error") {
            return Ok(Err(RpcError::from_json(e)));
        }
        assert!(
            v.get("result").is_some(),
            "{method}: response has neither result nor error: {v}"
        );
        Ok(Ok(v["result"].clone()))
    }

    pub fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.try_request(method, params.clone())
            .unwrap_or_else(|e| panic!("{method}({params}): transport error: {e}"))
    }

    /// Calls `method`, panicking on any error.
    pub fn ok(&self, method: &str, params: Value) -> Value {
        match self.request(method, params.clone()) {
            Ok(v) => v,
            Err(e) => panic!("{method}({params}) failed: {e:?}"),
        }
    }

    /// Calls `method`, panicking if it does not fail.
    pub fn err(&self, method: &str, params: Value) -> RpcError {
        match self.request(method, params.clone()) {
            Ok(v) => panic!("{method}({params}) unexpectedly succeeded with {v}"),
            Err(e) => e,
        }
    }

    // ----- typed helpers -----

    pub fn block_number(&self) -> u64 {
        qty(&self.ok("eth_blockNumber", json!([])))
    }

    pub fn balance(&self, a: Address, block: impl Into<Value>) -> U256 {
        qty_u256(&self.ok("eth_getBalance", json!([a, block.into()])))
    }

    pub fn nonce(&self, a: Address, block: impl Into<Value>) -> u64 {
        qty(&self.ok("eth_getTransactionCount", json!([a, block.into()])))
    }

    pub fn code(&self, a: Address, block: impl Into<Value>) -> Vec<u8> {
        bytes(&self.ok("eth_getCode", json!([a, block.into()])))
    }

    pub fn storage(&self, a: Address, slot: B256, block: impl Into<Value>) -> B256 {
        let v = self.ok("eth_getStorageAt", json!([a, slot, block.into()]));
        let b = bytes(&v);
        assert_eq!(
            b.len(),
            32,
            "eth_getStorageAt must return 32 bytes, got {v}"
        );
        B256::from_slice(&b)
    }

    pub fn block(&self, tag: impl Into<Value>, full: bool) -> Value {
        self.ok("eth_getBlockByNumber", json!([tag.into(), full]))
    }

    pub fn block_by_hash(&self, hash: B256, full: bool) -> Value {
        self.ok("eth_getBlockByHash", json!([hash, full]))
    }

    pub fn receipt(&self, hash: B256) -> Value {
        self.ok("eth_getTransactionReceipt", json!([hash]))
    }

    pub fn tx(&self, hash: B256) -> Value {
        self.ok("eth_getTransactionByHash", json!([hash]))
    }

    /// eth_call with `{from, to, data}` at `block`.
    pub fn call(
        &self,
        from: Address,
        to: Address,
        data: &[u8],
        block: impl Into<Value>,
    ) -> Result<Vec<u8>, RpcError> {
        self.request(
            "eth_call",
            json!([{"from": from, "to": to, "data": hex(data)}, block.into()]),
        )
        .map(|v| bytes(&v))
    }

    pub fn send_raw(&self, raw: &[u8]) -> Result<B256, RpcError> {
        self.request("eth_sendRawTransaction", json!([hex(raw)]))
            .map(|v| b256(&v))
    }

    /// Polls for the receipt of `hash` (up to 30 s).
    pub fn wait_receipt(&self, hash: B256) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.receipt(hash);
            if !r.is_null() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no receipt for {hash} after 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

// ----- hex / quantity helpers -----

pub fn hex(b: &[u8]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(b))
}

pub fn q(n: impl Into<u128>) -> String {
    format!("0x{:x}", n.into())
}

fn hex_str(v: &Value) -> &str {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a hex string, got {v}"));
    s.strip_prefix("0x")
        .unwrap_or_else(|| panic!("expected 0x-prefixed hex, got {v}"))
}

pub fn qty(v: &Value) -> u64 {
    u64::from_str_radix(hex_str(v), 16).unwrap_or_else(|e| panic!("bad quantity {v}: {e}"))
}

pub fn qty_u128(v: &Value) -> u128 {
    u128::from_str_radix(hex_str(v), 16).unwrap_or_else(|e| panic!("bad quantity {v}: {e}"))
}

pub fn qty_u256(v: &Value) -> U256 {
    U256::from_str_radix(hex_str(v), 16).unwrap_or_else(|e| panic!("bad quantity {v}: {e}"))
}

pub fn bytes(v: &Value) -> Vec<u8> {
    alloy_primitives::hex::decode(hex_str(v)).unwrap_or_else(|e| panic!("bad hex data {v}: {e}"))
}

pub fn b256(v: &Value) -> B256 {
    let b = bytes(v);
    assert_eq!(b.len(), 32, "expected 32 bytes, got {v}");
    B256::from_slice(&b)
}

pub fn addr(v: &Value) -> Address {
    let b = bytes(v);
    assert_eq!(b.len(), 20, "expected an address, got {v}");
    Address::from_slice(&b)
}

/// True if `s` is a canonical JSON-RPC QUANTITY ("0x0" or "0x" + hex without leading zeros).
pub fn is_quantity(s: &str) -> bool {
    match s.strip_prefix("0x") {
        Some("0") => true,
        Some(h) => {
            !h.is_empty()
                && !h.starts_with('0')
                && h.chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        }
        None => false,
    }
}

/// Issue 20: request ids, connections per address, against the real binary.
mod bounded_requests {
    use super::*;
    use crate::node::Node;

    fn post_value(to: SocketAddr, body: &Value) -> (u16, Value) {
        let r =
            post(to, body.to_string().as_bytes(), Duration::from_secs(30)).expect("HTTP request");
        let v = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("non-JSON body (HTTP {}): {e}: {}", r.status, r.text()));
        (r.status, v)
    }

    #[test]
    fn ids_are_echoed_and_unsupported_ones_get_invalid_request_never_null() {
        let node = Node::start();
        for id in [json!("x-1"), json!(7), json!(null)] {
            let request =
                json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId", "params": []});
            let (status, v) = post_value(node.http, &request);
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["id"], id, "{v}");
            assert_eq!(v["result"], "0x181e", "{v}");
        }
        for id in [json!({"a": 1}), json!([1]), json!(-1), json!(false)] {
            let request =
                json!({"jsonrpc": "2.0", "id": id, "method": "eth_chainId", "params": []});
            let (status, v) = post_value(node.http, &request);
            assert_eq!(status, 400, "{v}");
            assert_eq!(v["error"]["code"], -32600, "{v}");
            assert_eq!(v["id"], Value::Null, "{v}");
        }
    }

    #[test]
    fn a_connection_over_the_per_address_limit_gets_429_and_serving_goes_on() {
        let node = Node::start();
        let limit = infera_rpc::DEFAULT_MAX_CONNECTIONS_PER_IP;
        let held: Vec<TcpStream> = (0..limit)
            .map(|_| TcpStream::connect(node.http).expect("connect"))
            .collect();
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []});
        let r = post(
            node.http,
            request.to_string().as_bytes(),
            Duration::from_secs(30),
        )
        .expect("the refusal is an HTTP answer");
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(
            r.text().contains(&format!("at most {limit} per address")),
            "{}",
            r.text()
        );
        drop(held);
        // The node sees the closes asynchronously; the slots come back.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = post(
                node.http,
                request.to_string().as_bytes(),
                Duration::from_secs(30),
            )
            .expect("HTTP request");
            if r.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "slots never came back: {}",
                r.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
