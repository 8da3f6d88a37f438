//! `infera model upload | list | info`: models on a running chain.
//!
//! `upload` validates the file locally, then registers it through the model
//! registry precompile: in one `register` transaction when that fits, otherwise
//! `beginUpload` and `uploadChunk`s across blocks. Whether it fits is decided
//! here, from the precompile's gas schedule (`infera_precompiles::gas`), the
//! transaction's calldata and the request's size, never by a round trip: a
//! request over the node's size limit fails as a closed connection, not as an
//! answer. The upload's progress lives on chain (`uploadStatus`), so a second
//! run after an interruption continues from the bytes already there.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_primitives::{Address, B256, keccak256};
use alloy_sol_types::{SolCall, SolError};
use eyre::{WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infera_precompiles::abi::{self, IModelRegistry, MAX_MODEL_BYTES, MODEL_REGISTRY_ADDRESS};
use infera_precompiles::gas;
use serde_json::{Value, json};

use crate::chain_client::{
    Included, JsonRpcError, NODE_MAX_REQUEST_BYTES, RpcClient, Sender, Signer, quantity,
};

/// The EIP-7825 cap on one transaction's gas (Osaka): no transaction may need more.
pub const TX_GAS_CAP: u64 = 1 << 24;
/// Share of [`TX_GAS_CAP`] a transaction is planned to, in percent: headroom
/// for a node whose gas schedule differs a little from this client's, and for
/// the completing chunk, which pays for the registration too.
const TX_GAS_TARGET_PERCENT: u64 = 90;
/// Gas every transaction pays before its calldata.
const TX_BASE_GAS: u64 = 21_000;
/// Calldata gas per zero byte (EIP-2028).
const CALLDATA_ZERO_BYTE_GAS: u64 = 4;
/// Calldata gas per non-zero byte (EIP-2028).
const CALLDATA_NONZERO_BYTE_GAS: u64 = 16;
/// EIP-7623's calldata floor, gas per token (a zero byte is one token, a
/// non-zero byte [`NONZERO_BYTE_TOKENS`]).
const CALLDATA_FLOOR_GAS_PER_TOKEN: u64 = 10;
/// Tokens of a non-zero calldata byte (EIP-7623).
const NONZERO_BYTE_TOKENS: u64 = 4;
/// Bytes of a signed EIP-1559 transaction besides its calldata, at most
/// (type, chain id, nonce, fees, gas, recipient, value, empty access list,
/// signature, RLP headers: about 160).
const TX_ENVELOPE_BYTES: usize = 256;
/// Bytes of a JSON-RPC request besides its hex payload, at most.
const JSON_RPC_ENVELOPE_BYTES: usize = 512;
/// Most times a chunk is shrunk, when the node's estimate exceeds the cap,
/// before giving up.
const MAX_SHRINKS: u32 = 16;
/// Models listed per `infera_listModels` call.
const LIST_PAGE: u64 = 1_000;

/// Model subcommands that talk to a node.
#[derive(Debug, clap::Subcommand)]
pub enum ChainCommand {
    /// Register a model on chain (one transaction, or resumable chunks across blocks).
    Upload(UploadArgs),
    /// List the models registered on chain.
    List {
        /// JSON-RPC endpoint of a node.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
    /// Show a model's details (or the progress of its uploads) from the chain.
    Info {
        /// The model id: keccak256 of the model bytes (0x + 64 hex digits).
        id: B256,
        /// JSON-RPC endpoint of a node.
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8545")]
        rpc: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// An `.infera` model file.
    file: PathBuf,
    /// JSON-RPC endpoint of a node.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8545")]
    rpc: String,
    /// Private key that signs and pays: 64 hex digits, or env:VAR to read them
    /// from an environment variable.
    #[arg(long, value_name = "HEX|env:VAR")]
    key: String,
    /// Always upload in chunks, even when one transaction would do. Without
    /// it (or --single), chunks are used when the model does not fit one
    /// transaction's gas or one request.
    #[arg(long)]
    chunked: bool,
    /// Always register in one transaction, even when the model looks too large
    /// for it (e.g. for a node started with a larger --rpc.max-request-bytes).
    #[arg(long, alias = "no-chunked", conflicts_with = "chunked")]
    single: bool,
    /// How long to wait for each transaction to be included, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
}

impl ChainCommand {
    pub fn run(self) -> eyre::Result<()> {
        match self {
            ChainCommand::Upload(args) => upload(&args),
            ChainCommand::List { rpc } => list(&rpc),
            ChainCommand::Info { id, rpc } => info(&rpc, id),
        }
    }
}

/// A model file that passed local validation.
struct LocalModel {
    bytes: Vec<u8>,
    id: B256,
}

fn load_model(path: &Path) -> eyre::Result<LocalModel> {
    let bytes = std::fs::read(path)
        .wrap_err_with(|| format!("cannot read model file {}", path.display()))?;
    if bytes.len() > MAX_MODEL_BYTES as usize {
        bail!(
            "{}: model too large: {} bytes, the registry accepts at most {MAX_MODEL_BYTES} bytes (1 MiB: one call must fit one transaction's gas)",
            path.display(),
            bytes.len()
        );
    }
    let model = infera_kernels::Model::decode(&bytes)
        .map_err(|e| eyre!("{} is not a valid infera model: {e}", path.display()))?;
    let id = keccak256(&bytes);
    let gas = infera_precompiles::gas::inference_gas(&model.cost(), bytes.len() as u64);
    eprintln!("model     {id}");
    eprintln!("file      {}", path.display());
    eprintln!("size      {} bytes", bytes.len());
    eprintln!(
        "tensors   input {} ({} bytes) -> output {} ({} bytes)",
        model.input_spec(),
        model.input_spec().byte_len(),
        model.output_spec(),
        model.output_spec().byte_len()
    );
    eprintln!(
        "gas       {gas} per inference (+{} per input/output byte)",
        infera_precompiles::gas::INFER_GAS_PER_IO_BYTE
    );
    Ok(LocalModel { bytes, id })
}

/// Why a model goes up in chunks rather than in one `register` transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NeedsChunks {
    /// The transaction would need more gas than the planning budget.
    Gas { needed: u64, budget: u64 },
    /// Sending it would be a request over the node's size limit.
    RequestSize { bytes: usize, limit: usize },
}

impl fmt::Display for NeedsChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeedsChunks::Gas { needed, budget } => write!(
                f,
                "one transaction would need {needed} gas, more than {budget} ({TX_GAS_TARGET_PERCENT}% of the {TX_GAS_CAP} gas a transaction may use)"
            ),
            NeedsChunks::RequestSize { bytes, limit } => write!(
                f,
                "one transaction would be a request of {bytes} bytes, more than the node's limit of {limit} bytes"
            ),
        }
    }
}

