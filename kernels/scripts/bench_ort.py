"""onnxruntime (single thread) on the same shapes as `examples/bench.rs`, int8
(QLinearMatMul / QLinearConv: uint8 activations x int8 weights, MLAS kernels)
and float32; prints a table with the ratios to the infera CPU reference, both
with the kernels it runs by default (the CPU's fast path, e.g. AVX2) and with
the portable kernels forced (the same bytes, checked by the Rust side).

Usage: python bench_ort.py rust_results.jsonl   (run by kernels/bench.sh)
"""

import json
import logging
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def session(graph):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def timeit(sess, feeds):
    sess.run(None, feeds)
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < 0.2 or n < 3:
            sess.run(None, feeds)
            n += 1
        best = min(best, (time.perf_counter() - start) / n)
    return best


def scalars(prefix, scale, zp, dtype):
    return [numpy_helper.from_array(np.array(scale, np.float32), prefix + "_s"),
            numpy_helper.from_array(np.array(zp, dtype), prefix + "_z")]


def dense(m, k, n, quant):
    if quant:
        w = rng.integers(-127, 128, (k, n), dtype=np.int8)
        inits = [numpy_helper.from_array(w, "w")] + scalars("x", 0.02, 128, np.uint8) + scalars("w", 0.01, 0, np.int8) + scalars("y", 0.5, 128, np.uint8)
        node = helper.make_node("QLinearMatMul", ["x", "x_s", "x_z", "w", "w_s", "w_z", "y_s", "y_z"], ["y"])
        g = helper.make_graph([node], "d", [helper.make_tensor_value_info("x", TensorProto.UINT8, [m, k])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [m, n])], inits)
        return session(g), {"x": rng.integers(0, 256, (m, k), dtype=np.uint8)}
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"])
    g = helper.make_graph([node], "d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return session(g), {"x": rng.standard_normal((m, k)).astype(np.float32)}


def conv(c, hw, oc, k, pad, groups, quant):
    shape = [1, c, hw, hw]
    attrs = dict(kernel_shape=[k, k], pads=[pad] * 4, group=groups)
    if quant:
        w = rng.integers(-127, 128, (oc, c // groups, k, k), dtype=np.int8)
        b = rng.integers(-1000, 1000, oc, dtype=np.int32)
        inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")] + scalars("x", 0.02, 128, np.uint8) + scalars("w", 0.01, 0, np.int8) + scalars("y", 0.5, 128, np.uint8)
        node = helper.make_node("QLinearConv", ["x", "x_s", "x_z", "w", "w_s", "w_z", "y_s", "y_z", "b"], ["y"], **attrs)
        g = helper.make_graph([node], "c", [helper.make_tensor_value_info("x", TensorProto.UINT8, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
        return session(g), {"x": rng.integers(0, 256, shape, dtype=np.uint8)}
    w = rng.standard_normal((oc, c // groups, k, k)).astype(np.float32)
    b = rng.standard_normal(oc).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    g = helper.make_graph([node], "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return session(g), {"x": rng.standard_normal(shape).astype(np.float32)}


def demo(path, calib):
    """A demo model's float ONNX on one sample, and its int8 form made by
    onnxruntime's own static quantisation (QOperator: QLinearConv /
    QLinearMatMul, u8 activations x s8 weights) calibrated on the same
    samples as infera's import."""
    def make(quant):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        name = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()[0].name
        model = path
        if quant:
            import os
            import tempfile

            from onnxruntime.quantization import (CalibrationDataReader, QuantFormat,
                                                  QuantType, quantize_static)

            samples = np.load(calib).astype(np.float32)

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.it = iter(samples)

                def get_next(self):
                    x = next(self.it, None)
                    return None if x is None else {name: x.reshape(1, 1, 8, 8)}

            fd, model = tempfile.mkstemp(suffix=".onnx")
            os.close(fd)
            logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice
            quantize_static(path, model, Reader(), quant_format=QuantFormat.QOperator,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        if quant:
            os.remove(model)
        return sess, {name: np.zeros((1, 1, 8, 8), np.float32)}
    return make


CASES = {
    "dense_1x1024x1024": lambda q: dense(1, 1024, 1024, q),
    "dense_64x1024x1024": lambda q: dense(64, 1024, 1024, q),
    "conv3x3_64x56x56": lambda q: conv(64, 56, 64, 3, 1, 1, q),
    "depthwise3x3_128x28x28": lambda q: conv(128, 28, 128, 3, 1, 128, q),
    "conv1x1_128x28x28": lambda q: conv(128, 28, 128, 1, 0, 1, q),
    "digits_model": demo("models/digits/digits.onnx", "models/digits/calib.npy"),
    "digits_cnn": demo("models/digits_cnn/digits_cnn.onnx", "models/digits_cnn/calib.npy"),
}

rust = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
kernels = rust[0].get("kernels", "?") if rust else "?"
print(f"onnxruntime {ort.__version__}, single thread; infera = CPU reference, bit-exact int8, "
      f"'{kernels}' kernels (portable column: the portable kernels forced, same bytes)")
print(f"{'case':<24} {'MACs':>10} {'infera':>17} {'infera portable':>17} {'ort int8':>11} {'ort f32':>11}"
      f" {'int8 ratio':>10} {'f32 ratio':>9} {'portable int8 ratio':>19} {'speed-up':>8}")
for r in rust:
    row = {}
    for q in (True, False):
        made = CASES[r["name"]](q)
        if made is None:
            row[q] = None
            continue
        try:
            row[q] = timeit(*made)
        except Exception as e:  # an op/type combination this onnxruntime build lacks
            print(f"  ({r['name']} {'int8' if q else 'f32'}: {e})", file=sys.stderr)
            row[q] = None
    fmt = lambda s: "-" if s is None else (f"{s * 1e6:8.1f} us" if s < 1e-3 else f"{s * 1e3:8.3f} ms")
    gm = lambda s: f" {r['macs'] / s / 1e9:5.1f}G"
    ratio = lambda a, b: "-" if b is None else f"{a / b:.2f}x"
    fast, port = r["seconds"], r.get("portable_seconds", r["seconds"])
    print(f"{r['name']:<24} {r['macs']:>10} {fmt(fast) + gm(fast):>17} {fmt(port) + gm(port):>17}"
          f" {fmt(row[True]):>11} {fmt(row[False]):>11} {ratio(fast, row[True]):>10} {ratio(fast, row[False]):>9}"
          f" {ratio(port, row[True]):>19} {port / fast:>7.2f}x")
print("ratios: infera time / onnxruntime time (below 1: infera is faster; issue 3 target: int8 ratio <= 2);")
print("speed-up: portable time / fast time; G = GMAC/s")
