//! Import of single ONNX operators (Transpose, Pad, Mul, Concat) and the fusion
//! rules, on graphs built in code and calibrated on random inputs in [-1, 1].

use crate::onnx::{
    calibration, f32_tensor, file, float, i64_tensor, int, ints, model, model_at_opset, node,
    string,
};
use infera_kernels::Op;
use infera_kernels::ops::{ClipParams, PadParams};
use infera_model_import::{ImportReport, ToolError, import_onnx};
use tract_onnx::pb::{NodeProto, TensorProto};

const SAMPLES: usize = 40;

fn import(
    bytes: &[u8],
    in_shape: &[usize],
) -> Result<(infera_kernels::Model, ImportReport), ToolError> {
    let f = file(bytes);
    import_onnx(f.path(), &calibration(SAMPLES, in_shape))
}

fn ops(m: &infera_kernels::Model) -> Vec<&'static str> {
    m.nodes().iter().map(|n| n.op.name()).collect()
}

/// The integer model's dequantised output is within `tol` of the float model's
/// on every calibration sample. (Top-1 agreement means little here: random
/// inputs have near-ties that one rounding step flips.)
fn assert_close(r: &ImportReport, tol: f32) {
    assert_eq!(r.samples, SAMPLES);
    assert!(
        r.max_abs_error <= tol,
        "max error {} > {tol}: {r:?}",
        r.max_abs_error
    );
}

#[test]
fn transpose_imports_with_its_permutation() {
    let onnx = model(
        vec![node(
            "Transpose",
            &["x"],
            "y",
            vec![ints("perm", &[0, 2, 3, 1])],
        )],
        vec![],
        &[1, 2, 3, 4],
        &[1, 3, 4, 2],
    );
    let (m, r) = import(&onnx, &[1, 2, 3, 4]).expect("import");
    assert_eq!(ops(&m), ["transpose"]);
    assert_eq!(m.output_spec().shape, [1, 3, 4, 2]);
    // Only the input's rounding: half a step of 2/255.
    assert_close(&r, 0.0040);
}

#[test]
fn pad_imports_as_zero_point_padding() {
    // Opset 13: pads are an int64 input, [begin per axis..., end per axis...].
    let onnx = model(
        vec![node("Pad", &["x", "pads"], "y", vec![])],
        vec![i64_tensor("pads", vec![0, 0, 1, 2, 0, 0, 2, 1])],
        &[1, 2, 3, 3],
        &[1, 2, 6, 6],
    );
    let (m, r) = import(&onnx, &[1, 2, 3, 3]).expect("import");
    assert_eq!(ops(&m), ["pad"]);
    assert_eq!(m.output_spec().shape, [1, 2, 6, 6]);
    let Op::Pad(PadParams { before, after }) = &m.nodes()[0].op else {
        unreachable!()
    };
    assert_eq!(
        (before.as_slice(), after.as_slice()),
        (&[0, 0, 1, 2][..], &[0, 0, 2, 1][..])
    );
    // Padded cells are the zero point, i.e. exactly 0.0 like the float model's.
    assert_close(&r, 0.0040);
}

#[test]
fn pad_that_the_engine_cannot_express_is_refused() {
    let reflect = model(
        vec![node(
            "Pad",
            &["x", "pads"],
            "y",
            vec![string("mode", "reflect")],
        )],
        vec![i64_tensor("pads", vec![0, 0, 1, 1, 0, 0, 1, 1])],
        &[1, 1, 3, 3],
        &[1, 1, 5, 5],
    );
    let e = import(&reflect, &[1, 1, 3, 3]).unwrap_err();
    assert!(e.to_string().contains("Pad mode reflect"), "{e}");
    let filled = model(
        vec![node("Pad", &["x", "pads", "v"], "y", vec![])],
        vec![
            i64_tensor("pads", vec![0, 0, 1, 1, 0, 0, 1, 1]),
            f32_tensor("v", &[], vec![0.5]),
        ],
        &[1, 1, 3, 3],
        &[1, 1, 5, 5],
    );
    let e = import(&filled, &[1, 1, 3, 3]).unwrap_err();
    assert!(e.to_string().contains("Pad with value 0.5"), "{e}");
}

