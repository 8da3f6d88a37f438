//! `infera model upload` choosing chunks by itself: a model just over what one
//! transaction can register goes up in chunks without `--chunked` and then
//! runs, and a request over the node's size limit is named for what it is.

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::SolCall;
use infera_kernels::Model;
use infera_precompiles::abi::{IInference, INFERENCE_ADDRESS};
use infera_precompiles::gas;

use crate::ai::{dense_model, infera};
use crate::node::Node;
use crate::wallet::Wallet;

/// EIP-7825's cap on one transaction's gas.
const TX_GAS_CAP: u64 = 1 << 24;

/// The `N` of the first "chunk 1/N" in an upload's log.
fn chunk_total(log: &str) -> usize {
    log.split("chunk 1/")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"chunk 1/N\" in the log:\n{log}"))
}

#[test]
fn a_model_just_over_one_transaction_goes_up_in_chunks_unasked_and_runs() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    // ~148 KB: registering it in one transaction needs a little more gas
    // than a transaction may use (the registry's gas per byte plus calldata).
    let model = dense_model(256, 576);
    let one_tx = gas::register_gas(model.len() as u64) + 16 * model.len() as u64;
    assert!(
        one_tx > TX_GAS_CAP && one_tx < TX_GAS_CAP / 10 * 11,
        "the test model must be just over one transaction: {one_tx} gas"
    );
    let file = dir.path().join("just-over.infera");
    std::fs::write(&file, &model).unwrap();

    let url = format!("http://{}", node.http);
    let out = infera(&[
        "model",
        "upload",
        file.to_str().unwrap(),
        "--rpc",
        &url,
        "--key",
        "env:INFERA_E2E_KEY",
    ])
    .output()
    .expect("spawn infera");
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "upload failed: {}\n{log}", out.status);
    let id: B256 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("upload printed no model id ({e}):\n{log}"));
    assert_eq!(id, keccak256(&model));
    assert!(
        log.contains("uploading in chunks: one transaction would need"),
        "{log}"
    );
    // stderr is not a terminal here: plain lines, no bar redrawn with \r.
    let n = chunk_total(&log);
    assert!(n >= 2, "{log}");
    assert!(
        log.contains(&format!("chunk 1/{n} sent: bytes 0..")),
        "{log}"
    );
    assert!(
        log.contains(&format!("chunk {n}/{n} confirmed in block")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{0}/{0} on chain (100%)", model.len())),
        "{log}"
    );
    assert!(!log.contains('\r') && !log.contains('\u{1b}'), "{log:?}");

    // The model answers an inference call like the CPU reference.
    let input = vec![7u8; 256];
    let call = IInference::inferCall {
        id,
        input: input.clone().into(),
    }
    .abi_encode();
    let ret = node
        .rpc
        .call(Wallet::dev(0).address, INFERENCE_ADDRESS, &call, "latest")
        .unwrap_or_else(|e| panic!("infer({id}) failed: {e:?}"));
    let output = IInference::inferCall::abi_decode_returns(&ret).unwrap();
    let expected = Model::decode(&model).unwrap().run(&input).unwrap();
    assert_eq!(output.to_vec(), expected);
}

#[test]
fn a_request_over_the_nodes_size_limit_is_named_not_unreachable() {
    // Models are at most 1 MiB, so one request outgrows the default 15 MiB
    // limit no more: a node with a 256 KiB limit stands in for it.
    let node = Node::start_with_args(&["--rpc.max-request-bytes", "262144"]);
    let dir = tempfile::tempdir().unwrap();
    let model = dense_model(256, 1_000);
    assert!(model.len() > 200_000, "{}", model.len());
    let file = dir.path().join("big.infera");
    std::fs::write(&file, &model).unwrap();
    let url = format!("http://{}", node.http);
    let out = infera(&[
        "model",
        "upload",
        file.to_str().unwrap(),
        "--rpc",
        &url,
        "--key",
        "env:INFERA_E2E_KEY",
        "--single",
    ])
    .output()
    .expect("spawn infera");
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "a forced single upload succeeded:\n{log}"
    );
    assert!(
        log.contains("bytes exceeds the node's") && !log.contains("cannot reach"),
        "{log}"
    );
    assert!(out.stdout.is_empty());
}
