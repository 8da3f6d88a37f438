//! Command-line definitions. Every flag is documented here; `--help` shows them.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{ArgAction, Args, Parser, Subcommand};
use eyre::WrapErr;
use infera_chainspec::ChainSpec;
use infera_node::NodeConfig;
use infera_primitives::Address;
use infera_rpc::RpcConfig;
use infera_txpool::PoolConfig;
use tracing_subscriber::EnvFilter;

/// Default HTTP JSON-RPC port (geth's).
pub const DEFAULT_HTTP_PORT: u16 = 8545;
/// Default peer-to-peer TCP port (as geth and reth use).
pub const DEFAULT_P2P_PORT: u16 = 30303;
/// Default WebSocket JSON-RPC port (geth's).
pub const DEFAULT_WS_PORT: u16 = 8546;

/// infera: an EVM chain whose smart contracts call deterministic
/// neural-network inference, re-executed bit for bit by every node.
#[derive(Debug, Parser)]
#[command(name = "infera", version, about, long_about = None)]
pub struct Cli {
    /// More log output: -v debug, -vv trace. RUST_LOG overrides it (e.g. RUST_LOG=infera=debug).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node. Boxed: its many flags make it far larger than the other commands.
    Node(Box<NodeArgs>),
    /// Write a chain's genesis block into a data directory.
    Init(InitArgs),
    /// Import an RLP-encoded chain file with full validation and execution.
    Import(crate::import::ImportArgs),
    /// Inspect, run, import, upload and list deterministic integer inference models.
    Model {
        #[command(subcommand)]
        cmd: crate::model::ModelCommand,
    },
    /// Operator tools for a datadir's database: statistics and a state check.
    Db {
        #[command(subcommand)]
        cmd: crate::db::DbCommand,
    },
}

#[derive(Debug, Args)]
struct NodeArgs {
    /// Development mode: the embedded dev chain (chain id 6174, ten funded
    /// accounts of the `test ... junk` mnemonic) with instant or periodic sealing.
    #[arg(long)]
    dev: bool,

    /// Data directory. Default: <user data dir>/infera/<dev | chain-CHAINID>.
    #[arg(long, value_name = "DIR")]
    datadir: Option<PathBuf>,

    /// Genesis file (geth format) of the chain to run; with --dev it replaces the embedded dev chain.
    /// Without --dev the chain must have proof-of-authority rules (`config.clique`).
    #[arg(long, value_name = "FILE", conflicts_with = "testnet")]
    chain: Option<PathBuf>,

    /// The embedded proof-of-authority testnet (chain id 6175, genesis/testnet.json).
    #[arg(long, conflicts_with = "dev")]
    testnet: bool,

    /// Peer-to-peer listen address.
    #[arg(long = "p2p.addr", value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    p2p_addr: IpAddr,

    /// Peer-to-peer TCP port; 0 picks a free port (written to <datadir>/p2p-addresses).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_P2P_PORT)]
    port: u16,

    /// Peers to connect to, comma separated multiaddrs with their peer id,
    /// e.g. /ip4/127.0.0.1/tcp/30303/p2p/12D3KooW...
    #[arg(long, value_name = "MULTIADDRS", value_delimiter = ',')]
    bootnodes: Vec<String>,

    /// Do not look for peers beyond --bootnodes: no Kademlia DHT walks, and the peers
    /// remembered in <datadir>/network/known-peers.json are not dialled.
    #[arg(long = "no-discovery")]
    no_discovery: bool,

    /// Most peer connections, inbound and outbound together (discovery dials until half
    /// of them are outbound).
    #[arg(long = "max-peers", value_name = "N", default_value_t = infera_node::DEFAULT_MAX_PEERS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_peers: u32,

    /// Seal blocks as this authority: its private key as 64 hex digits, or
    /// env:VAR to read it from an environment variable.
    #[arg(long = "authority.key", value_name = "HEX|env:VAR")]
    authority_key: Option<String>,