#[test]
fn mul_of_two_activations_imports_with_a_product_rescale() {
    let onnx = model(
        vec![
            node("Relu", &["x"], "r", vec![]),
            node("Mul", &["x", "r"], "y", vec![]),
        ],
        vec![],
        &[1, 2, 3, 3],
        &[1, 2, 3, 3],
    );
    let (m, r) = import(&onnx, &[1, 2, 3, 3]).expect("import");
    assert_eq!(ops(&m), ["clip", "mul"]);
    // x * relu(x) in [0, 1]: input rounding (2 * 1/255) plus output rounding.
    assert_close(&r, 0.012);
    let scaled = model(
        vec![node("Mul", &["x", "c"], "y", vec![])],
        vec![f32_tensor("c", &[], vec![2.0])],
        &[1, 2, 3, 3],
        &[1, 2, 3, 3],
    );
    let e = import(&scaled, &[1, 2, 3, 3]).unwrap_err();
    assert!(e.to_string().contains("Mul by a constant"), "{e}");
}

/// `Conv 1x1` with weight 3: a value with three times the range of `x`.
fn triple() -> (Vec<NodeProto>, Vec<TensorProto>) {
    let w = vec![3.0, 0.0, 0.0, 3.0];
    (
        vec![node(
            "Conv",
            &["x", "w"],
            "c",
            vec![ints("kernel_shape", &[1, 1])],
        )],
        vec![f32_tensor("w", &[2, 2, 1, 1], w)],
    )
}

#[test]
fn concat_rescales_inputs_to_one_scale() {
    let (mut nodes, inits) = triple();
    // Axis -3 of a rank-4 value is the channel axis.
    nodes.push(node("Concat", &["x", "c"], "y", vec![int("axis", -3)]));
    let onnx = model(nodes, inits, &[1, 2, 3, 3], &[1, 4, 3, 3]);
    let (m, r) = import(&onnx, &[1, 2, 3, 3]).expect("import");
    // `x` (range 1) is rescaled to the output's range (3); the conv already has it.
    assert_eq!(ops(&m), ["conv2d", "requantize", "concat"]);
    assert_eq!(m.nodes()[1].inputs, [0]);
    assert_eq!(m.nodes()[2].inputs, [2, 1]);
    assert_eq!(m.output_spec().shape, [1, 4, 3, 3]);
    // One output step is 6/255; the conv adds 3x the input's rounding.
    assert_close(&r, 0.03);
}

#[test]
fn an_activation_is_not_fused_into_a_value_that_others_read() {
    // c feeds both the Relu and the Concat: fusing the Relu into the conv
    // would clamp the Concat's copy of c too.
    let (mut nodes, inits) = triple();
    nodes.push(node("Relu", &["c"], "r", vec![]));
    nodes.push(node("Concat", &["c", "r"], "y", vec![int("axis", 1)]));
    let onnx = model(nodes, inits, &[1, 2, 3, 3], &[1, 4, 3, 3]);
    let (m, r) = import(&onnx, &[1, 2, 3, 3]).expect("import");
    assert_eq!(ops(&m), ["conv2d", "clip", "concat"]);
    let Op::Conv2d(p) = &m.nodes()[0].op else {
        unreachable!()
    };
    assert_eq!(
        (p.act_min, p.act_max),
        (-128, 127),
        "no clamp on the shared conv"
    );
    assert_close(&r, 0.03);
    // With a single reader the Relu is fused as before.
    let (mut nodes, inits) = triple();
    nodes.push(node("Relu", &["c"], "y", vec![]));
    let onnx = model(nodes, inits, &[1, 2, 3, 3], &[1, 2, 3, 3]);
    let (m, _) = import(&onnx, &[1, 2, 3, 3]).expect("import");
    assert_eq!(ops(&m), ["conv2d"]);
}

#[test]
fn standalone_clip_and_flatten_negative_axis() {
    // Clip (opset 13: bounds as inputs) after no fusable producer stays a
    // clip; Flatten axis -1 of a rank-4 value splits before the last axis.
    let onnx = model(
        vec![
            node("Clip", &["x", "lo", "hi"], "k", vec![]),
            node("Flatten", &["k"], "y", vec![int("axis", -1)]),
        ],
        vec![
            f32_tensor("lo", &[], vec![-0.5]),
            f32_tensor("hi", &[], vec![0.5]),
        ],
        &[1, 2, 3, 3],
        &[6, 3],
    );
    let (m, r) = import(&onnx, &[1, 2, 3, 3]).expect("import");
    assert_eq!(ops(&m), ["clip", "flatten"]);
    let Op::Clip(ClipParams { min, max }) = m.nodes()[0].op else {
        unreachable!()
    };
    assert!(min > -128 && max < 127, "clip bounds {min}..{max}");
    assert_eq!(m.output_spec().shape, [6, 3]);
    assert_close(&r, 0.0040);
}