/// The gas one transaction is planned to use at most.
const fn tx_gas_budget() -> u64 {
    TX_GAS_CAP * TX_GAS_TARGET_PERCENT / 100
}

/// Gas a transaction with `calldata` whose call costs `execution` uses:
/// the base, calldata and execution gas, or EIP-7623's calldata floor when
/// that is more.
fn tx_gas(calldata: &[u8], execution: u64) -> u64 {
    let zeros = calldata.iter().filter(|&&b| b == 0).count() as u64;
    let nonzeros = calldata.len() as u64 - zeros;
    let standard = zeros * CALLDATA_ZERO_BYTE_GAS + nonzeros * CALLDATA_NONZERO_BYTE_GAS;
    let floor = (zeros + nonzeros * NONZERO_BYTE_TOKENS) * CALLDATA_FLOOR_GAS_PER_TOKEN;
    TX_BASE_GAS + standard.saturating_add(execution).max(floor)
}

/// Bytes of the larger request that carries a transaction with
/// `calldata_len` bytes of calldata: `eth_sendRawTransaction`'s hex of the
/// signed transaction (`eth_estimateGas` carries only the calldata's hex).
fn request_bytes(calldata_len: usize) -> usize {
    2 * (calldata_len + TX_ENVELOPE_BYTES) + JSON_RPC_ENVELOPE_BYTES
}