    /// Test only: corrupt every inference output, so honest peers must reject
    /// this node's blocks (used by the network tests). Only in builds with
    /// the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[arg(long = "test.corrupt-inference", hide = true)]
    test_corrupt_inference: bool,

    /// Test only: pause this many milliseconds before importing each
    /// range-synced block (the tests watch `eth_syncing` meanwhile). Only in
    /// builds with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[arg(long = "test.sync-block-delay-ms", hide = true, default_value_t = 0)]
    test_sync_block_delay_ms: u64,

    /// Serve HTTP JSON-RPC (always on with --dev).
    #[arg(long)]
    http: bool,

    /// HTTP JSON-RPC listen address.
    #[arg(long = "http.addr", value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    http_addr: IpAddr,

    /// HTTP JSON-RPC port (it also accepts WebSocket upgrades); 0 picks a free port.
    #[arg(long = "http.port", value_name = "PORT", default_value_t = DEFAULT_HTTP_PORT)]
    http_port: u16,

    /// Allowed CORS origins for browser dApps, comma separated; "*" allows any.
    #[arg(
        long = "http.corsdomain",
        value_name = "ORIGINS",
        default_value = "*",
        value_delimiter = ','
    )]
    http_corsdomain: Vec<String>,

    /// JSON-RPC namespaces served, comma separated: eth, net, web3, txpool,
    /// infera, personal, debug, testing, admin, or all. One set for HTTP and WebSocket
    /// (`--ws.api` is the same flag). Default: all with --dev;
    /// eth,net,web3,txpool,infera otherwise.
    #[arg(long = "http.api", alias = "ws.api", value_name = "NAMESPACES")]
    http_api: Option<infera_rpc::RpcApis>,

    /// Serve a dedicated WebSocket JSON-RPC server.
    #[arg(long)]
    ws: bool,

    /// WebSocket listen address.
    #[arg(long = "ws.addr", value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    ws_addr: IpAddr,

    /// WebSocket port; 0 picks a free port.
    #[arg(long = "ws.port", value_name = "PORT", default_value_t = DEFAULT_WS_PORT)]
    ws_port: u16,

    /// Dev sealing period in seconds; 0 seals a block as soon as a transaction arrives.
    #[arg(long = "dev.block-time", value_name = "SECONDS", default_value_t = 0)]
    dev_block_time: u64,

    /// Address that receives priority fees of sealed blocks.
    #[arg(long = "miner.coinbase", value_name = "ADDRESS", default_value_t = Address::ZERO)]
    coinbase: Address,

    /// Largest JSON-RPC request body, in bytes.
    #[arg(long = "rpc.max-request-bytes", value_name = "BYTES", default_value_t = infera_rpc::DEFAULT_MAX_REQUEST_BYTES)]
    rpc_max_request_bytes: u32,

    /// Largest JSON-RPC response body, in bytes.
    #[arg(long = "rpc.max-response-bytes", value_name = "BYTES", default_value_t = infera_rpc::DEFAULT_MAX_RESPONSE_BYTES)]
    rpc_max_response_bytes: u32,

    /// Most calls in one JSON-RPC batch.
    #[arg(long = "rpc.max-batch", value_name = "N", default_value_t = infera_rpc::DEFAULT_MAX_BATCH_LEN)]
    rpc_max_batch: u32,

    /// Widest block range one eth_getLogs may scan.
    #[arg(long = "rpc.max-logs-range", value_name = "BLOCKS", default_value_t = infera_rpc::DEFAULT_MAX_LOGS_BLOCK_RANGE)]
    rpc_max_logs_range: u64,

    /// Most gas one eth_call, eth_estimateGas, eth_createAccessList or
    /// infera_dryRun execution gets (and all calls of one eth_simulateV1
    /// together); more is lowered to it. 0: no cap.
    #[arg(long = "rpc.gascap", value_name = "GAS", default_value_t = infera_rpc::DEFAULT_RPC_GAS_CAP)]
    rpc_gascap: u64,

    /// Time one of those execution requests may take, waiting for its turn
    /// included, before it stops with "execution aborted (timeout = ...)":
    /// milliseconds (5000) or a duration as geth writes it (5s, 300ms, 1m30s).
    /// 0: no limit. [default: 5s]
    #[arg(long = "rpc.evmtimeout", value_name = "DURATION", value_parser = infera_rpc::heavy::parse_evm_timeout)]
    rpc_evmtimeout: Option<Duration>,

    /// Most of those execution requests running at once; the others wait in
    /// line (at most 256). [default: the number of CPU cores]
    #[arg(long = "rpc.maxheavycalls", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rpc_maxheavycalls: Option<u32>,

    /// Most simultaneous connections from one IP address (loopback included),
    /// per server; further ones get HTTP 429.
    #[arg(long = "rpc.max-conns-per-ip", value_name = "N", default_value_t = infera_rpc::DEFAULT_MAX_CONNECTIONS_PER_IP, value_parser = clap::value_parser!(u32).range(1..))]
    rpc_max_conns_per_ip: u32,

    /// Seconds a client has to send a request's headers, from its first byte.
    #[arg(long = "rpc.header-timeout", value_name = "SECONDS", default_value_t = infera_rpc::DEFAULT_HEADER_READ_TIMEOUT_S, value_parser = clap::value_parser!(u64).range(1..))]
    rpc_header_timeout: u64,

    /// Seconds a client has to send a request's body, from the end of its headers.
    #[arg(long = "rpc.body-timeout", value_name = "SECONDS", default_value_t = infera_rpc::DEFAULT_BODY_READ_TIMEOUT_S, value_parser = clap::value_parser!(u64).range(1..))]
    rpc_body_timeout: u64,

    /// Seconds an HTTP connection may stay without a request (or without
    /// reading its response) before it is closed.
    #[arg(long = "rpc.idle-timeout", value_name = "SECONDS", default_value_t = infera_rpc::DEFAULT_IDLE_TIMEOUT_S, value_parser = clap::value_parser!(u64).range(1..))]
    rpc_idle_timeout: u64,

    /// Most filters (eth_newFilter and the like) one IP address may have installed.
    #[arg(long = "rpc.max-filters-per-client", value_name = "N", default_value_t = infera_rpc::DEFAULT_MAX_FILTERS_PER_CLIENT as u32, value_parser = clap::value_parser!(u32).range(1..))]
    rpc_max_filters_per_client: u32,

    /// Where inferences run: auto (a CUDA GPU when a driver, NVRTC and a
    /// device are present, each model on whichever of GPU and CPU measures
    /// faster; else the CPU), cpu, or cuda[:N] (that GPU for every model; the
    /// node refuses to start without it). Results and gas are the same on every
    /// device; a GPU error falls back to the CPU for that call.
    #[arg(long = "inference.device", value_name = "auto|cpu|cuda[:N]", default_value_t = infera_node::InferenceDevice::Auto)]
    inference_device: infera_node::InferenceDevice,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9001;
    /// port 0 picks a free one, logged at start). Off by default.
    #[arg(long = "metrics", value_name = "IP:PORT")]
    metrics: Option<SocketAddr>,

    /// Most pending (executable) transactions of one sender; its further
    /// contiguous ones wait in its queue.
    #[arg(long = "txpool.accountslots", value_name = "N", default_value_t = infera_txpool::DEFAULT_ACCOUNT_SLOTS)]
    txpool_account_slots: usize,

    /// Pool room for pending transactions only: the pool holds at most
    /// globalslots + globalqueue transactions.
    #[arg(long = "txpool.globalslots", value_name = "N", default_value_t = infera_txpool::DEFAULT_GLOBAL_SLOTS)]
    txpool_global_slots: usize,

    /// Most queued (nonce-gap) transactions of one sender.
    #[arg(long = "txpool.accountqueue", value_name = "N", default_value_t = infera_txpool::DEFAULT_ACCOUNT_QUEUE)]
    txpool_account_queue: usize,

    /// Most queued transactions in the pool.
    #[arg(long = "txpool.globalqueue", value_name = "N", default_value_t = infera_txpool::DEFAULT_GLOBAL_QUEUE)]
    txpool_global_queue: usize,

    /// Most bytes of transactions (their encodings) in the pool, pending and
    /// queued together: bytes, or with KiB, MiB, GiB. At least 160KiB, the
    /// largest transaction the pool admits.
    #[arg(long = "txpool.globalbytes", value_name = "SIZE", default_value = "64MiB", value_parser = infera_txpool::parse_byte_size)]
    txpool_global_bytes: usize,

    /// How long a sender's queued transactions stay without activity (nothing
    /// added, nothing mined): e.g. 3h, 90m, 1h30m, or seconds.
    #[arg(long = "txpool.lifetime", value_name = "DURATION", default_value = "3h", value_parser = infera_txpool::parse_lifetime)]
    txpool_lifetime: Duration,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Genesis file (geth format).
    #[arg(long, value_name = "FILE")]
    chain: PathBuf,

    /// Data directory. Default: <user data dir>/infera/chain-CHAINID.
    #[arg(long, value_name = "DIR")]
    datadir: Option<PathBuf>,
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> eyre::Result<()> {
        init_logging(self.verbose);
        match self.command {
            Command::Node(args) => run_node(*args),
            Command::Init(args) => run_init(args),
            Command::Import(args) => crate::import::run(args),
            Command::Model { cmd } => cmd.run(),
            Command::Db { cmd } => cmd.run(),
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "info,infera=debug",
        _ => "info,infera=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: logs redirected to a file stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

pub(crate) fn default_datadir(leaf: &str) -> eyre::Result<PathBuf> {
    let base = dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join(".local/share")))
        .ok_or_else(|| eyre::eyre!("cannot find a user data directory; pass --datadir"))?;
    Ok(base.join("infera").join(leaf))
}