/// `MatMul` by a constant `[in, out]` matrix then `Add` of a constant bias:
/// the PyTorch `Linear` export without Gemm, folded into one dense layer.
#[test]
fn matmul_then_add_imports_as_one_dense_layer() {
    let (k, n) = (8usize, 5usize);
    // Weights and bias of modest size so the output range is about [-3, 3].
    let w: Vec<f32> = (0..k * n)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let b: Vec<f32> = (0..n).map(|j| j as f32 / 10.0 - 0.2).collect();
    let onnx = model(
        vec![
            node("MatMul", &["x", "w"], "h", vec![]),
            node("Add", &["h", "b"], "y", vec![]),
        ],
        vec![
            f32_tensor("w", &[k as i64, n as i64], w.clone()),
            f32_tensor("b", &[n as i64], b.clone()),
        ],
        &[1, k],
        &[1, n],
    );
    let (m, r) = import(&onnx, &[1, k]).expect("import");
    assert_eq!(ops(&m), ["dense"], "the Add is folded into the bias");
    assert_eq!(m.output_spec().shape, [1, n]);
    let Op::Dense(d) = &m.nodes()[0].op else {
        unreachable!()
    };
    assert_eq!((d.in_features, d.out_features), (k, n));
    // Input and weight rounding over 8 products, plus the output step.
    assert_close(&r, 0.06);
    // The Add reads the MatMul's result in either order.
    let swapped = model(
        vec![
            node("MatMul", &["x", "w"], "h", vec![]),
            node("Add", &["b", "h"], "y", vec![]),
        ],
        vec![
            f32_tensor("w", &[k as i64, n as i64], w),
            f32_tensor("b", &[n as i64], b),
        ],
        &[1, k],
        &[1, n],
    );
    let (m, r) = import(&swapped, &[1, k]).expect("import with the bias first");
    assert_eq!(ops(&m), ["dense"]);
    assert_close(&r, 0.06);
}

/// Elementwise activations import as lookup tables, within an output step
/// and the input's rounding (times the function's slope, at most 1 here) of
/// the float model, on inputs in [-1, 1].
#[test]
fn activations_import_as_lookup_tables() {
    let cases: Vec<(&str, Vec<NodeProto>, i64, f32)> = vec![
        (
            "Sigmoid",
            vec![node("Sigmoid", &["x"], "y", vec![])],
            13,
            0.004,
        ),
        ("Tanh", vec![node("Tanh", &["x"], "y", vec![])], 13, 0.008),
        (
            "HardSigmoid",
            vec![node(
                "HardSigmoid",
                &["x"],
                "y",
                vec![float("alpha", 0.3), float("beta", 0.4)],
            )],
            13,
            0.004,
        ),
        (
            "HardSwish",
            vec![node("HardSwish", &["x"], "y", vec![])],
            14,
            0.008,
        ),
        ("Gelu", vec![node("Gelu", &["x"], "y", vec![])], 20, 0.008),
        (
            "Gelu tanh",
            vec![node(
                "Gelu",
                &["x"],
                "y",
                vec![string("approximate", "tanh")],
            )],
            20,
            0.008,
        ),
    ];
    for (name, nodes, opset, tol) in cases {
        let onnx = model_at_opset(opset, nodes, vec![], &[2, 16], &[2, 16]);
        let (m, r) = import(&onnx, &[2, 16]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ops(&m), ["lut"], "{name}");
        eprintln!("{name}: max |int - float| = {:.5}", r.max_abs_error);
        assert!(
            r.max_abs_error <= tol,
            "{name}: max error {} > {tol}",
            r.max_abs_error
        );
    }
}

/// An activation after a layer: Gemm then Sigmoid, the table built on the
/// Gemm's calibrated output range.
#[test]
fn an_activation_after_a_layer_uses_the_layers_range() {
    let w: Vec<f32> = (0..16 * 4)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0)
        .collect();
    let onnx = model(
        vec![
            node("Gemm", &["x", "w"], "h", vec![int("transB", 1)]),
            node("Sigmoid", &["h"], "y", vec![]),
        ],
        vec![f32_tensor("w", &[4, 16], w)],
        &[1, 16],
        &[1, 4],
    );
    let (m, r) = import(&onnx, &[1, 16]).expect("import");
    assert_eq!(ops(&m), ["dense", "lut"]);
    assert_close(&r, 0.01);
}

