//! The AI precompiles end to end: models uploaded with the `infera model`
//! CLI, the Solidity examples in `precompiles/solidity/` (compiled from
//! source by `scripts/compile-solidity.sh`) deployed and called over
//! JSON-RPC, typed errors, restarts, chunked and resumed uploads, and the
//! `infera_` namespace.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::{SolError, SolValue};
use infera_kernels::ops::DenseParams;
use infera_kernels::{DType, Model, Node as GraphNode, Op, TensorInfo, TensorSpec};
use infera_model_import::npy::{Npy, NpyData};
use infera_precompiles::abi::{self, IModelRegistry};
use serde_json::{Value, json};

use crate::abi::{selector, topic, u256_of, w};
use crate::http::{Rpc, RpcError, addr, bytes, hex, qty};
use crate::node::Node;
use crate::wallet::{DEV_KEYS, Wallet, ether};
use crate::{block_of, deploy, fee_paid, send_and_wait, send_ok};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn digits_model_path() -> PathBuf {
    repo().join("kernels/models/digits/digits.infera")
}

/// A contract compiled from `precompiles/solidity` by `scripts/compile-solidity.sh`.
struct Compiled {
    abi: Value,
    bytecode: Vec<u8>,
}

fn compiled(name: &str) -> Compiled {
    let path = repo().join(format!("precompiles/solidity/out/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. The AI contracts are compiled from source, not committed: run ./scripts/compile-solidity.sh (needs node and npm; ./scripts/test.sh runs it)",
            path.display()
        )
    });
    let v: Value = serde_json::from_str(&text).expect("artifact JSON");
    Compiled {
        abi: v["abi"].clone(),
        bytecode: bytes(&v["bytecode"]),
    }
}

/// Runs the built `infera` binary with `args`; the dev key travels in the
/// environment (`--key env:INFERA_E2E_KEY`), as a user would pass it.
pub(crate) fn infera(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infera"));
    cmd.args(args)
        .env("INFERA_E2E_KEY", DEV_KEYS[0])
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdin(Stdio::null());
    cmd
}