pub(crate) fn load_chain(path: &Path) -> eyre::Result<ChainSpec> {
    ChainSpec::from_file(path).wrap_err_with(|| format!("loading chain spec {}", path.display()))
}

fn run_init(args: InitArgs) -> eyre::Result<()> {
    let chain = load_chain(&args.chain)?;
    let datadir = match args.datadir {
        Some(dir) => dir,
        None => default_datadir(&format!("chain-{}", chain.chain_id()))?,
    };
    infera_node::open_datadir(&datadir, &chain)?;
    println!(
        "initialised {} for chain id {}",
        datadir.display(),
        chain.chain_id()
    );
    Ok(())
}

fn run_node(args: NodeArgs) -> eyre::Result<()> {
    let chain = match (&args.chain, args.dev, args.testnet) {
        (Some(path), _, _) => load_chain(path)?,
        (None, true, _) => ChainSpec::dev(),
        (None, false, true) => ChainSpec::testnet(),
        (None, false, false) => eyre::bail!(
            "no chain given: pass --dev for the development chain, --testnet, or --chain <genesis.json>"
        ),
    };
    if !args.dev && chain.clique().is_none() {
        eyre::bail!(
            "the chain in {} has no proof-of-authority rules (config.clique): only --dev can seal it",
            args.chain
                .as_deref()
                .map_or("the genesis".into(), |p| p.display().to_string())
        );
    }
    if args.dev && (args.authority_key.is_some() || !args.bootnodes.is_empty()) {
        eyre::bail!(
            "--dev runs alone: --authority.key and --bootnodes need a proof-of-authority chain (--testnet or --chain) without --dev"
        );
    }
    let datadir = match args.datadir {
        Some(dir) => dir,
        None if args.testnet => default_datadir("testnet")?,
        None if args.chain.is_none() => default_datadir("dev")?,
        None => default_datadir(&format!("chain-{}", chain.chain_id()))?,
    };
    // The dev accounts' keys are public: unlocked on the dev chain only.
    let dev_signers = if args.dev && chain.chain_id() == infera_chainspec::DEV_CHAIN_ID {
        infera_rpc::DevSigner::dev_accounts()
    } else {
        Vec::new()
    };
    let config = NodeConfig {
        datadir,
        chain,
        http_addr: (args.http || args.dev)
            .then_some(SocketAddr::new(args.http_addr, args.http_port)),
        ws_addr: args
            .ws
            .then_some(SocketAddr::new(args.ws_addr, args.ws_port)),
        dev_block_time: Duration::from_secs(args.dev_block_time),
        coinbase: args.coinbase,
        rpc: RpcConfig {
            max_request_bytes: args.rpc_max_request_bytes,
            max_response_bytes: args.rpc_max_response_bytes,
            max_batch_len: args.rpc_max_batch,
            max_logs_block_range: args.rpc_max_logs_range,
            gas_cap: args.rpc_gascap,
            evm_timeout: args.rpc_evmtimeout.unwrap_or(Duration::from_millis(
                infera_rpc::DEFAULT_RPC_EVM_TIMEOUT_MS,
            )),
            max_heavy_calls: args
                .rpc_maxheavycalls
                .map_or_else(infera_rpc::heavy::default_max_heavy_calls, |n| n as usize),
            max_connections_per_ip: args.rpc_max_conns_per_ip,
            header_read_timeout: Duration::from_secs(args.rpc_header_timeout),
            body_read_timeout: Duration::from_secs(args.rpc_body_timeout),
            idle_timeout: Duration::from_secs(args.rpc_idle_timeout),
            max_filters_per_client: args.rpc_max_filters_per_client as usize,
            cors_origins: args.http_corsdomain,
            apis: args.http_api.unwrap_or_else(|| {
                if args.dev {
                    infera_rpc::RpcApis::all()
                } else {
                    infera_rpc::RpcApis::public()
                }
            }),
            dev_signers,
            ..RpcConfig::default()
        },
        pool: PoolConfig {
            account_slots: args.txpool_account_slots,
            global_slots: args.txpool_global_slots,
            account_queue: args.txpool_account_queue,
            global_queue: args.txpool_global_queue,
            global_bytes: args.txpool_global_bytes,
            lifetime: args.txpool_lifetime,
            ..PoolConfig::default()
        },
        inference_device: args.inference_device,
        metrics_addr: args.metrics,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("starting the async runtime")?;
    if args.dev {
        runtime.block_on(infera_node::run_dev_node(config, shutdown_signal()))?;
        return Ok(());
    }
    let bootnodes = args
        .bootnodes
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<infera_network::Multiaddr>()
                .wrap_err_with(|| format!("--bootnodes: {s} is not a multiaddr"))
        })
        .collect::<eyre::Result<Vec<_>>>()?;
    let authority_key = args
        .authority_key
        .as_deref()
        .map(|spec| crate::chain_client::Signer::parse(spec).map(|s| s.secret_key()))
        .transpose()
        .wrap_err("--authority.key")?;
    let ip = match args.p2p_addr {
        IpAddr::V4(ip) => format!("/ip4/{ip}"),
        IpAddr::V6(ip) => format!("/ip6/{ip}"),
    };
    let p2p = infera_node::P2pConfig {
        listen_addr: format!("{ip}/tcp/{}", args.port)
            .parse()
            .wrap_err("--p2p.addr/--port")?,
        bootnodes,
        discovery: !args.no_discovery,
        max_peers: args.max_peers,
        authority_key,
        #[cfg(feature = "test-hooks")]
        corrupt_inference: args.test_corrupt_inference,
        #[cfg(not(feature = "test-hooks"))]
        corrupt_inference: false,
        #[cfg(feature = "test-hooks")]
        test_sync_block_delay: std::time::Duration::from_millis(args.test_sync_block_delay_ms),
        #[cfg(not(feature = "test-hooks"))]
        test_sync_block_delay: std::time::Duration::ZERO,
    };
    runtime.block_on(infera_node::run_network_node(
        config,
        p2p,
        shutdown_signal(),
    ))?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
