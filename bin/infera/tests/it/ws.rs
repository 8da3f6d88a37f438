//! A minimal blocking WebSocket (RFC 6455) JSON-RPC client: text frames, masking,
//! ping/pong, fragmentation. Enough to drive eth_subscribe.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::RpcError;

pub struct Ws {
    s: TcpStream,
    rbuf: Vec<u8>,
    /// Notifications that arrived while waiting for something else.
    queue: VecDeque<Value>,
    next_id: u64,
}

impl Ws {
    /// Connects, retrying for up to 10 s (the WS server may start a moment after HTTP).
    pub fn connect(addr: SocketAddr) -> Ws {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_connect(addr) {
                Ok(ws) => return ws,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("WebSocket connect to {addr} failed: {e}"),
            }
        }
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Ws> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes())?;
        let mut buf = Vec::new();
        let mut tmp = [0u8; 4096];
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let n = s.read(&mut tmp)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during handshake",
                ));
            }
            buf.extend_from_slice(&tmp[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("101") {
            return Err(io::Error::other(format!(
                "WebSocket upgrade refused: {head}"
            )));
        }
        Ok(Ws {
            s,
            rbuf: buf[end + 4..].to_vec(),
            queue: VecDeque::new(),
            next_id: 1,
        })
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut f = Vec::with_capacity(payload.len() + 14);
        f.push(0x80 | opcode);
        let len = payload.len();
        if len < 126 {
            f.push(0x80 | len as u8);
        } else if len <= u16::MAX as usize {
            f.push(0x80 | 126);
            f.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            f.push(0x80 | 127);
            f.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.s.write_all(&f)
    }

    pub fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes())
            .expect("WebSocket send failed");
    }

    /// Parses one complete frame from the buffer: (fin, opcode, payload, consumed bytes).
    fn parse_frame(buf: &[u8]) -> Option<(bool, u8, Vec<u8>, usize)> {
        if buf.len() < 2 {
            return None;
        }
        let fin = buf[0] & 0x80 != 0;
        let op = buf[0] & 0x0f;
        let masked = buf[1] & 0x80 != 0;
        let mut len = (buf[1] & 0x7f) as usize;
        let mut pos = 2;
        if len == 126 {
            if buf.len() < 4 {
                return None;
            }
            len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            pos = 4;
        } else if len == 127 {
            if buf.len() < 10 {
                return None;
            }
            len = u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize;
            pos = 10;
        }
        let mask = if masked {
            if buf.len() < pos + 4 {
                return None;
            }
            let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
            pos += 4;
            Some(m)
        } else {
            None
        };
        if buf.len() < pos + len {
            return None;
        }
        let mut payload = buf[pos..pos + len].to_vec();
        if let Some(m) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= m[i % 4]);
        }
        Some((fin, op, payload, pos + len))
    }

    /// Reads the next complete JSON message, or None on timeout.
    fn recv_json(&mut self, deadline: Instant) -> Option<Value> {
        let mut msg = Vec::new();
        loop {
            if let Some((fin, op, payload, used)) = Self::parse_frame(&self.rbuf) {
                self.rbuf.drain(..used);
                match op {
                    0x9 => self.send_frame(0xA, &payload).expect("pong failed"),
                    0xA => {}
                    0x8 => panic!("WebSocket closed by the server: {payload:?}"),
                    _ => {
                        msg.extend_from_slice(&payload);
                        if fin {
                            return Some(serde_json::from_slice(&msg).unwrap_or_else(|e| {
                                panic!(
                                    "non-JSON WebSocket message ({e}): {}",
                                    String::from_utf8_lossy(&msg)
                                )
                            }));
                        }
                    }
                }
                continue;
            }
            let now = Instant::now();
            if now >= deadline && msg.is_empty() {
                return None;
            }
            let wait = deadline
                .saturating_duration_since(now)
                .max(Duration::from_millis(5));
            self.s.set_read_timeout(Some(wait)).unwrap();
            let mut tmp = [0u8; 16 * 1024];
            match self.s.read(&mut tmp) {
                Ok(0) => panic!("WebSocket connection closed"),
                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if msg.is_empty() && self.rbuf.is_empty() {
                        return None;
                    }
                }
                Err(e) => panic!("WebSocket read failed: {e}"),
            }
        }
    }

    /// Sends a request and waits (10 s) for its response; notifications are queued.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self
                .recv_json(deadline)
                .unwrap_or_else(|| panic!("no WebSocket response to {method} within 10 s"));
            if m.get("id") == Some(&json!(id)) {
                if let Some(e) = m.get("error") {
                    return Err(RpcError::from_json(e));
                }
                return Ok(m["result"].clone());
            }
            if m.get("method").is_some() {
                self.queue.push_back(m);
            } else if m["id"].is_null() && m.get("error").is_some() {
                // Error for an earlier unparseable message: not ours.
            } else {
                panic!("unexpected WebSocket message while waiting for id {id}: {m}");
            }
        }
    }

    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        self.request(method, params.clone())
            .unwrap_or_else(|e| panic!("WS {method}({params}) failed: {e:?}"))
    }

    /// eth_subscribe; returns the subscription id (kept as JSON: string per the Ethereum spec).
    pub fn subscribe(&mut self, params: Value) -> Value {
        let id = self.ok("eth_subscribe", params);
        assert!(id.is_string() || id.is_number(), "bad subscription id {id}");
        id
    }

    /// Next notification `result` for subscription `sub`, or None after `timeout`.
    pub fn next(&mut self, sub: &Value, timeout: Duration) -> Option<Value> {
        if let Some(i) = self
            .queue
            .iter()
            .position(|m| &m["params"]["subscription"] == sub)
        {
            let m = self.queue.remove(i).unwrap();
            return Some(m["params"]["result"].clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.recv_json(deadline)?;
            assert_eq!(
                m["method"], "eth_subscription",
                "unexpected WebSocket message {m}"
            );
            if &m["params"]["subscription"] == sub {
                return Some(m["params"]["result"].clone());
            }
            self.queue.push_back(m);
        }
    }

    /// Collects notifications for `sub` until `n` arrived or `timeout` elapsed.
    pub fn collect(&mut self, sub: &Value, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(sub, left) {
                Some(v) => out.push(v),
                None => break,
            }
        }
        out
    }
}