fn run_ok(args: &[&str]) -> Output {
    let out = infera(args).output().expect("spawn infera");
    assert!(
        out.status.success(),
        "infera {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn url(node: &Node) -> String {
    format!("http://{}", node.http)
}

/// `infera model upload`; returns the id it printed on stdout and its stderr.
fn cli_upload(node: &Node, file: &Path) -> (B256, String) {
    let u = url(node);
    let out = run_ok(&[
        "model",
        "upload",
        file.to_str().unwrap(),
        "--rpc",
        &u,
        "--key",
        "env:INFERA_E2E_KEY",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id: B256 = stdout
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("upload printed {stdout:?}, not a model id: {e}"));
    (id, String::from_utf8(out.stderr).unwrap())
}

/// One float sample of `kernels/models/digits/test_x.npy` and its true label.
fn digit_sample(index: usize) -> (Vec<f32>, i64) {
    let dir = repo().join("kernels/models/digits");
    let x = Npy::read(&dir.join("test_x.npy")).expect("test_x.npy");
    let y = Npy::read(&dir.join("test_y.npy")).expect("test_y.npy");
    let all = x.to_f32();
    (
        all[index * 64..(index + 1) * 64].to_vec(),
        y.to_i64().unwrap()[index],
    )
}

/// `infera model run --argmax` on one sample written as its own `.npy`:
/// the label and the raw output values.
fn cli_label(dir: &Path, sample: &[f32]) -> (u64, Vec<i64>) {
    let path = dir.join("sample.npy");
    let npy = Npy {
        shape: vec![1, 1, 8, 8],
        data: NpyData::F32(sample.to_vec()),
    };
    std::fs::write(&path, npy.to_bytes()).unwrap();
    let out = run_ok(&[
        "model",
        "run",
        digits_model_path().to_str().unwrap(),
        "--input",
        path.to_str().unwrap(),
        "--argmax",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("model run prints JSON");
    let r = &v["results"][0];
    let values = r["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    (r["argmax"].as_u64().expect("argmax"), values)
}

/// The int8 input bytes the CLI feeds the model for `sample`.
fn quantized(sample: &[f32]) -> Vec<u8> {
    let model = Model::decode(&std::fs::read(digits_model_path()).unwrap()).unwrap();
    infera_model_import::tool::quantize_input(&model, sample).unwrap()
}

fn encode<T: SolValue>(sig: &str, args: T) -> Vec<u8>
where
    for<'a> <T::SolType as alloy_sol_types::SolType>::Token<'a>: alloy_sol_types::abi::TokenSeq<'a>,
{
    let mut data = selector(sig).to_vec();
    data.extend(args.abi_encode_params());
    data
}

/// Asserts `err` is an "execution reverted" carrying `E`, and returns it.
fn typed_revert<E: SolError>(err: &RpcError) -> E {
    assert_eq!(err.code, 3, "expected execution reverted (3): {err:?}");
    let data = bytes(err.data.as_ref().expect("revert data"));
    E::abi_decode(&data)
        .unwrap_or_else(|e| panic!("revert data {} is not {}: {e}", hex(&data), E::SIGNATURE))
}

/// Replays a failed transaction as `eth_call` on the state before its block
/// and returns the revert (what a wallet does to show why it failed).
fn replay(rpc: &Rpc, from: Address, to: Address, data: &[u8], receipt: &Value) -> RpcError {
    let before = format!("0x{:x}", block_of(receipt) - 1);
    rpc.call(from, to, data, before.as_str())
        .expect_err("the failed transaction succeeds when replayed")
}

#[test]
fn solidity_interface_matches_the_rust_abi() {
    let sig = |e: &Value| {
        let types: Vec<&str> = e["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        format!("{}({})", e["name"].as_str().unwrap(), types.join(","))
    };
    let of_type = |abi: &Value, kind: &str| -> Vec<String> {
        let mut v: Vec<String> = abi
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == kind)
            .map(sig)
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<[u8; 4]>| {
        v.sort();
        v
    };
    let selectors =
        |names: &[String]| sorted(names.iter().map(|s| selector(s)).collect::<Vec<_>>());

    let registry = compiled("IModelRegistry").abi;
    assert_eq!(
        selectors(&of_type(&registry, "function")),
        sorted(IModelRegistry::IModelRegistryCalls::SELECTORS.to_vec()),
        "IInfera.sol IModelRegistry functions differ from precompiles/src/abi.rs"
    );
    let inference = compiled("IInference").abi;
    assert_eq!(
        selectors(&of_type(&inference, "function")),
        sorted(abi::IInference::IInferenceCalls::SELECTORS.to_vec()),
        "IInfera.sol IInference functions differ from precompiles/src/abi.rs"
    );
    let mut events: Vec<B256> = of_type(&registry, "event")
        .iter()
        .map(|s| topic(s))
        .collect();
    events.sort();
    let mut rust_events: Vec<B256> = IModelRegistry::IModelRegistryEvents::SELECTORS
        .iter()
        .map(|s| B256::from(*s))
        .collect();
    rust_events.sort();
    assert_eq!(events, rust_events, "IModelRegistry events differ");

    let rust_errors = sorted(vec![
        abi::UnknownModel::SELECTOR,
        abi::UploadIncomplete::SELECTOR,
        abi::InvalidInputLength::SELECTOR,
        abi::InvalidModel::SELECTOR,
        abi::InvalidModelSize::SELECTOR,
        abi::ModelHashMismatch::SELECTOR,
        abi::NoUpload::SELECTOR,
        abi::UploadSizeConflict::SELECTOR,
        abi::ChunkOutOfOrder::SELECTOR,
        abi::ChunkOutOfBounds::SELECTOR,
        abi::WriteInStaticCall::SELECTOR,
        abi::MalformedCall::SELECTOR,
    ]);
    let errors = compiled("IInferaErrors").abi;
    assert_eq!(
        selectors(&of_type(&errors, "error")),
        rust_errors,
        "IInferaErrors differ from the custom errors of precompiles/src/abi.rs"
    );
    // The examples inherit the errors, so wallets decode a bubbled revert by name.
    for example in ["DigitClassifier", "DigitBounty"] {
        let names = of_type(&compiled(example).abi, "error");
        let have = selectors(&names);
        for s in &rust_errors {
            assert!(have.contains(s), "{example}'s ABI lacks an Infera error");
        }
    }
}

#[test]
fn digits_classified_on_chain_match_the_cli() {
    let mut node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let u = url(&node);

    // Upload with the CLI (key 0); a second run finds it registered.
    let (id, log) = cli_upload(&node, &digits_model_path());
    assert_eq!(id, keccak256(std::fs::read(digits_model_path()).unwrap()));
    assert!(log.contains("registered in one transaction"), "{log}");
    let (again, log) = cli_upload(&node, &digits_model_path());
    assert_eq!(again, id);
    assert!(log.contains("already registered"), "{log}");

    let rpc = &node.rpc;
    let info = rpc.ok("infera_getModel", json!([id]));
    assert_eq!(info["registered"], true, "{info}");
    assert_eq!(qty(&info["size"]), 7549);
    assert_eq!(info["input"]["dtype"], "int8");
    assert_eq!(info["input"]["shape"], json!([1, 1, 8, 8]));
    assert_eq!(qty(&info["input"]["bytes"]), 64);
    assert_eq!(qty(&info["output"]["bytes"]), 10);
    assert_eq!(addr(&info["uploader"]), Wallet::dev(0).address);
    let listed = rpc.ok("infera_listModels", json!([]));
    assert_eq!(
        listed,
        json!([{
            "id": id,
            "size": info["size"],
            "inferenceGas": info["inferenceGas"],
            "uploader": info["uploader"],
            "blockNumber": info["blockNumber"],
        }])
    );
    let list_text = String::from_utf8(run_ok(&["model", "list", "--rpc", &u]).stdout).unwrap();
    assert!(list_text.contains(&id.to_string()), "{list_text}");
    let info_text =
        String::from_utf8(run_ok(&["model", "info", &id.to_string(), "--rpc", &u]).stdout).unwrap();
    assert!(
        info_text.contains("int8[1,1,8,8] (64 bytes)") && info_text.contains("7549 bytes"),
        "{info_text}"
    );

    // The classifier refuses an unknown model at deployment.
    let alice = Wallet::dev(1);
    let classifier = compiled("DigitClassifier");
    let mut code = classifier.bytecode.clone();
    code.extend(B256::repeat_byte(7).abi_encode());
    let err = rpc.err(
        "eth_estimateGas",
        json!([{"from": alice.address, "data": hex(&code)}]),
    );
    let unknown: abi::UnknownModel = typed_revert(&err);
    assert_eq!(unknown.id, B256::repeat_byte(7));
    assert!(err.message.contains("UnknownModel"), "{err:?}");

    let mut code = classifier.bytecode.clone();
    code.extend(id.abi_encode());
    let (c, _) = deploy(rpc, &alice, 0, code, 3_000_000);

    // Classify a real held-out image; the event's label is what the CLI says.
    let (sample, truth) = digit_sample(0);
    let (label, values) = cli_label(dir.path(), &sample);
    assert_eq!(label as i64, truth, "the demo model gets sample 0 right");
    let image = quantized(&sample);
    let data = encode("classify(bytes)", (image.clone(),));
    let r = send_ok(rpc, &alice.tx(1, Some(c), U256::ZERO, data, 1_000_000));
    let logs = r["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{r}");
    assert_eq!(
        logs[0]["topics"],
        json!([
            topic("Classified(address,uint256,uint256)"),
            alice.address.into_word(),
            w(0)
        ])
    );
    assert_eq!(u256_of(&bytes(&logs[0]["data"])), U256::from(label));
    let stored = |rpc: &Rpc| {
        u256_of(
            &rpc.call(
                alice.address,
                c,
                &encode("labelOf(uint256)", (U256::ZERO,)),
                "latest",
            )
            .unwrap(),
        )
    };
    assert_eq!(stored(rpc), U256::from(label));

    // infera_dryRun: same label, the output bytes `infera model run` printed.
    let dry = rpc.ok("infera_dryRun", json!([id, hex(&image)]));
    assert_eq!(qty(&dry["argmax"]), label);
    let out_bytes: Vec<u8> = values.iter().map(|&v| v as i8 as u8).collect();
    assert_eq!(bytes(&dry["output"]), out_bytes);
    assert_eq!(
        qty(&dry["gasUsed"]),
        infera_precompiles::gas::inference_call_gas(qty(&info["inferenceGas"]), 64, 10)
    );

    // A wrong-length image: the precompile's typed error, through the
    // contract, in eth_call, in a failed receipt, and in infera_dryRun.
    let short = encode("classify(bytes)", (image[..63].to_vec(),));
    let err = rpc.call(alice.address, c, &short, "latest").unwrap_err();
    let e: abi::InvalidInputLength = typed_revert(&err);
    assert_eq!(
        (e.id, e.expected, e.actual),
        (id, U256::from(64), U256::from(63))
    );
    assert!(err.message.contains("InvalidInputLength"), "{err:?}");
    let r = send_and_wait(
        rpc,
        &alice.tx(2, Some(c), U256::ZERO, short.clone(), 1_000_000),
    );
    assert_eq!(r["status"], "0x0", "{r}");
    assert!(r["logs"].as_array().unwrap().is_empty());
    let e: abi::InvalidInputLength = typed_revert(&replay(rpc, alice.address, c, &short, &r));
    assert_eq!(e.actual, U256::from(63));
    let err = rpc.err("infera_dryRun", json!([id, hex(&image[..63])]));
    let _: abi::InvalidInputLength = typed_revert(&err);
    let err = rpc.err("infera_dryRun", json!([B256::repeat_byte(9), hex(&image)]));
    let _: abi::UnknownModel = typed_revert(&err);
    assert!(
        rpc.ok("infera_getModel", json!([B256::repeat_byte(9)]))
            .is_null()
    );

    // The bounty: pays for an image labelled as the target, once per image.
    let bob = Wallet::dev(2);
    let bounty = compiled("DigitBounty");
    let mut code = bounty.bytecode.clone();
    code.extend((id, U256::from(label), ether(1)).abi_encode_params());
    let tx = alice.tx(3, None, ether(3), code, 3_000_000);
    let r = send_ok(rpc, &tx);
    let b = addr(&r["contractAddress"]);
    assert_eq!(rpc.balance(b, "latest"), ether(3));
    let claim = encode("claim(bytes)", (image.clone(),));
    let before = rpc.balance(bob.address, "latest");
    let r = send_ok(
        rpc,
        &bob.tx(0, Some(b), U256::ZERO, claim.clone(), 1_000_000),
    );
    assert_eq!(
        rpc.balance(bob.address, "latest"),
        before + ether(1) - fee_paid(&r),
        "the winner is paid the reward"
    );
    assert_eq!(rpc.balance(b, "latest"), ether(2));
    let err = rpc.call(bob.address, b, &claim, "latest").unwrap_err();
    assert_eq!(
        bytes(err.data.as_ref().unwrap())[..4],
        selector("AlreadyClaimed(bytes32,address)")
    );
    // An image of another digit is refused with the label the model gave.
    let other = (1..40)
        .map(digit_sample)
        .find(|(s, _)| cli_label(dir.path(), s).0 != label)
        .expect("a held-out image of another digit");
    let (other_label, _) = cli_label(dir.path(), &other.0);
    let wrong = encode("claim(bytes)", (quantized(&other.0),));
    let err = rpc.call(bob.address, b, &wrong, "latest").unwrap_err();
    let data = bytes(err.data.as_ref().unwrap());
    assert_eq!(data[..4], selector("WrongDigit(uint256,uint256)"));
    assert_eq!(
        <(U256, U256)>::abi_decode_params(&data[4..]).unwrap(),
        (U256::from(label), U256::from(other_label))
    );

    // A restart keeps the model, the classification and the bounty's state.
    let head = rpc.block_number();
    node.stop();
    node.restart();
    let rpc = &node.rpc;
    assert_eq!(rpc.block_number(), head);
    assert_eq!(rpc.ok("infera_getModel", json!([id])), info);
    assert_eq!(stored(rpc), U256::from(label));
    assert_eq!(rpc.balance(b, "latest"), ether(2));
    let dry2 = rpc.ok("infera_dryRun", json!([id, hex(&image)]));
    assert_eq!(dry2, dry, "same answer from the model read back from state");
    let r = send_ok(
        rpc,
        &alice.tx(
            4,
            Some(c),
            U256::ZERO,
            encode("classify(bytes)", (image,)),
            1_000_000,
        ),
    );
    assert_eq!(u256_of(&bytes(&r["logs"][0]["data"])), U256::from(label));
}

/// A model with one dense layer of `inputs` x `outputs` int8 weights (int32
/// out): about `inputs * outputs` bytes.
pub(crate) fn dense_model(inputs: usize, outputs: usize) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_u32;
    let weights = (0..inputs * outputs)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed % 255) as i8
        })
        .collect();
    let input = TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape: vec![1, inputs],
        },
        zero_point: 0,
    };
    let dense = GraphNode {
        op: Op::Dense(DenseParams {
            in_features: inputs,
            out_features: outputs,
            out_dtype: DType::I32,
            weights,
            bias: vec![0; outputs],
            requant: Vec::new(),
            act_min: -128,
            act_max: 127,
        }),
        inputs: vec![0],
        zero_point: 0,
        scale_bits: 0,
    };
    Model::new(input, 0, vec![dense], 1)
        .expect("valid dense model")
        .encode()
}