/// Softmax imports with the engine's fixed output quantisation (scale
/// 1/256, zero point -128), whatever the calibrated range, and the exp
/// table built on its input's scale.
#[test]
fn softmax_imports_with_its_fixed_output_scale() {
    let onnx = model(
        vec![node("Softmax", &["x"], "y", vec![])],
        vec![],
        &[1, 4, 16],
        &[1, 4, 16],
    );
    let (m, r) = import(&onnx, &[1, 4, 16]).expect("import");
    assert_eq!(ops(&m), ["softmax"]);
    let n = &m.nodes()[0];
    assert_eq!(n.zero_point, -128);
    assert_eq!(n.scale_bits, (1.0f32 / 256.0).to_bits());
    let Op::Softmax(p) = &n.op else {
        unreachable!()
    };
    assert_eq!(p.table[0], 1 << 30);
    eprintln!(
        "Softmax [1, 4, 16]: max |int - float| = {:.5}",
        r.max_abs_error
    );
    // Half an output step (1/512) and the input's half step of 1/255
    // times the slope p(1 - p) <= 1/4 (measured 0.0023).
    assert_close(&r, 0.0035);
}

/// Gemm then Softmax (a classifier's head): the table is built on the
/// Gemm's calibrated output scale, whose wider range also reaches the
/// table's far entries.
#[test]
fn softmax_after_a_layer_uses_the_layers_scale() {
    // Measured 0.0054 and 0.0194: mostly the Gemm's own output step
    // (about 1/255 of its range, 4 times wider at gain 4) times the
    // softmax's slope, on top of the softmax's half step of 1/512.
    for (gain, tol) in [(1.0f32, 0.008), (4.0, 0.025)] {
        let w: Vec<f32> = (0..16 * 10)
            .map(|i| gain * ((i * 7 % 13) as f32 - 6.0) / 10.0)
            .collect();
        let onnx = model(
            vec![
                node("Gemm", &["x", "w"], "h", vec![int("transB", 1)]),
                node("Softmax", &["h"], "y", vec![int("axis", 1)]),
            ],
            vec![f32_tensor("w", &[10, 16], w)],
            &[1, 16],
            &[1, 10],
        );
        let (m, r) = import(&onnx, &[1, 16]).expect("import");
        assert_eq!(ops(&m), ["dense", "softmax"]);
        eprintln!(
            "Gemm (gain {gain}) -> Softmax: max |int - float| = {:.5}, max output {:.3}",
            r.max_abs_error, r.max_abs_output
        );
        assert!(
            r.max_abs_error <= tol,
            "gain {gain}: max error {} > {tol}",
            r.max_abs_error
        );
    }
}

/// LayerNormalization (opset 17) over the last axis imports as one integer
/// `layer_norm`, within two output steps of the float model on inputs in
/// [-1, 1]; the error is printed.
#[test]
fn layer_normalization_imports_as_an_integer_layer_norm() {
    for (shape, axis) in [(vec![2usize, 16], None), (vec![1, 4, 32], Some(2))] {
        let n = *shape.last().expect("rank");
        let scale: Vec<f32> = (0..n).map(|i| 0.5 + (i * 7 % 11) as f32 / 10.0).collect();
        let bias: Vec<f32> = (0..n).map(|i| ((i * 5 % 9) as f32 - 4.0) / 8.0).collect();
        let onnx_consts = (scale.clone(), bias.clone());
        let mut attrs = vec![float("epsilon", 1e-5)];
        attrs.extend(axis.map(|a| int("axis", a)));
        let onnx = model_at_opset(
            17,
            vec![node(
                "LayerNormalization",
                &["x", "scale", "bias"],
                "y",
                attrs,
            )],
            vec![
                f32_tensor("scale", &[n as i64], onnx_consts.0),
                f32_tensor("bias", &[n as i64], onnx_consts.1),
            ],
            &shape,
            &shape,
        );
        let (m, r) = import(&onnx, &shape).unwrap_or_else(|e| panic!("{shape:?}: {e}"));
        assert_eq!(ops(&m), ["layer_norm"]);
        let (off, rate) = integer_against_exact(&m, &scale, &bias, 1e-5);
        eprintln!(
            "LayerNormalization {shape:?}: integer vs exact on the same int8 input: at most {off} step(s) apart, {:.2}% of outputs differ",
            100.0 * rate
        );
        assert!(
            off <= 1,
            "{shape:?}: the integer arithmetic is {off} steps off"
        );
        let step = f32::from_bits(m.output_info().1);
        eprintln!(
            "LayerNormalization {shape:?}: max |int - float| = {:.5} (max |float| {:.3}, output step {:.5})",
            r.max_abs_error, r.max_abs_output, step
        );
        // (`assert_close` would also check the sample count, which a batch
        // of 2 rows changes.)
        assert!(
            r.max_abs_error <= 2.0 * step,
            "{shape:?}: max error {} > two output steps {step}",
            r.max_abs_error
        );
    }
}

