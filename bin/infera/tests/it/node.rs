//! Spawning and controlling a real `infera node --dev` process.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;

use crate::http::{Rpc, qty};

pub const CHAIN_ID: u64 = 6174;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP port on loopback that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running dev node with its own temp datadir and ports. Killed on drop; on a
/// test failure the tail of its log is printed.
pub struct Node {
    dir: TempDir,
    child: Option<Child>,
    block_time: u64,
    /// Extra `infera node` flags, on every start.
    extra_args: Vec<String>,
    starts: u32,
    pub http: SocketAddr,
    pub ws: SocketAddr,
    pub rpc: Rpc,
}

impl Node {
    /// `--dev.block-time 0`: a block is sealed as soon as a transaction arrives.
    pub fn start() -> Node {
        Self::start_with_block_time(0)
    }

    /// A dev node started with `args` added to its command line.
    pub fn start_with_args(args: &[&str]) -> Node {
        Self::start_inner(0, args.iter().map(|a| a.to_string()).collect())
    }

    pub fn start_with_block_time(block_time: u64) -> Node {
        Self::start_inner(block_time, Vec::new())
    }

    fn start_inner(block_time: u64, extra_args: Vec<String>) -> Node {
        let dir = tempfile::Builder::new()
            .prefix("infera-e2e-")
            .tempdir()
            .expect("tempdir");
        let placeholder: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let mut node = Node {
            dir,
            child: None,
            block_time,
            extra_args,
            starts: 0,
            http: placeholder,
            ws: placeholder,
            rpc: Rpc::new(placeholder),
        };
        node.spawn();
        node
    }

    pub fn datadir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("node-{start}.log"))
    }

    /// The last `n` lines of the current log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Starts the binary on this node's datadir (new ports every time) and waits until
    /// `eth_chainId` answers.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node already running");
        for attempt in 0..3 {
            self.starts += 1;
            let (http_port, ws_port) = (free_port(), free_port());
            let log = File::create(self.log_path(self.starts)).expect("log file");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_infera"));
            cmd.arg("node")
                .arg("--dev")
                .arg("--datadir")
                .arg(self.datadir())
                .args([
                    "--http.addr",
                    "127.0.0.1",
                    "--http.port",
                    &http_port.to_string(),
                ])
                .args(["--ws", "--ws.port", &ws_port.to_string()])
                .args(["--dev.block-time", &self.block_time.to_string()])
                .args(&self.extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log));
            if std::env::var_os("RUST_LOG").is_none() {
                cmd.env("RUST_LOG", "info");
            }
            let child = cmd.spawn().expect("failed to spawn the infera binary");
            self.child = Some(child);
            self.http = (Ipv4Addr::LOCALHOST, http_port).into();
            self.ws = (Ipv4Addr::LOCALHOST, ws_port).into();
            self.rpc = Rpc::new(self.http);

            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    self.child = None;
                    let tail = self.log_tail(40);
                    if attempt < 2 && tail.to_lowercase().contains("in use") {
                        break; // port race with another test: retry on new ports
                    }
                    panic!("infera exited during startup with {status}; log tail:\n{tail}");
                }
                if let Ok(Ok(v)) = self.rpc.try_request("eth_chainId", json!([])) {
                    assert_eq!(qty(&v), CHAIN_ID, "eth_chainId");
                    return;
                }
                if Instant::now() > deadline {
                    panic!(
                        "infera did not answer eth_chainId on {} within {STARTUP_TIMEOUT:?}; log tail:\n{}",
                        self.http,
                        self.log_tail(40)
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start infera after 3 attempts");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("node not running").id()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "infera did not exit within {SHUTDOWN_TIMEOUT:?} after SIGTERM; log tail:\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (e.g. "KILL", "TERM") without waiting.
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -s {sig} failed");
    }

    /// SIGKILL (no chance to clean up) and reap the process.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("node not running");
        let _ = child.kill(); // may already be dead from `signal("KILL")`
        child.wait().expect("wait");
    }

    /// Starts the binary again on the same datadir.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- infera log ({}), last 60 lines ----\n{}\n---- end of log ----",
                self.log_path(self.starts).display(),
                self.log_tail(60)
            );
            if std::env::var_os("INFERA_E2E_KEEP").is_some() {
                let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
                eprintln!("kept test dir {}", dir.keep().display());
            }
        }
    }
}