#[test]
fn large_model_uploads_in_chunks_and_resumes_after_interruption() {
    let node = Node::start();
    let rpc = &node.rpc;
    let u = url(&node);
    let dir = tempfile::tempdir().unwrap();
    // ~660 KB: registering it in one call needs more gas than a whole block
    // holds, let alone one transaction (2^24 gas).
    let model = dense_model(1024, 640);
    let block_gas_limit = qty(&rpc.block("latest", false)["gasLimit"]);
    let one_call_gas = infera_precompiles::gas::register_gas(model.len() as u64);
    assert!(
        one_call_gas > block_gas_limit,
        "the test model must not fit one block: {one_call_gas} gas, block limit {block_gas_limit}"
    );
    let file = dir.path().join("dense.infera");
    std::fs::write(&file, &model).unwrap();
    let id = keccak256(&model);
    let uploader = Wallet::dev(0).address;

    // First run: stopped (SIGKILL) once its first chunk is on chain.
    let mut child = infera(&[
        "model",
        "upload",
        file.to_str().unwrap(),
        "--rpc",
        &u,
        "--key",
        "env:INFERA_E2E_KEY",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn infera");
    let mut first_log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        first_log.push_str(&line);
        first_log.push('\n');
        if line.starts_with("chunk 1/") && line.contains(" confirmed ") {
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        first_log.contains("one transaction would need")
            || first_log.contains("uploading in chunks"),
        "{first_log}"
    );
    assert!(first_log.contains("chunk 1/"), "{status}: {first_log}");

    // The partial upload is on chain and visible.
    let up = rpc.ok("infera_getUpload", json!([uploader, id]));
    let received = qty(&up["received"]);
    assert_eq!(qty(&up["size"]), model.len() as u64, "{up}");
    assert!(received > 0 && received < model.len() as u64, "{up}");
    let partial = rpc.ok("infera_getModel", json!([id]));
    assert_eq!(partial["registered"], false, "{partial}");
    assert_eq!(addr(&partial["uploads"][0]["uploader"]), uploader);
    let info_text =
        String::from_utf8(run_ok(&["model", "info", &id.to_string(), "--rpc", &u]).stdout).unwrap();
    assert!(info_text.contains("not registered"), "{info_text}");
    let infer = IModelRegistry::modelInfoCall { id };
    let err = rpc
        .call(
            uploader,
            abi::MODEL_REGISTRY_ADDRESS,
            &alloy_sol_types::SolCall::abi_encode(&infer),
            "latest",
        )
        .unwrap_err();
    let _: abi::UnknownModel = typed_revert(&err);

    // Second run resumes from the bytes on chain and completes.
    let (done, log) = cli_upload(&node, &file);
    assert_eq!(done, id);
    assert!(log.contains("resuming:"), "{log}");
    let chunks = first_log.matches(" confirmed in block").count()
        + log.matches(" confirmed in block").count();
    assert!(chunks >= 3, "expected several chunks:\n{first_log}\n{log}");

    let info = rpc.ok("infera_getModel", json!([id]));
    assert_eq!(info["registered"], true, "{info}");
    assert_eq!(qty(&info["size"]), model.len() as u64);
    assert_eq!(info["uploads"], json!([]));
    assert_eq!(qty(&info["output"]["bytes"]), 640 * 4);
    let up = rpc.ok("infera_getUpload", json!([uploader, id]));
    assert_eq!((qty(&up["received"]), qty(&up["size"])), (0, 0));
    // The registration came blocks after the upload began.
    let registered_block = qty(&info["blockNumber"]);
    assert!(
        registered_block >= 4,
        "registered in block {registered_block}"
    );

    // The big model runs, and agrees with the CPU reference.
    let input = vec![3u8; 1024];
    let dry = rpc.ok("infera_dryRun", json!([id, hex(&input)]));
    let expected = Model::decode(&model).unwrap().run(&input).unwrap();
    assert_eq!(bytes(&dry["output"]), expected);
}

#[test]
fn the_inference_device_is_logged_at_start_and_a_missing_gpu_that_was_asked_for_stops_the_node() {
    // The default (`auto`) says which backend it chose and why.
    let node = Node::start();
    let log = node.log_tail(200);
    let on_cpu = log.contains("inference runs on the CPU reference");
    assert!(
        on_cpu || log.contains("inference runs on the GPU"),
        "no inference backend in the log:\n{log}"
    );
    if on_cpu {
        assert!(log.contains("no usable GPU"), "{log}");
        // Asked for explicitly, a GPU that cannot be used is a startup error
        // that names the device and the reason, before the datadir is touched.
        let dir = tempfile::tempdir().unwrap();
        let datadir = dir.path().join("data");
        let out = infera(&[
            "node",
            "--dev",
            "--datadir",
            datadir.to_str().unwrap(),
            "--http.port",
            "0",
            "--inference.device",
            "cuda:0",
        ])
        .output()
        .expect("spawn infera");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started without a GPU:\n{stderr}");
        assert!(
            stderr.contains("--inference.device cuda:0")
                && stderr.contains("--inference.device auto or cpu"),
            "{stderr}"
        );
        assert!(!datadir.exists(), "the datadir was written");
    }
    let out = infera(&["node", "--dev", "--inference.device", "tpu"])
        .output()
        .expect("spawn infera");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("use auto, cpu, cuda or cuda:N"), "{stderr}");
}