/// The gas of registering `model` in one transaction, or why it cannot be
/// one: a request over `max_request_bytes`, or more gas than the budget.
fn single_transaction_fit(model: &[u8], max_request_bytes: usize) -> Result<u64, NeedsChunks> {
    let calldata = IModelRegistry::registerCall {
        model: model.to_vec().into(),
    }
    .abi_encode();
    let bytes = request_bytes(calldata.len());
    if bytes > max_request_bytes {
        return Err(NeedsChunks::RequestSize {
            bytes,
            limit: max_request_bytes,
        });
    }
    let needed = tx_gas(&calldata, gas::register_gas(model.len() as u64));
    let budget = tx_gas_budget();
    if needed > budget {
        return Err(NeedsChunks::Gas { needed, budget });
    }
    Ok(needed)
}

/// Model bytes per `uploadChunk`: the most the gas schedule lets one
/// transaction carry within the budget, and the most one request of at most
/// `max_request_bytes` carries.
fn chunk_bytes(max_request_bytes: usize) -> usize {
    let by_gas = gas::largest_chunk(tx_gas_budget()) as usize;
    // The calldata pads the chunk to whole 32-byte words.
    let by_request = (max_request_bytes.saturating_sub(JSON_RPC_ENVELOPE_BYTES) / 2)
        .saturating_sub(TX_ENVELOPE_BYTES + gas::UPLOAD_CHUNK_CALLDATA_OVERHEAD as usize + 31);
    by_gas.min(by_request).max(1)
}

