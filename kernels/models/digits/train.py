"""Train the demo digit classifier and export it as float ONNX.

Data: scikit-learn's bundled `load_digits` (1,797 real handwritten 8x8 digits,
UCI), pixels scaled to [0, 1]. Model: MLP 64 -> 64 (ReLU) -> 32 (ReLU) -> 10, trained
with scikit-learn. The ONNX graph takes NCHW input [N, 1, 8, 8] so the same
pipeline serves image models: Flatten -> Gemm -> Relu -> Gemm -> Relu -> Gemm.

Writes (all committed): digits.onnx, calib.npy (200 training images, for
quantisation calibration), test_x.npy / test_y.npy (the 360 held-out images and
labels). Run through ../../scripts/train_digits.sh, which pins the packages.
"""

import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

SEED = 0

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)  # [1797, 8, 8] in [0, 1]
y = digits.target.astype(np.int64)
x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)

clf = MLPClassifier(hidden_layer_sizes=(64, 32), alpha=1e-3, max_iter=800, random_state=SEED)
clf.fit(x_tr.reshape(len(x_tr), -1), y_tr)
float_acc = clf.score(x_te.reshape(len(x_te), -1), y_te)

inits, nodes, prev = [], [], "flat"
nodes.append(helper.make_node("Flatten", ["x"], ["flat"], axis=1))
for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
    inits += [numpy_helper.from_array(w.T.astype(np.float32), f"w{i}"),
              numpy_helper.from_array(b.astype(np.float32), f"b{i}")]
    out = "logits" if i == len(clf.coefs_) - 1 else f"h{i}"
    nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out], transB=1))
    if out != "logits":
        nodes.append(helper.make_node("Relu", [out], [out + "_relu"]))
        out += "_relu"
    prev = out
graph = helper.make_graph(
    nodes, "digits_mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="infera-train")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "digits.onnx")

rng = np.random.default_rng(SEED)
calib = x_tr[rng.choice(len(x_tr), 200, replace=False)].reshape(-1, 1, 8, 8)
np.save("calib.npy", calib.astype(np.float32))
np.save("test_x.npy", x_te.reshape(-1, 1, 8, 8).astype(np.float32))
np.save("test_y.npy", y_te)

# Cross-check the exported graph with onnxruntime.
import onnxruntime as ort
sess = ort.InferenceSession("digits.onnx", providers=["CPUExecutionProvider"])
logits = sess.run(None, {"x": x_te.reshape(-1, 1, 8, 8)})[0]
ort_acc = float((logits.argmax(1) == y_te).mean())
json.dump({"float_accuracy_sklearn": float_acc, "float_accuracy_onnxruntime": ort_acc,
           "train": len(x_tr), "test": len(x_te)}, sys.stdout, indent=1)
print()