#[test]
fn softmax_over_another_axis_is_refused() {
    let first = model(
        vec![node("Softmax", &["x"], "y", vec![int("axis", 0)])],
        vec![],
        &[2, 16],
        &[2, 16],
    );
    let e = import(&first, &[2, 16]).unwrap_err();
    assert!(e.to_string().contains("Softmax over axis 0"), "{e}");
    // Before opset 13 the axis defaults to 1 (flattening from it): the last
    // axis of a rank-2 input, not of a rank-3 one.
    let old = |shape: &[usize]| {
        model_at_opset(
            11,
            vec![node("Softmax", &["x"], "y", vec![])],
            vec![],
            shape,
            shape,
        )
    };
    let (m, _) = import(&old(&[2, 16]), &[2, 16]).expect("opset 11, rank 2");
    assert_eq!(ops(&m), ["softmax"]);
    let e = import(&old(&[1, 2, 8]), &[1, 2, 8]).unwrap_err();
    assert!(
        e.to_string().contains("Softmax over axis 1 of a rank-3"),
        "{e}"
    );
}

/// What the integer arithmetic alone costs: the imported model against the
/// exact float LayerNormalization of the same dequantised int8 input,
/// rounded to the same output grid, on 200 random inputs (uniform, and
/// narrow rows whose variance is small). The largest difference in output
/// steps and the fraction of outputs that differ.
fn integer_against_exact(m: &infera_kernels::Model, g: &[f32], b: &[f32], eps: f64) -> (i64, f64) {
    let (xi, xbits) = m.input_info();
    let (yi, ybits) = m.output_info();
    let (sx, zx) = (f64::from(f32::from_bits(xbits)), i64::from(xi.zero_point));
    let (sy, zy) = (f64::from(f32::from_bits(ybits)), f64::from(yi.zero_point));
    let len = xi.spec.elements();
    let n = g.len();
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let (mut worst, mut differ) = (0i64, 0usize);
    for sample in 0..200 {
        let spread = if sample % 2 == 0 { 256 } else { 5 };
        let x: Vec<i8> = (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 33) % spread) as i64 - (spread / 2) as i64
            })
            .map(|v| v.clamp(-128, 127) as i8)
            .collect();
        let bytes: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        let got = m.run(&bytes).expect("runs");
        for (row, out) in x.chunks(n).zip(got.chunks(n)) {
            let a: Vec<f64> = row
                .iter()
                .map(|&v| sx * (i64::from(v) - zx) as f64)
                .collect();
            let mean = a.iter().sum::<f64>() / n as f64;
            let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
            for j in 0..n {
                let y = f64::from(g[j]) * (a[j] - mean) / (var + eps).sqrt() + f64::from(b[j]);
                let want = (y / sy + zy).round().clamp(-128.0, 127.0) as i64;
                let d = (i64::from(out[j] as i8) - want).abs();
                worst = worst.max(d);
                differ += usize::from(d != 0);
            }
        }
    }
    (worst, differ as f64 / (200 * len) as f64)
}

/// Only the last axis is supported.
#[test]
fn layer_normalization_over_another_axis_is_refused() {
    let onnx = model_at_opset(
        17,
        vec![node(
            "LayerNormalization",
            &["x", "scale"],
            "y",
            vec![int("axis", 1)],
        )],
        vec![f32_tensor("scale", &[4, 32], vec![1.0; 128])],
        &[1, 4, 32],
        &[1, 4, 32],
    );
    match import(&onnx, &[1, 4, 32]) {
        Err(ToolError::Unsupported(m)) => assert!(m.contains("last axis"), "{m}"),
        other => panic!("expected Unsupported, got {:?}", other.map(|(_, r)| r)),
    }
}