fn upload(args: &UploadArgs) -> eyre::Result<()> {
    let signer = Signer::parse(&args.key)?;
    let local = load_model(&args.file)?;
    let rpc = RpcClient::new(&args.rpc)?;
    let chain_id = rpc.chain_id()?;
    let sender = Sender {
        rpc: &rpc,
        signer: &signer,
        chain_id,
        receipt_timeout: Duration::from_secs(args.timeout),
    };
    eprintln!("uploader  {} on chain {chain_id}", signer.address);
    // Transactions of an interrupted earlier run may still be in the pool:
    // read the upload's state only once they are in.
    sender.signer_nonce()?;

    if let Some(block) = registered_in(&rpc, signer.address, local.id)? {
        eprintln!("already registered in block {block}; nothing to upload");
        println!("{}", local.id);
        return Ok(());
    }
    let size = local.bytes.len() as u32;
    let (mut received, declared) = upload_status(&rpc, signer.address, local.id)?;
    let mut need_begin = declared == 0;
    if declared != 0 && declared != size {
        // Only possible if something else began an upload of this id with a
        // wrong size; it can never complete, so start over.
        eprintln!(
            "an upload of this id declared as {declared} bytes is in progress; cancelling it"
        );
        let data = IModelRegistry::cancelUploadCall { id: local.id }.abi_encode();
        send_estimated(&sender, &data)?;
        received = 0;
        need_begin = true;
    }

    let progress = Progress::new(u64::from(size));
    if declared == 0 && !args.chunked {
        let fit = single_transaction_fit(&local.bytes, NODE_MAX_REQUEST_BYTES);
        match fit {
            Err(why) if !args.single => progress.line(format!("uploading in chunks: {why}")),
            _ => {
                if let Some(done) = register_single(&sender, &local, args.single, &progress)? {
                    progress.finish();
                    eprintln!(
                        "registered in one transaction {} (block {}, gas {})",
                        done.hash, done.block, done.gas_used
                    );
                    return finish(&rpc, signer.address, local.id);
                }
            }
        }
    }

    if need_begin {
        let data = IModelRegistry::beginUploadCall { id: local.id, size }.abi_encode();
        let done = send_estimated(&sender, &data)?;
        progress.line(format!(
            "began upload of {size} bytes (block {})",
            done.block
        ));
    } else {
        progress.line(format!(
            "resuming: {received} of {size} bytes already on chain"
        ));
    }

    let mut chunk_len = chunk_bytes(NODE_MAX_REQUEST_BYTES);
    let mut chunk_no = 0usize;
    progress.set_position(u64::from(received));
    while received < size {
        chunk_no += 1;
        let start = received as usize;
        let left = local.bytes.len() - start;
        let total = chunk_no - 1 + left.div_ceil(chunk_len);
        let sent = send_chunk(&sender, &local, received, chunk_len.min(left), |len, hash| {
            progress.sent(chunk_no, chunk_no - 1 + left.div_ceil(len), start, len, hash)
        })
        .and_then(|(len, done)| {
            let (now, _) = upload_status(&rpc, signer.address, local.id)?;
            Ok((len, done, now))
        })
        .wrap_err_with(|| {
            format!(
                "chunk {chunk_no}/{total} (bytes {start}..{} of {size}) failed; {received} of {size} bytes were on chain before it. The registry keeps the upload: run the same `infera model upload` again to resume from the bytes on chain",
                start + chunk_len.min(left)
            )
        })?;
        let (len, done, now) = sent;
        // A shrunk chunk keeps its size for the rest of the upload.
        chunk_len = len;
        // The completing chunk registers the model and clears the upload.
        received = if now == 0 { size } else { now };
        let total = chunk_no + (size - received).div_ceil(chunk_len as u32) as usize;
        progress.confirmed(chunk_no, total, len, u64::from(received), &done);
    }
    progress.finish();
    finish(&rpc, signer.address, local.id)
}

/// Registers the whole model in one transaction. `None` when the node's
/// estimate says it does not fit after all (its gas schedule may differ from
/// this client's) and chunks are allowed (`forced` is false).
fn register_single(
    sender: &Sender<'_>,
    local: &LocalModel,
    forced: bool,
    progress: &Progress,
) -> eyre::Result<Option<Included>> {
    let data = IModelRegistry::registerCall {
        model: local.bytes.clone().into(),
    }
    .abi_encode();
    let from = sender.signer.address;
    match sender
        .rpc
        .estimate_gas(from, MODEL_REGISTRY_ADDRESS, &data)?
    {
        Ok(gas) if gas <= TX_GAS_CAP => {
            progress.line(format!(
                "registering in one transaction ({gas} gas, {} bytes of calldata)",
                data.len()
            ));
            sender.send(MODEL_REGISTRY_ADDRESS, &data, gas).map(Some)
        }
        Ok(gas) if forced => bail!(
            "--single: one transaction would need {gas} gas, above the cap of {TX_GAS_CAP} per transaction; leave out --single to upload in chunks"
        ),
        Ok(gas) => {
            progress.line(format!(
                "the node estimates {gas} gas for one transaction, above the cap of {TX_GAS_CAP}: uploading in chunks"
            ));
            Ok(None)
        }
        // A typed revert (a bad model, say) is a real error either way.
        Err(e) if forced || e.decoded_revert().is_some() => Err(e.into()),
        // The estimator finds no gas limit under the cap that works.
        Err(e) => {
            progress.line(format!("uploading in chunks ({})", e.message));
            Ok(None)
        }
    }
}

