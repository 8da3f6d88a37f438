//! Parser robustness: every truncation and random corruption of valid model
//! bytes gives an error or a valid model, never a panic. The long-running
//! fuzzer is `examples/fuzz_decode.rs`; a bounded run of it is a test here.

#[path = "fuzz.rs"]
pub mod fuzz;

pub use fuzz::small_cnn;
use infera_kernels::ModelError;
use infera_kernels::model::{Model, Node};
use infera_kernels::ops::FlattenParams;
use infera_kernels::ops::Op;
use proptest::prelude::*;

/// Decode must not panic; a model it accepts must run without panicking.
fn decode_and_run(bytes: &[u8]) -> Result<(), ModelError> {
    let m = Model::decode(bytes)?;
    let input = vec![0u8; m.input_spec().byte_len()];
    m.run(&input)
        .map(|out| assert_eq!(out.len(), m.output_spec().byte_len()))
}

#[test]
fn every_truncation_is_a_precise_error() {
    let bytes = small_cnn().encode();
    for len in 0..bytes.len() {
        let err = Model::decode(&bytes[..len]).expect_err("truncated model must not decode");
        assert!(
            matches!(err, ModelError::Truncated { .. } | ModelError::BadMagic),
            "prefix {len}: unexpected {err:?}"
        );
    }
    decode_and_run(&bytes).expect("full model decodes");
}

#[test]
fn header_errors_are_precise() {
    let bytes = small_cnn().encode();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert_eq!(Model::decode(&b).unwrap_err(), ModelError::BadMagic);
    let mut b = bytes.clone();
    b[8] = 9;
    assert_eq!(
        Model::decode(&b).unwrap_err(),
        ModelError::UnsupportedVersion(9)
    );
    let mut b = bytes.clone();
    b.push(0);
    assert_eq!(
        Model::decode(&b).unwrap_err(),
        ModelError::TrailingBytes {
            offset: bytes.len(),
            extra: 1
        }
    );
    let huge = vec![0u8; infera_kernels::limits::MAX_MODEL_BYTES + 1];
    assert!(matches!(
        Model::decode(&huge).unwrap_err(),
        ModelError::LimitExceeded {
            limit: "MAX_MODEL_BYTES",
            ..
        }
    ));
}

#[test]
fn huge_declared_sizes_fail_without_allocating() {
    // A dense layer claiming 2^32 - 1 by 2^32 - 1 weights in a tiny file.
    let mut b = small_cnn().encode();
    let dense_at = find_dense(&b);
    b[dense_at..dense_at + 8].copy_from_slice(&[0xff; 8]);
    assert!(matches!(
        Model::decode(&b).unwrap_err(),
        ModelError::Truncated { .. }
    ));
}

/// Offset of the dense node's `in_features` field (tag 1 after a flatten node).
fn find_dense(b: &[u8]) -> usize {
    // node header: tag u8, n_inputs u8, input u32, zp i8, scale u32 => params at +11
    let m = small_cnn();
    let mut probe = m.encode();
    let len = probe.len();
    // The dense node is the 4th node; locate it by re-encoding a model without it.
    let nodes = m.nodes();
    let mut offset = 8 + 2 + 2 + (1 + 1 + 4 * 4 + 1 + 4) + 4;
    for n in &nodes[..3] {
        let single = encoded_node_len(n);
        offset += single;
    }
    probe.truncate(len);
    assert_eq!(b[offset], 1, "dense tag");
    offset + 11
}

fn encoded_node_len(n: &Node) -> usize {
    // Encode a one-node model with the same op is awkward for multi-input ops; the
    // first three nodes are conv, max pool and flatten, whose sizes are fixed here.
    let params = match &n.op {
        Op::Conv2d(p) => 13 * 4 + 3 + p.weights.len() + 4 * p.bias.len() + 5 * p.requant.len(),
        Op::MaxPool(_) => 8 * 4,
        Op::Flatten(FlattenParams { .. }) => 1,
        other => panic!("unexpected {}", other.name()),
    };
    1 + 1 + 4 * n.inputs.len() + 1 + 4 + params
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn corrupted_models_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let mut bytes = small_cnn().encode();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            let len = cut.index(bytes.len());
            bytes.truncate(len);
        }
        let _ = decode_and_run(&bytes);
    }

    #[test]
    fn random_bytes_after_the_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut bytes = small_cnn().encode()[..12].to_vec();
        bytes.extend(tail);
        let _ = decode_and_run(&bytes);
    }
}

/// A bounded, seeded run of the mutation fuzzer (`examples/fuzz_decode.rs`):
/// every truncation of every seed model, then mutations. Deterministic.
#[test]
fn mutation_fuzzer_bounded_run() {
    let stats = fuzz::fuzz(&fuzz::Options {
        seed: 1,
        max_iterations: 40_000,
        max_time: None,
        crash_dir: None,
        run_budget: 1 << 16,
        report_every: None,
    })
    .unwrap_or_else(|f| {
        panic!(
            "iteration {} (seed {}): {}\ninput: {}",
            f.iteration,
            f.seed,
            f.message,
            hex::encode(&f.input)
        )
    });
    // The run must reach past the truncations and accept some mutants, or it
    // tests nothing.
    assert!(stats.accepted > 100, "{stats:?}");
    assert!(stats.runs > 100, "{stats:?}");
    assert!(stats.features > 50, "{stats:?}");
}
