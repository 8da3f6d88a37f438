//! Integration tests of the inference engine: golden vectors, the optimised
//! kernels against naive loops, thread independence, the fast (AVX2) kernels
//! against the portable ones (`simd.rs`), and parser robustness.

mod cases;
mod naive;
mod parser;
mod simd;
mod vectors;

use cases::Rng;
use infera_kernels::cpu;
use infera_kernels::model::{Model, Node, RunOptions};
use infera_kernels::ops::AvgPoolParams;
use infera_kernels::{DType, Op, Tensor, TensorInfo, TensorSpec};
use proptest::prelude::*;

#[test]
fn golden_vectors_match_the_reference() {
    let all = vectors::load_all();
    assert!(
        !all.is_empty(),
        "no vectors; run `cargo run -p infera-kernels --example gen-vectors`"
    );
    for (path, v) in &all {
        let ins: Vec<&Tensor> = v.inputs.iter().collect();
        let got = cpu::execute_op(&v.op, &ins, v.out_zero_point)
            .unwrap_or_else(|e| panic!("{} (seed {:#x}): {e}", v.name, v.seed));
        assert_eq!(
            got,
            v.expected,
            "vector {} (seed {:#x}) at {}",
            v.name,
            v.seed,
            path.display()
        );
    }
}

#[test]
fn golden_vectors_are_current_and_cover_every_op() {
    // The committed files are exactly what the generator writes today.
    let on_disk: Vec<String> = vectors::load_all()
        .into_iter()
        .map(|(_, v)| v.name)
        .collect();
    let mut cases: Vec<String> = cases::all().into_iter().map(|c| c.name).collect();
    cases.sort();
    assert_eq!(
        on_disk, cases,
        "regenerate with `cargo run -p infera-kernels --example gen-vectors`"
    );
    let ops: std::collections::BTreeSet<&str> = cases::all()
        .iter()
        .map(|c| c.op.name())
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    // Every operator of the list in `with_operators!`, so a new one cannot
    // land without its golden vectors.
    for &(_, op) in Op::tags() {
        assert!(ops.contains(op), "no golden vector for {op}");
    }
}

/// A one-node model around `op` fed by the model input.
fn single_op_model(op: Op, input: &Tensor, out_zp: i8) -> Model {
    let node = Node {
        op,
        inputs: vec![0],
        zero_point: out_zp,
        scale_bits: 0,
    };
    Model::new(input.info(), 0, vec![node], 1).expect("valid model")
}

fn conv_strategy() -> impl Strategy<Value = (u64, [usize; 13])> {
    // n, groups, h, w, kh, kw, stride_h, dilation, stride_w, pad_a, pad_b, out/group, in/group
    const RANGES: [(usize, usize); 13] = [
        (1, 2),
        (1, 3),
        (1, 9),
        (1, 9),
        (1, 3),
        (1, 3),
        (1, 3),
        (1, 2),
        (1, 2),
        (0, 2),
        (0, 2),
        (1, 8),
        (1, 3),
    ];
    (any::<u64>(), prop::array::uniform13(any::<u8>())).prop_map(|(s, raw)| {
        (
            s,
            std::array::from_fn(|i| {
                RANGES[i].0 + raw[i] as usize % (RANGES[i].1 - RANGES[i].0 + 1)
            }),
        )
    })
}