/// Attention's score product: `x` times its own transpose, both activations,
/// imports as one MatMul of two activations (a constant second factor stays
/// a dense layer: `matmul_then_add_imports_as_one_dense_layer`).
#[test]
fn matmul_of_two_activations_imports_as_mat_mul() {
    let onnx = model(
        vec![
            node("Transpose", &["x"], "xt", vec![ints("perm", &[0, 2, 1])]),
            node("MatMul", &["x", "xt"], "y", vec![]),
        ],
        vec![],
        &[1, 4, 8],
        &[1, 4, 4],
    );
    let (m, r) = import(&onnx, &[1, 4, 8]).expect("import");
    assert_eq!(ops(&m), ["transpose", "mat_mul"]);
    assert_eq!(m.nodes()[1].inputs, [0, 1]);
    assert_eq!(m.output_spec().shape, [1, 4, 4]);
    eprintln!(
        "x @ x^T: max |int - float| = {:.5} (max |float| {:.3})",
        r.max_abs_error, r.max_abs_output
    );
    // Each of the 8 products carries both factors' input rounding (1/255
    // each on values in [-1, 1]): up to 8 * 2/255 = 0.063 if every error
    // had one sign, plus half an output step (the range is about 8, so
    // 0.016); measured 0.036 over the 40 samples.
    assert_close(&r, 0.05);
    // Leading dimensions must agree: no broadcasting.
    let onnx = model(
        vec![
            node("Transpose", &["x"], "xt", vec![ints("perm", &[1, 2, 0])]),
            node("MatMul", &["x", "xt"], "y", vec![]),
        ],
        vec![],
        &[2, 4, 2],
        &[2, 4, 2],
    );
    let e = import(&onnx, &[2, 4, 2]).unwrap_err();
    assert!(e.to_string().contains("MatMul of activations"), "{e}");
}

/// A reduce import case: name, opset, nodes, constants, output shape, the
/// tolerance.
type ReduceCase = (
    &'static str,
    i64,
    Vec<NodeProto>,
    Vec<TensorProto>,
    Vec<usize>,
    f32,
);

/// ReduceMean (axes attribute at opset 13, axes input at opset 18) and
/// ReduceSum (axes input from opset 13), with and without keepdims.
#[test]
fn reduce_mean_and_sum_import_over_their_axes() {
    let cases: Vec<ReduceCase> = vec![
        (
            "ReduceMean opset 13, last axis, keepdims",
            13,
            vec![node("ReduceMean", &["x"], "y", vec![ints("axes", &[-1])])],
            vec![],
            vec![1, 4, 1],
            // Half an output step (range about 1.4) plus the inputs' mean
            // rounding: measured 0.0039.
            0.006,
        ),
        (
            "ReduceMean opset 18, axes [1, 2] as an input, no keepdims",
            18,
            vec![node(
                "ReduceMean",
                &["x", "axes"],
                "y",
                vec![int("keepdims", 0)],
            )],
            vec![i64_tensor("axes", vec![1, 2])],
            vec![1],
            // Measured 0.0014: 32 roundings average out.
            0.004,
        ),
        (
            "ReduceSum opset 13, axis 1 as an input, no keepdims",
            13,
            vec![node(
                "ReduceSum",
                &["x", "axes"],
                "y",
                vec![int("keepdims", 0)],
            )],
            vec![i64_tensor("axes", vec![1])],
            vec![1, 8],
            // Half an output step (range about 5.5: 0.011) plus four inputs'
            // rounding (4/255): measured 0.020.
            0.03,
        ),
    ];
    for (name, opset, nodes, inits, out, tol) in cases {
        let onnx = model_at_opset(opset, nodes, inits, &[1, 4, 8], &out);
        let (m, r) = import(&onnx, &[1, 4, 8]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ops(&m), ["reduce"], "{name}");
        assert_eq!(m.output_spec().shape, out, "{name}");
        eprintln!(
            "{name}: max |int - float| = {:.5} (max |float| {:.3})",
            r.max_abs_error, r.max_abs_output
        );
        assert!(
            r.max_abs_error <= tol,
            "{name}: max error {} > {tol}",
            r.max_abs_error
        );
    }
}
