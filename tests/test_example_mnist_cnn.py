# SPDX-License-Identifier: Apache-2.0
"""The demo's model (examples/mnist_cnn): committed files, the fixed split, TFLite conventions, bit-exactness."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ternembed import emulate
from ternembed.lower import lower
from ternembed.tflite import read

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mnist_cnn"
FLOAT_MODEL = EXAMPLE / "mnist_cnn_float.tflite"
INT8_MODEL = EXAMPLE / "mnist_cnn_int8.tflite"
TEST_SET = EXAMPLE / "mnist_cnn_test.npz"
CALIB_SET = EXAMPLE / "mnist_cnn_calib.npz"
OUTPUTS = (FLOAT_MODEL, INT8_MODEL, TEST_SET, CALIB_SET)
OPS = ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED",
       "FULLY_CONNECTED", "SOFTMAX"]


def load(path):
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def split():
    sys.path.insert(0, str(EXAMPLE))
    try:
        import mnist_split
        return mnist_split.load_split()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    finally:
        sys.path.remove(str(EXAMPLE))


def test_committed_files_are_small_and_consistent():
    assert INT8_MODEL.stat().st_size < 80_000 and sum(p.stat().st_size for p in OUTPUTS) < 700_000
    g = read(INT8_MODEL)
    q = g.tensor(g.inputs[0]).quant
    assert q.s == 1.0 and q.zp == -128  # pixels 0..255
    test, calib = load(TEST_SET), load(CALIB_SET)
    x, y = test["x"], test["y"]
    assert x.dtype == np.float32 and x.shape == (500, 28, 28, 1) and x.min() >= 0 and x.max() <= 255
    assert (np.bincount(y) == 50).all()
    # x_int8 is x quantized with the int8 model's input parameters
    np.testing.assert_array_equal(test["x_int8"], (x - 128).astype(np.int8))
    # calibration: training digits already in the model's int8 input format
    assert calib["x"].dtype == np.int8 and calib["x"].shape == (1000, 28, 28, 1)
    assert calib["y"].shape == (1000,) and set(np.unique(calib["y"])) == set(range(10))


def test_split_is_the_committed_one(split):
    """The held-out digits are the test part of mnist_split.load_split(); calibration uses training digits."""
    x_train, y_train, x_test, y_test = split
    assert len(x_train) == 4500 and len(x_test) == 500
    test, calib = load(TEST_SET), load(CALIB_SET)
    np.testing.assert_array_equal(test["x"], x_test)
    np.testing.assert_array_equal(test["y"], y_test)
    np.testing.assert_array_equal(calib["x"], (x_train[:1000] - 128).astype(np.int8))
    np.testing.assert_array_equal(calib["y"], y_train[:1000])
    train_rows = {r.tobytes() for r in x_train.reshape(len(x_train), -1).astype(np.uint8)}
    assert not any(r.tobytes() in train_rows for r in x_test.reshape(len(x_test), -1).astype(np.uint8))


def test_int8_model_quantization_follows_tflite_conventions():
    g = read(INT8_MODEL)
    assert [op.type for op in g.ops] == OPS
    for op in g.ops:
        if op.type in ("CONV_2D", "FULLY_CONNECTED"):
            inp, w, b, out = (g.tensor(i) for i in (*op.inputs, op.outputs[0]))
            assert w.dtype == "int8" and w.quant.axis == 0 and w.quant.scale.size == w.shape[0]
            assert not w.quant.zero_point.any() and np.abs(w.data.astype(int)).max() == 127
            assert w.data.min() >= -127
            assert b.dtype == "int32" and not b.quant.zero_point.any()
            np.testing.assert_allclose(b.quant.scale, inp.quant.s * w.quant.scale, rtol=1e-6)
        elif op.type in ("MAX_POOL_2D", "RESHAPE"):  # keep their input's parameters
            inp, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
            assert (inp.quant.s, inp.quant.zp) == (out.quant.s, out.quant.zp)
    probs = g.tensor(g.outputs[0])
    assert probs.dtype == "int8" and probs.quant.zp == -128 and probs.quant.s == np.float32(1 / 256)


def test_models_in_tflm_and_emulator_byte_for_byte():
    from test_example_digits import tflm_outputs
    d = load(TEST_SET)
    assert (tflm_outputs(FLOAT_MODEL, d["x"][:100]).argmax(1) == d["y"][:100]).mean() >= 0.95
    ref = tflm_outputs(INT8_MODEL, d["x_int8"])
    assert (ref.argmax(1) == d["y"]).mean() >= 0.95
    out = emulate.run(lower(read(INT8_MODEL)), [d["x_int8"]])[0]
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)


def test_train_script_is_deterministic(tmp_path, split):
    """Two short runs (one epoch) give the same bytes; needs the [train] extra (JAX, optax)."""
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(EXAMPLE / "train.py"), "--out", str(tmp_path / run), "--no-eval",
                        "--epochs", "1"], check=True, capture_output=True)
    for path in OUTPUTS:
        first, second = (tmp_path / "a" / path.name).read_bytes(), (tmp_path / "b" / path.name).read_bytes()
        assert first == second, path.name
        if path.suffix == ".tflite":
            assert len(first) == len(path.read_bytes()), path.name
