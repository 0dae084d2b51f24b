# SPDX-License-Identifier: Apache-2.0
"""Train the bundled digits example and write its .tflite models and test set.

    python examples/digits/train.py            # rewrites the files next to this script
    python examples/digits/train.py --out DIR  # somewhere else (the tests compare bytes)

A 64 -> 64 -> 32 -> 10 ReLU MLP (scikit-learn's MLPClassifier) on scikit-learn's
8x8 handwritten digits, exported without TensorFlow:

  digits_float.tflite  float32: FULLY_CONNECTED(RELU) x2, FULLY_CONNECTED, SOFTMAX;
                       input [1, 64] float32 pixel values 0..16, output [1, 10] probabilities.
  digits_int8.tflite   the same graph fully integer, quantized the way the TFLite converter
                       does it: int8 input and output, per-channel symmetric int8 weights,
                       int32 biases at input_scale * weight_scale, asymmetric int8
                       activations calibrated on the training set, softmax output 1/256, -128.
  digits_test.npz      the held-out test set: x (float32 [n, 64]), x_int8 (x quantized with the
                       int8 model's input parameters), y (labels).

Everything is seeded and the .npz is written with fixed zip timestamps, so running the
script twice gives the same bytes. Afterwards the models are run on the test set in
ai_edge_litert and in TFLite Micro (when installed) and the accuracies are printed.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tflite_writer import (Graph, activation_params, quantize, quantize_weights,  # noqa: E402
                           evaluate, round_half_away, write_npz)

SEED = 0
HIDDEN = (64, 32)
TEST_FRACTION = 0.25
PIXEL_MAX = 16.0  # load_digits pixels are integers 0..16

FLOAT_MODEL = "digits_float.tflite"
INT8_MODEL = "digits_int8.tflite"
TEST_SET = "digits_test.npz"


# ---- data and training -------------------------------------------------------------------------

def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test); x float32 [n, 64] in 0..16, y int64 labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32), y.astype(np.int64), test_size=TEST_FRACTION,
        random_state=SEED, stratify=y)
    return x_train, y_train, x_test, y_test


def train(x_train: np.ndarray, y_train: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Layers as (weights [out, in], bias [out]) float32; the first takes raw 0..16 pixels."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", solver="adam",
                        alpha=1e-3, batch_size=64, learning_rate_init=2e-3, max_iter=200,
                        random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(x_train / PIXEL_MAX, y_train)  # trained on 0..1 inputs
    layers = []
    for k, (w, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_)):
        w = w.T / PIXEL_MAX if k == 0 else w.T  # fold the 1/16 input scaling into layer 1
        layers.append((np.ascontiguousarray(w, dtype=np.float32), np.asarray(b, np.float32)))
    return layers


def forward(layers, x: np.ndarray) -> list[np.ndarray]:
    """float32 outputs of every FULLY_CONNECTED (after its ReLU), then the softmax."""
    outs = []
    h = np.asarray(x, np.float32)
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            h = np.maximum(h, 0)
        outs.append(h)
    e = np.exp(h - h.max(axis=1, keepdims=True))
    outs.append(e / e.sum(axis=1, keepdims=True))
    return outs


# ---- models ---------------------------------------------------------------------------------

DESCRIPTION = "ternembed example: 64-64-32-10 MLP on scikit-learn digits"


def float_model(layers) -> bytes:
    g = Graph(DESCRIPTION + " (float32)")
    h = x = g.tensor("input", (1, 64), "float32")
    for k, (w, b) in enumerate(layers, start=1):
        wt = g.tensor(f"dense{k}/weights", w.shape, "float32", w)
        bt = g.tensor(f"dense{k}/bias", b.shape, "float32", b)
        out = g.tensor(f"dense{k}/out" if k < len(layers) else "logits", (1, w.shape[0]), "float32")
        g.op("FULLY_CONNECTED", [h, wt, bt], [out],
             fused_activation_function="RELU" if k < len(layers) else "NONE")
        h = out
    probs = g.tensor("probabilities", (1, 10), "float32")
    g.op("SOFTMAX", [h], [probs], beta=1.0)
    g.inputs, g.outputs = [x], [probs]
    return g.serialize()


def int8_model(layers, x_train: np.ndarray) -> tuple[bytes, tuple[np.float32, int]]:
    """The full-integer model and its input (scale, zero point); calibrated on x_train."""
    acts = forward(layers, x_train)
    in_scale, in_zp = activation_params(x_train)
    g = Graph(DESCRIPTION + " (int8)")
    h = x = g.tensor("input", (1, 64), "int8", scale=in_scale, zero_point=in_zp)
    s_in = in_scale
    for k, (w, b) in enumerate(layers, start=1):
        last = k == len(layers)
        qw, s_w = quantize_weights(w)
        s_b = (np.float32(s_in) * s_w).astype(np.float32)
        qb = round_half_away(b.astype(np.float64) / s_b).astype(np.int32)
        wt = g.tensor(f"dense{k}/weights", w.shape, "int8", qw, scale=s_w, axis=0)
        bt = g.tensor(f"dense{k}/bias", b.shape, "int32", qb, scale=s_b, axis=0)
        s_out, zp_out = activation_params(acts[k - 1])
        out = g.tensor("logits" if last else f"dense{k}/out", (1, w.shape[0]), "int8",
                       scale=s_out, zero_point=zp_out)
        g.op("FULLY_CONNECTED", [h, wt, bt], [out],
             fused_activation_function="NONE" if last else "RELU")
        h, s_in = out, s_out
    probs = g.tensor("probabilities", (1, 10), "int8", scale=1 / 256, zero_point=-128)
    g.op("SOFTMAX", [h], [probs], beta=1.0)
    g.inputs, g.outputs = [x], [probs]
    return g.serialize(), (in_scale, in_zp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: next to this script)")
    ap.add_argument("--no-eval", action="store_true", help="skip running the models in the interpreters")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    x_train, y_train, x_test, y_test = load_split()
    layers = train(x_train, y_train)
    float_bytes = float_model(layers)
    int8_bytes, (in_scale, in_zp) = int8_model(layers, x_train)
    (args.out / FLOAT_MODEL).write_bytes(float_bytes)
    (args.out / INT8_MODEL).write_bytes(int8_bytes)
    write_npz(args.out / TEST_SET, {"x": x_test, "x_int8": quantize(x_test, in_scale, in_zp),
                                    "y": y_test})

    numpy_acc = float((forward(layers, x_test)[-1].argmax(axis=1) == y_test).mean())
    print(f"train {len(y_train)}, test {len(y_test)} samples; "
          f"numpy float test accuracy {numpy_acc:.4f}")
    for name in (FLOAT_MODEL, INT8_MODEL, TEST_SET):
        print(f"  wrote {args.out / name} ({(args.out / name).stat().st_size} bytes)")
    if not args.no_eval:
        for name, acc in evaluate(args.out, TEST_SET, FLOAT_MODEL, INT8_MODEL).items():
            print(f"  {name}: test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