/// Sends one `uploadChunk` of up to `len` bytes at `offset` and waits for it;
/// `on_sent` hears of it once the node has it. Returns the bytes sent: fewer
/// than `len` when the node's estimate for `len` exceeds the cap.
fn send_chunk(
    sender: &Sender<'_>,
    local: &LocalModel,
    offset: u32,
    len: usize,
    on_sent: impl Fn(usize, B256),
) -> eyre::Result<(usize, Included)> {
    let start = offset as usize;
    let mut len = len;
    let mut shrinks = 0;
    let (data, gas) = loop {
        let data = IModelRegistry::uploadChunkCall {
            id: local.id,
            offset,
            data: local.bytes[start..start + len].to_vec().into(),
        }
        .abi_encode();
        match sender
            .rpc
            .estimate_gas(sender.signer.address, MODEL_REGISTRY_ADDRESS, &data)?
        {
            Ok(gas) if gas <= TX_GAS_CAP => break (data, gas),
            Err(e) if e.decoded_revert().is_some() => return Err(e.into()),
            _ if shrinks < MAX_SHRINKS && len > 1 => {
                shrinks += 1;
                len = len * 3 / 4;
            }
            Ok(gas) => bail!("a chunk of {len} bytes still needs {gas} gas, above the cap"),
            Err(e) => return Err(e.into()),
        }
    };
    let submitted = sender.submit(MODEL_REGISTRY_ADDRESS, &data, gas)?;
    on_sent(len, submitted.hash);
    Ok((len, sender.confirm(&submitted, &data)?))
}

/// Checks the registration and prints the id on stdout (the only stdout line,
/// for scripts).
fn finish(rpc: &RpcClient, from: Address, id: B256) -> eyre::Result<()> {
    match registered_in(rpc, from, id)? {
        Some(block) => {
            eprintln!("registered {id} in block {block}");
            println!("{id}");
            Ok(())
        }
        None => bail!("the upload finished but the registry does not list {id}"),
    }
}

/// Sends `data` to the registry with `eth_estimateGas` as the gas limit.
fn send_estimated(sender: &Sender<'_>, data: &[u8]) -> eyre::Result<Included> {
    let gas = sender
        .rpc
        .estimate_gas(sender.signer.address, MODEL_REGISTRY_ADDRESS, data)??;
    sender.send(MODEL_REGISTRY_ADDRESS, data, gas)
}