/// Build a valid random conv case (or None when the window does not fit).
fn random_conv(seed: u64, d: [usize; 13]) -> Option<(Op, Tensor, i8)> {
    let [
        n,
        groups,
        h,
        w,
        kh,
        kw,
        stride,
        dil,
        _,
        pad_a,
        pad_b,
        ocg,
        cg,
    ] = d;
    let c = groups * cg;
    let oc = groups * ocg;
    if h + pad_a + pad_b < dil * (kh - 1) + 1 || w + pad_a + pad_b < dil * (kw - 1) + 1 {
        return None;
    }
    let mut rng = Rng(seed);
    let out = if seed.is_multiple_of(5) {
        DType::I32
    } else {
        DType::I8
    };
    let (op, ins, zp) = cases::conv(
        &mut rng,
        n,
        c,
        [h, w],
        oc,
        [kh, kw],
        [stride, d[8]],
        [dil, dil],
        [pad_a, pad_b, pad_b, pad_a],
        groups,
        out,
    );
    Some((op, ins.into_iter().next().expect("one input"), zp))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn conv_matches_naive_loops((seed, d) in conv_strategy()) {
        if let Some((op, x, zp)) = random_conv(seed, d) {
            let got = cpu::execute_op(&op, &[&x], zp).expect("valid");
            let Op::Conv2d(p) = &op else { unreachable!() };
            prop_assert_eq!(got, naive::conv2d(p, &x, zp));
        }
    }

    #[test]
    fn dense_matches_naive_loops(seed in any::<u64>(), rows in 1usize..5, k in 1usize..80, n in 1usize..20) {
        let mut rng = Rng(seed);
        let out = if seed.is_multiple_of(4) { DType::I32 } else { DType::I8 };
        let (op, ins, zp) = cases::dense(&mut rng, rows, k, n, out);
        let got = cpu::execute_op(&op, &[&ins[0]], zp).expect("valid");
        let Op::Dense(p) = &op else { unreachable!() };
        prop_assert_eq!(got, naive::dense(p, &ins[0], zp));
    }

    #[test]
    fn results_do_not_depend_on_thread_count((seed, d) in conv_strategy(), threads in 2usize..6) {
        if let Some((op, x, zp)) = random_conv(seed, d) {
            let model = single_op_model(op, &x, zp);
            let bytes = x.to_bytes();
            let one = model.run(&bytes).expect("run");
            prop_assert_eq!(&one, &model.run_with(&bytes, RunOptions { threads, ..RunOptions::default() }).expect("run"));
        }
        let mut rng = Rng(seed);
        let (op, ins, zp) = cases::dense(&mut rng, 1 + (seed % 3) as usize, 33, 1 + (seed % 29) as usize, DType::I8);
        let model = single_op_model(op, &ins[0], zp);
        let bytes = ins[0].to_bytes();
        prop_assert_eq!(model.run(&bytes).expect("run"), model.run_with(&bytes, RunOptions { threads, ..RunOptions::default() }).expect("run"));
    }

    #[test]
    fn pools_match_naive_loops(seed in any::<u64>(), h in 1usize..9, w in 1usize..9, k in 1usize..4, s in 1usize..3, pad in 0usize..3, include in any::<bool>()) {
        let pad = pad.min(k - 1);
        prop_assume!(h + 2 * pad >= k && w + 2 * pad >= k);
        let mut rng = Rng(seed);
        let zp = rng.zp();
        let x = Tensor::i8(vec![1, 2, h, w], zp, rng.i8s(2 * h * w));
        let pool = infera_kernels::ops::PoolParams { kernel: [k, k], stride: [s, s], pads: [pad; 4] };
        let max = cpu::execute_op(&Op::MaxPool(pool.clone()), &[&x], zp).expect("valid");
        prop_assert_eq!(max, naive::pool(&pool, &x, None));
        let avg = cpu::execute_op(&Op::AvgPool(AvgPoolParams { pool: pool.clone(), count_include_pad: include }), &[&x], zp).expect("valid");
        prop_assert_eq!(avg, naive::pool(&pool, &x, Some(include)));
    }
}

#[test]
fn model_round_trips_and_runs_a_small_cnn() {
    let model = parser::small_cnn();
    let bytes = model.encode();
    let back = Model::decode(&bytes).expect("decode");
    assert_eq!(back, model);
    assert_eq!(back.encode(), bytes);
    assert_eq!(
        model.input_spec(),
        &TensorSpec {
            dtype: DType::I8,
            shape: vec![1, 1, 8, 8]
        }
    );
    assert_eq!(
        model.output_spec(),
        &TensorSpec {
            dtype: DType::I32,
            shape: vec![1, 1]
        }
    );
    let out = model.run(&[3u8; 64]).expect("run");
    assert_eq!(out.len(), 4);
    let cost = model.cost();
    // conv 8x8x4x(1*3*3) + dense 4*4*4 -> 10
    assert_eq!(cost.macs, 64 * 4 * 9 + 64 * 10);
    assert_eq!(
        model.run(&[0u8; 3]),
        Err(infera_kernels::ModelError::InputLength {
            expected: 64,
            actual: 3
        })
    );
}

#[test]
fn validation_rejects_possible_accumulator_overflow() {
    let k = 1 << 16;
    let op = Op::Dense(infera_kernels::ops::DenseParams {
        in_features: k,
        out_features: 1,
        out_dtype: DType::I32,
        weights: vec![-128; k],
        bias: vec![10_000_000],
        requant: vec![],
        act_min: -128,
        act_max: 127,
    });
    let x = TensorInfo {
        spec: TensorSpec {
            dtype: DType::I8,
            shape: vec![1, k],
        },
        zero_point: 0,
    };
    let err = Model::new(
        x,
        0,
        vec![Node {
            op,
            inputs: vec![0],
            zero_point: 0,
            scale_bits: 0,
        }],
        1,
    )
    .unwrap_err();
    assert_eq!(
        err,
        infera_kernels::ModelError::AccumulatorOverflow {
            node: 0,
            channel: 0
        }
    );
}
