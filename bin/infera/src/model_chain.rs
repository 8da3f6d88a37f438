//! `infera model upload | list | info`: models on a running chain.
//!
//! `upload` validates the file locally, then registers it through the model
//! registry precompile: in one `register` transaction when that fits the
//! per-transaction gas cap, otherwise `beginUpload` and `uploadChunk`s, each
//! sized by `eth_estimateGas` to fit one transaction. The upload's progress
//! lives on chain (`uploadStatus`), so a second run after an interruption
//! continues from the bytes already there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy_primitives::{Address, B256, keccak256};
use alloy_sol_types::{SolCall, SolError};
use eyre::{WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use infera_precompiles::abi::{self, IModelRegistry, MAX_MODEL_BYTES, MODEL_REGISTRY_ADDRESS};
use serde_json::{Value, json};

use crate::chain_client::{JsonRpcError, RpcClient, Sender, Signer, quantity};

/// The EIP-7825 cap on one transaction's gas (Osaka): no chunk may need more.
pub const TX_GAS_CAP: u64 = 1 << 24;
/// Share of [`TX_GAS_CAP`] a chunk is sized to, in percent: headroom for the
/// estimate's error and for state that changes between estimate and inclusion.
const CHUNK_GAS_TARGET_PERCENT: u64 = 90;
/// Size of the chunk whose gas is estimated to size the others, in bytes.
const PROBE_CHUNK_BYTES: usize = 4 * 1024;
/// Most times a chunk is shrunk before giving up.
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
    /// Always upload in chunks, even when one transaction would do.
    #[arg(long)]
    chunked: bool,
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
            "{}: model too large: {} bytes, the registry accepts at most {MAX_MODEL_BYTES} bytes (16 MiB)",
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

    let bar = progress_bar(u64::from(size));
    bar.set_position(u64::from(received));
    if declared == 0 && !args.chunked {
        let data = IModelRegistry::registerCall {
            model: local.bytes.clone().into(),
        }
        .abi_encode();
        match rpc.estimate_gas(signer.address, MODEL_REGISTRY_ADDRESS, &data)? {
            Ok(gas) if gas <= TX_GAS_CAP => {
                let done = sender.send(MODEL_REGISTRY_ADDRESS, &data, gas)?;
                bar.finish_and_clear();
                eprintln!(
                    "registered in one transaction {} (block {}, gas {})",
                    done.hash, done.block, done.gas_used
                );
                return finish(&rpc, signer.address, local.id);
            }
            Ok(gas) => eprintln!(
                "one transaction would need {gas} gas, above the cap of {TX_GAS_CAP}: uploading in chunks"
            ),
            // Too big for one transaction's gas: the estimator finds no gas
            // limit under the cap that works. Any typed revert is a real error.
            Err(e) if e.decoded_revert().is_some() => return Err(e.into()),
            Err(e) => eprintln!("uploading in chunks ({})", e.message),
        }
    }

    if need_begin {
        let data = IModelRegistry::beginUploadCall { id: local.id, size }.abi_encode();
        let done = send_estimated(&sender, &data)?;
        log_line(
            &bar,
            format!("began upload of {size} bytes (block {})", done.block),
        );
    } else {
        log_line(
            &bar,
            format!("resuming: {received} of {size} bytes already on chain"),
        );
    }

    let mut chunk_len = first_chunk_len(&rpc, signer.address, &local, received)?;
    let mut chunk_no = 0u32;
    while received < size {
        let start = received as usize;
        let mut len = chunk_len.min(local.bytes.len() - start);
        let mut shrinks = 0;
        let (data, gas) = loop {
            let data = IModelRegistry::uploadChunkCall {
                id: local.id,
                offset: received,
                data: local.bytes[start..start + len].to_vec().into(),
            }
            .abi_encode();
            match rpc.estimate_gas(signer.address, MODEL_REGISTRY_ADDRESS, &data)? {
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
        chunk_len = len;
        let done = sender.send(MODEL_REGISTRY_ADDRESS, &data, gas)?;
        chunk_no += 1;
        let (now, _) = upload_status(&rpc, signer.address, local.id)?;
        received = if now == 0 {
            // The completing chunk registers the model and clears the upload.
            size
        } else {
            now
        };
        bar.set_position(u64::from(received));
        log_line(
            &bar,
            format!(
                "chunk {chunk_no}: {len} bytes, {received}/{size} on chain (block {}, gas {})",
                done.block, done.gas_used
            ),
        );
    }
    bar.finish_and_clear();
    finish(&rpc, signer.address, local.id)
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
fn send_estimated(sender: &Sender<'_>, data: &[u8]) -> eyre::Result<crate::chain_client::Included> {
    let gas = sender
        .rpc
        .estimate_gas(sender.signer.address, MODEL_REGISTRY_ADDRESS, data)??;
    sender.send(MODEL_REGISTRY_ADDRESS, data, gas)
}

/// Bytes per chunk so that one chunk's gas is about
/// [`CHUNK_GAS_TARGET_PERCENT`] of the cap, from the estimates of two probe
/// chunks (fixed cost and cost per byte).
fn first_chunk_len(
    rpc: &RpcClient,
    from: Address,
    local: &LocalModel,
    received: u32,
) -> eyre::Result<usize> {
    let start = received as usize;
    let left = local.bytes.len() - start;
    let small = PROBE_CHUNK_BYTES.min(left);
    let large = (2 * PROBE_CHUNK_BYTES).min(left);
    if large == small {
        return Ok(left);
    }
    let estimate = |len: usize| -> eyre::Result<u64> {
        let data = IModelRegistry::uploadChunkCall {
            id: local.id,
            offset: received,
            data: local.bytes[start..start + len].to_vec().into(),
        }
        .abi_encode();
        Ok(rpc.estimate_gas(from, MODEL_REGISTRY_ADDRESS, &data)??)
    };
    let (g_small, g_large) = (estimate(small)?, estimate(large)?);
    let per_byte = (g_large.saturating_sub(g_small))
        .div_ceil((large - small) as u64)
        .max(1);
    let fixed = g_small.saturating_sub(per_byte * small as u64);
    let budget = TX_GAS_CAP * CHUNK_GAS_TARGET_PERCENT / 100;
    let len = budget.saturating_sub(fixed) / per_byte;
    Ok((len as usize).clamp(1, left))
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

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} ({eta})",
        )
        .expect("static progress template")
        .progress_chars("=> "),
    );
    bar
}

/// A progress line: above the bar on a terminal, a plain stderr line
/// otherwise (the bar hides itself when stderr is not a terminal).
fn log_line(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
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

    #[test]
    fn the_demo_model_validates_and_its_id_is_its_hash() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/models/digits/digits.infera");
        let m = load_model(&path).unwrap();
        assert_eq!(m.id, keccak256(std::fs::read(&path).unwrap()));
    }
}