/// The block in which `id` was registered, or `None` if it is not.
fn registered_in(rpc: &RpcClient, from: Address, id: B256) -> eyre::Result<Option<u64>> {
    let data = IModelRegistry::modelInfoCall { id }.abi_encode();
    match rpc.call(from, MODEL_REGISTRY_ADDRESS, &data, "latest")? {
        Ok(ret) if ret.is_empty() => bail!(
            "the node has no infera model registry at {MODEL_REGISTRY_ADDRESS} (a call to it returned nothing); is it an infera node?"
        ),
        Ok(ret) => {
            let info = IModelRegistry::modelInfoCall::abi_decode_returns(&ret)
                .map_err(|e| eyre!("the registry's modelInfo answer does not decode: {e}"))?;
            Ok(Some(info.blockNumber))
        }
        Err(e) if is_unknown_model(&e, id) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_unknown_model(e: &JsonRpcError, id: B256) -> bool {
    e.revert_data()
        .and_then(|d| abi::UnknownModel::abi_decode(&d).ok())
        .is_some_and(|u| u.id == id)
}

fn upload_status(rpc: &RpcClient, uploader: Address, id: B256) -> eyre::Result<(u32, u32)> {
    let data = IModelRegistry::uploadStatusCall { uploader, id }.abi_encode();
    let ret = rpc.call(uploader, MODEL_REGISTRY_ADDRESS, &data, "latest")??;
    let status = IModelRegistry::uploadStatusCall::abi_decode_returns(&ret).map_err(|_| {
        eyre!(
            "the node at this URL answered uploadStatus with 0x{}: it has no infera model registry at {MODEL_REGISTRY_ADDRESS}",
            alloy_primitives::hex::encode(&ret)
        )
    })?;
    Ok((status.received, status.size))
}

/// Upload progress on stderr: a bar with the chunk being sent and confirmed,
/// bytes on chain and percentage on a terminal; plain lines otherwise (the bar
/// hides itself when stderr is not a terminal), so logs stay readable.
struct Progress {
    bar: ProgressBar,
    size: u64,
}

impl Progress {
    fn new(size: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] [{wide_bar}] {percent:>3}% {bytes}/{total_bytes} {msg} ({eta})",
            )
            .expect("static progress template")
            .progress_chars("=> "),
        );
        Self { bar, size }
    }

    /// A line of the log: above the bar on a terminal, plain otherwise.
    fn line(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn set_position(&self, on_chain: u64) {
        self.bar.set_position(on_chain);
    }

    /// Chunk `no` of `total` (`len` bytes from `start`) is in the node's pool.
    fn sent(&self, no: usize, total: usize, start: usize, len: usize, hash: B256) {
        if self.bar.is_hidden() {
            eprintln!(
                "chunk {no}/{total} sent: bytes {start}..{} (tx {hash})",
                start + len
            );
        } else {
            self.bar
                .set_message(format!("chunk {no}/{total} sent, {} confirmed", no - 1));
        }
    }

    /// Chunk `no` of `total` is in a block; `on_chain` bytes are now.
    fn confirmed(&self, no: usize, total: usize, len: usize, on_chain: u64, done: &Included) {
        self.bar.set_position(on_chain);
        self.bar
            .set_message(format!("chunk {no}/{total} confirmed"));
        self.line(format!(
            "chunk {no}/{total} confirmed in block {} (gas {}): {len} bytes, {on_chain}/{} on chain ({}%)",
            done.block,
            done.gas_used,
            self.size,
            on_chain * 100 / self.size.max(1)
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn list(url: &str) -> eyre::Result<()> {
    let rpc = RpcClient::new(url)?;
    let head = rpc.request("eth_blockNumber", json!([]))?;
    let mut start = 0u64;
    let mut rows = Vec::new();
    loop {
        let page = rpc.request(
            "infera_listModels",
            json!([head, format!("0x{start:x}"), format!("0x{LIST_PAGE:x}")]),
        )?;
        let page = page
            .as_array()
            .ok_or_else(|| eyre!("infera_listModels returned {page}, not a list"))?
            .clone();
        let n = page.len() as u64;
        rows.extend(page);
        if n < LIST_PAGE {
            break;
        }
        start += n;
    }
    if rows.is_empty() {
        println!("no models registered (block {})", quantity(&head)?);
        return Ok(());
    }
    println!(
        "{:<66}  {:>10}  {:>12}  {:<42}  {:>8}",
        "id", "bytes", "gas", "uploader", "block"
    );
    for m in rows {
        println!(
            "{:<66}  {:>10}  {:>12}  {:<42}  {:>8}",
            str_of(&m["id"]),
            quantity(&m["size"])?,
            quantity(&m["inferenceGas"])?,
            str_of(&m["uploader"]),
            quantity(&m["blockNumber"])?
        );
    }
    Ok(())
}

fn info(url: &str, id: B256) -> eyre::Result<()> {
    let rpc = RpcClient::new(url)?;
    let m = rpc.request("infera_getModel", json!([id]))?;
    if m.is_null() {
        bail!("no model {id} on this chain: not registered, and no upload of it in progress");
    }
    println!("model     {}", str_of(&m["id"]));
    if m["registered"] == true {
        println!("size      {} bytes", quantity(&m["size"])?);
        println!("input     {}", tensor(&m["input"])?);
        println!("output    {}", tensor(&m["output"])?);
        println!(
            "gas       {} per inference (+{} per input/output byte)",
            quantity(&m["inferenceGas"])?,
            infera_precompiles::gas::INFER_GAS_PER_IO_BYTE
        );
        println!("uploader  {}", str_of(&m["uploader"]));
        println!("block     {}", quantity(&m["blockNumber"])?);
    } else {
        println!("status    not registered; uploads in progress:");
        for u in m["uploads"].as_array().into_iter().flatten() {
            println!(
                "          {}: {}/{} bytes",
                str_of(&u["uploader"]),
                quantity(&u["received"])?,
                quantity(&u["size"])?
            );
        }
    }
    Ok(())
}

fn tensor(t: &Value) -> eyre::Result<String> {
    Ok(format!(
        "{}{} ({} bytes)",
        str_of(&t["dtype"]),
        t["shape"],
        quantity(&t["bytes"])?
    ))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_validation_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.infera");
        let err = load_model(&missing).err().unwrap().to_string();
        assert!(err.contains("cannot read model file"), "{err}");

        let junk = dir.path().join("junk.infera");
        std::fs::write(&junk, b"not a model at all").unwrap();
        let err = load_model(&junk).err().unwrap().to_string();
        assert!(err.contains("is not a valid infera model"), "{err}");

        let huge = dir.path().join("huge.infera");
        std::fs::write(&huge, vec![0u8; MAX_MODEL_BYTES as usize + 1]).unwrap();
        let err = load_model(&huge).err().unwrap().to_string();
        assert!(err.contains("model too large"), "{err}");
    }

    /// Model-like bytes with no zero byte: the costliest calldata.
    fn filler(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 255) as u8 + 1).collect()
    }

    fn digits_model() -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/models/digits/digits.infera"),
        )
        .unwrap()
    }

    #[test]
    fn a_tiny_model_goes_in_one_transaction() {
        let model = digits_model();
        let gas = single_transaction_fit(&model, NODE_MAX_REQUEST_BYTES).unwrap();
        assert!(gas <= tx_gas_budget(), "{gas}");
        assert!(
            gas > gas::register_gas(model.len() as u64) + TX_BASE_GAS,
            "calldata is counted: {gas}"
        );
    }

    #[test]
    fn models_over_one_request_or_one_transactions_gas_go_in_chunks() {
        // 7.9 MB: the size whose estimate request broke the connection.
        for len in [7_900_000, 16 * 1024 * 1024] {
            let model = filler(len);
            match single_transaction_fit(&model, NODE_MAX_REQUEST_BYTES) {
                Err(NeedsChunks::RequestSize { bytes, limit }) => {
                    assert_eq!(limit, 15 * 1024 * 1024);
                    assert!(bytes > 2 * len, "{len}: {bytes}");
                }
                other => panic!("{len} bytes: {other:?}"),
            }
            // Even a node without a request limit could not take it: gas.
            match single_transaction_fit(&model, usize::MAX) {
                Err(NeedsChunks::Gas { needed, .. }) => assert!(needed > TX_GAS_CAP),
                other => panic!("{len} bytes: {other:?}"),
            }
        }
        // 256 KiB: a small request, but over one transaction's gas.
        let err = single_transaction_fit(&filler(256 * 1024), NODE_MAX_REQUEST_BYTES).unwrap_err();
        assert!(matches!(err, NeedsChunks::Gas { .. }), "{err:?}");
        assert!(
            err.to_string().contains("one transaction would need"),
            "{err}"
        );
        // A node that accepts small requests only sends small models to chunks.
        let model = filler(4096);
        let calldata_len = 4 + 2 * 32 + 4096;
        assert_eq!(
            single_transaction_fit(&model, 8192),
            Err(NeedsChunks::RequestSize {
                bytes: request_bytes(calldata_len),
                limit: 8192
            })
        );
    }

    #[test]
    fn the_single_transaction_threshold_follows_the_gas_schedule() {
        let fits = |model: &[u8]| single_transaction_fit(model, NODE_MAX_REQUEST_BYTES).is_ok();
        let (mut lo, mut hi) = (1usize, 1 << 20);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(&filler(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        // Each model byte costs the registry's gas and a non-zero calldata byte.
        let per_byte = gas::MODEL_BYTE_GAS + CALLDATA_NONZERO_BYTE_GAS;
        let approx = (tx_gas_budget() / per_byte) as usize;
        assert!(
            lo < approx && lo + 3_000 > approx,
            "threshold {lo}, ~{approx}"
        );
        let needed = single_transaction_fit(&filler(lo), NODE_MAX_REQUEST_BYTES).unwrap();
        assert!(needed <= tx_gas_budget() && needed + per_byte * 32 > tx_gas_budget());
        // Zero bytes are cheaper calldata, so a zero-heavy model fits beyond.
        assert!(fits(&vec![0; lo + 1_000]));
    }

    #[test]
    fn chunks_fit_one_transaction_and_one_request() {
        let len = chunk_bytes(NODE_MAX_REQUEST_BYTES);
        assert_eq!(len as u64, gas::largest_chunk(tx_gas_budget()));
        let chunk = |len: usize| {
            IModelRegistry::uploadChunkCall {
                id: B256::repeat_byte(0xff),
                offset: u32::MAX,
                data: filler(len).into(),
            }
            .abi_encode()
        };
        // The completing chunk, which also pays for the registration, too.
        let calldata = chunk(len);
        let last = tx_gas(&calldata, gas::upload_chunk_gas(len as u64, true));
        assert!(last <= TX_GAS_CAP, "{last}");
        assert!(request_bytes(calldata.len()) <= NODE_MAX_REQUEST_BYTES);
        // A node with a small request limit gets chunks that fit it.
        let small = chunk_bytes(64 * 1024);
        assert!(small < len);
        assert!(request_bytes(chunk(small).len()) <= 64 * 1024);
        assert!(request_bytes(chunk(small + 64).len()) > 64 * 1024);
        // The largest model, in a bounded number of transactions.
        let chunks = (MAX_MODEL_BYTES as usize).div_ceil(len);
        assert!((2..250).contains(&chunks), "{chunks} chunks of {len} bytes");
    }

    #[test]
    fn request_bytes_bounds_the_requests_actually_sent() {
        use alloy_consensus::TxEip1559;
        use alloy_primitives::{Bytes, TxKind, U256};
        let signer = Signer::parse(&"11".repeat(32)).unwrap();
        for len in [0usize, 1, 1000, 100_000] {
            let input = filler(len);
            // Every field at its widest.
            let tx = TxEip1559 {
                chain_id: u64::MAX,
                nonce: u64::MAX,
                gas_limit: u64::MAX,
                max_fee_per_gas: u128::MAX,
                max_priority_fee_per_gas: u128::MAX,
                to: TxKind::Call(Address::repeat_byte(0xff)),
                value: U256::MAX,
                input: Bytes::from(input.clone()),
                ..Default::default()
            };
            let (raw, _) = signer.sign(tx);
            let hex = crate::chain_client::hex;
            let send = json!({"jsonrpc": "2.0", "id": u64::MAX, "method": "eth_sendRawTransaction", "params": [hex(&raw)]});
            let estimate = json!({"jsonrpc": "2.0", "id": u64::MAX, "method": "eth_estimateGas",
                "params": [{"from": Address::repeat_byte(0xff), "to": MODEL_REGISTRY_ADDRESS, "data": hex(&input)}, "latest"]});
            for body in [send, estimate] {
                let sent = body.to_string().len();
                assert!(
                    sent <= request_bytes(len),
                    "{len}: {sent} > {}",
                    request_bytes(len)
                );
            }
        }
    }

    #[test]
    fn the_demo_model_validates_and_its_id_is_its_hash() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/models/digits/digits.infera");
        let m = load_model(&path).unwrap();
        assert_eq!(m.id, keccak256(std::fs::read(&path).unwrap()));
    }
}
