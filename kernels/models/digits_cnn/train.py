"""Train a small CNN on real handwritten digits and export it as float ONNX.

Data: scikit-learn's bundled `load_digits` (1,797 real 8x8 digits, UCI), pixels
scaled to [0, 1], the same stratified 80/20 split with seed 0 as the MLP demo
model (1,437 train / 360 held out). Trained with JAX on the CPU (training only).

Architecture (NCHW, input [N, 1, 8, 8]), chosen to cover the operators the
importer must handle on a real network:

    stem   Conv 3x3 1->16 pad 1 + BatchNormalization + Relu           [16, 8, 8]
    block  depthwise Conv 3x3 (group 16) + BatchNormalization + Clip(0, 6)
           Conv 1x1 16->16 + BatchNormalization
           Add(block, stem) + Relu  (residual)                          [16, 8, 8]
           MaxPool 2x2 / 2                                              [16, 4, 4]
           Conv 3x3 16->32 pad 1 + BatchNormalization + Relu           [32, 4, 4]
           AveragePool 2x2 / 2                                          [32, 2, 2]
           Conv 1x1 32->64 + BatchNormalization + Relu                 [64, 2, 2]
    head   GlobalAveragePool -> Reshape [0, -1] -> Gemm 64->10

BatchNormalization is exported as its own ONNX node with its running
statistics (the importer folds it into the preceding Conv).

Writes (all committed): digits_cnn.onnx, calib.npy (200 training images, for
calibration), test_x.npy / test_y.npy (the 360 held-out images and labels).
Run through ../../scripts/train_digits_cnn.sh, which pins the packages.
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import onnx
from jax import lax
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
EPOCHS = 60
BATCH = 64
LR = 3e-3
EPS = 1e-5
MOMENTUM = 0.9

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)[:, None]  # [1797, 1, 8, 8] in [0, 1]
y = digits.target.astype(np.int64)
x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)

# (name, out, in per group, k, groups, pad)
CONVS = [
    ("stem", 16, 1, 3, 1, 1),
    ("dw", 16, 1, 3, 16, 1),
    ("pw", 16, 16, 1, 1, 0),
    ("c2", 32, 16, 3, 1, 1),
    ("c3", 64, 32, 1, 1, 0),
]


def init(key):
    params, stats = {}, {}
    for name, oc, icg, k, _, _ in CONVS:
        key, sub = jax.random.split(key)
        fan_in = icg * k * k
        params[name] = {
            "w": jax.random.normal(sub, (oc, icg, k, k)) * np.sqrt(2.0 / fan_in),
            "gamma": jnp.ones(oc), "beta": jnp.zeros(oc),
        }
        stats[name] = {"mean": jnp.zeros(oc), "var": jnp.ones(oc)}
    key, sub = jax.random.split(key)
    params["fc"] = {"w": jax.random.normal(sub, (10, 64)) * np.sqrt(1.0 / 64), "b": jnp.zeros(10)}
    return params, stats


def conv_bn(params, stats, name, h, train):
    _, _, _, _, groups, pad = next(c for c in CONVS if c[0] == name)
    p = params[name]
    z = lax.conv_general_dilated(h, p["w"], (1, 1), [(pad, pad), (pad, pad)],
                                 dimension_numbers=("NCHW", "OIHW", "NCHW"),
                                 feature_group_count=groups)
    if train:
        mean, var = z.mean(axis=(0, 2, 3)), z.var(axis=(0, 2, 3))
        new = {"mean": MOMENTUM * stats[name]["mean"] + (1 - MOMENTUM) * mean,
               "var": MOMENTUM * stats[name]["var"] + (1 - MOMENTUM) * var}
    else:
        mean, var, new = stats[name]["mean"], stats[name]["var"], stats[name]
    zn = (z - mean[None, :, None, None]) / jnp.sqrt(var[None, :, None, None] + EPS)
    return zn * p["gamma"][None, :, None, None] + p["beta"][None, :, None, None], new


def forward(params, stats, h, train):
    new = {}
    a, new["stem"] = conv_bn(params, stats, "stem", h, train)
    a = jax.nn.relu(a)
    b, new["dw"] = conv_bn(params, stats, "dw", a, train)
    b = jnp.clip(b, 0.0, 6.0)
    b, new["pw"] = conv_bn(params, stats, "pw", b, train)
    r = jax.nn.relu(b + a)
    r = lax.reduce_window(r, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    c, new["c2"] = conv_bn(params, stats, "c2", r, train)
    c = jax.nn.relu(c)
    c = lax.reduce_window(c, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 2, 2), "VALID") / 4.0
    d, new["c3"] = conv_bn(params, stats, "c3", c, train)
    d = jax.nn.relu(d)
    g = d.mean(axis=(2, 3))
    return g @ params["fc"]["w"].T + params["fc"]["b"], new


def loss_fn(params, stats, xb, yb):
    logits, new = forward(params, stats, xb, True)
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, yb[:, None], axis=1).mean(), new


@jax.jit
def step(params, stats, m, v, t, xb, yb):
    (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, xb, yb)
    b1, b2 = 0.9, 0.999
    m = jax.tree_util.tree_map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
    v = jax.tree_util.tree_map(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
    lr = LR * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    params = jax.tree_util.tree_map(lambda p, a, s: p - lr * a / (jnp.sqrt(s) + 1e-8), params, m, v)
    return params, new, m, v, loss


params, stats = init(jax.random.PRNGKey(SEED))
m = jax.tree_util.tree_map(jnp.zeros_like, params)
v = jax.tree_util.tree_map(jnp.zeros_like, params)
rng = np.random.default_rng(SEED)
t = 0
for epoch in range(EPOCHS):
    order = rng.permutation(len(x_tr))
    for i in range(0, len(order) - BATCH + 1, BATCH):
        idx = order[i:i + BATCH]
        # Light augmentation: shift by up to one pixel.
        dx, dy = rng.integers(-1, 2, size=2)
        xb = np.roll(x_tr[idx], (int(dy), int(dx)), axis=(2, 3))
        t += 1
        params, stats, m, v, loss = step(params, stats, m, v, t, xb, y_tr[idx])

logits, _ = forward(params, stats, x_te, False)
jax_acc = float((np.asarray(logits).argmax(1) == y_te).mean())

# --- ONNX export -----------------------------------------------------------
inits, nodes = [], []


def const(name, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
    return name


def conv_node(name, inp, out):
    _, oc, _, k, groups, pad = next(c for c in CONVS if c[0] == name)
    p, s = params[name], stats[name]
    nodes.append(helper.make_node("Conv", [inp, const(f"{name}.w", p["w"])], [f"{name}.conv"],
                                  kernel_shape=[k, k], pads=[pad] * 4, strides=[1, 1], group=groups))
    nodes.append(helper.make_node("BatchNormalization",
                                  [f"{name}.conv", const(f"{name}.gamma", p["gamma"]),
                                   const(f"{name}.beta", p["beta"]), const(f"{name}.mean", s["mean"]),
                                   const(f"{name}.var", s["var"])], [out], epsilon=EPS))


conv_node("stem", "x", "stem.bn")
nodes.append(helper.make_node("Relu", ["stem.bn"], ["a"]))
conv_node("dw", "a", "dw.bn")
nodes.append(helper.make_node("Clip", ["dw.bn", const("zero", 0.0), const("six", 6.0)], ["dw.relu6"]))
conv_node("pw", "dw.relu6", "pw.bn")
nodes.append(helper.make_node("Add", ["pw.bn", "a"], ["res"]))
nodes.append(helper.make_node("Relu", ["res"], ["res.relu"]))
nodes.append(helper.make_node("MaxPool", ["res.relu"], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]))
conv_node("c2", "pool1", "c2.bn")
nodes.append(helper.make_node("Relu", ["c2.bn"], ["c2.relu"]))
nodes.append(helper.make_node("AveragePool", ["c2.relu"], ["pool2"], kernel_shape=[2, 2], strides=[2, 2]))
conv_node("c3", "pool2", "c3.bn")
nodes.append(helper.make_node("Relu", ["c3.bn"], ["c3.relu"]))
nodes.append(helper.make_node("GlobalAveragePool", ["c3.relu"], ["gap"]))
inits.append(numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "flat_shape"))
nodes.append(helper.make_node("Reshape", ["gap", "flat_shape"], ["flat"]))
nodes.append(helper.make_node("Gemm", ["flat", const("fc.w", params["fc"]["w"]), const("fc.b", params["fc"]["b"])],
                              ["logits"], transB=1))
graph = helper.make_graph(
    nodes, "digits_cnn",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="infera-train")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "digits_cnn.onnx")

calib = x_tr[np.random.default_rng(SEED).choice(len(x_tr), 200, replace=False)]
np.save("calib.npy", calib.astype(np.float32))
np.save("test_x.npy", x_te.astype(np.float32))
np.save("test_y.npy", y_te)

# Cross-check the exported graph with onnxruntime.
import onnxruntime as ort
sess = ort.InferenceSession("digits_cnn.onnx", providers=["CPUExecutionProvider"])
ort_logits = sess.run(None, {"x": x_te})[0]
ort_acc = float((ort_logits.argmax(1) == y_te).mean())
json.dump({"float_accuracy_jax": jax_acc, "float_accuracy_onnxruntime": ort_acc,
           "max_abs_logit_diff_jax_vs_onnxruntime": float(np.abs(ort_logits - np.asarray(logits)).max()),
           "epochs": EPOCHS, "train": len(x_tr), "test": len(x_te)}, sys.stdout, indent=1)
print()
