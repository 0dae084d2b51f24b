# SPDX-License-Identifier: Apache-2.0
"""The bundled digits example (examples/digits): committed models, bit-exactness, reproducibility."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ternembed import emulate
from ternembed.calibrate import quantize_graph
from ternembed.lower import lower
from ternembed.tflite import read

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
FLOAT_MODEL = DIGITS / "digits_float.tflite"
INT8_MODEL = DIGITS / "digits_int8.tflite"
TEST_SET = DIGITS / "digits_test.npz"
OUTPUTS = (FLOAT_MODEL, INT8_MODEL, TEST_SET)


@pytest.fixture(scope="module")
def test_set():
    with np.load(TEST_SET) as d:
        return {k: d[k] for k in ("x", "x_int8", "y")}


def tflm_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    pytest.importorskip("tflite_micro")
    sys.path.insert(0, str(DIGITS))
    try:
        from tflite_writer import run_tflm  # the example's own runner
    finally:
        sys.path.remove(str(DIGITS))
    return run_tflm(path, x)


def test_committed_files_are_small_and_consistent(test_set):
    assert sum(p.stat().st_size for p in OUTPUTS) < 100_000
    x, x_int8, y = test_set["x"], test_set["x_int8"], test_set["y"]
    assert x.dtype == np.float32 and x.shape[1:] == (64,)
    assert x_int8.dtype == np.int8 and x_int8.shape == x.shape
    assert y.shape == (len(x),) and set(np.unique(y)) == set(range(10))
    assert x.min() >= 0 and x.max() <= 16
    # x_int8 is x quantized with the int8 model's input parameters (round half away from zero).
    g = read(INT8_MODEL)
    q = g.tensor(g.inputs[0]).quant
    expect = np.clip(np.floor(x / np.float32(q.s) + 0.5) + q.zp, -128, 127)
    np.testing.assert_array_equal(x_int8, expect.astype(np.int8))


def test_float_model_structure():
    g = read(FLOAT_MODEL)
    assert [op.type for op in g.ops] == ["FULLY_CONNECTED"] * 3 + ["SOFTMAX"]
    assert [op.options["fused_activation_function"] for op in g.ops[:3]] == ["RELU", "RELU", "NONE"]
    assert all(t.dtype == "float32" and t.quant is None for t in g.tensors)
    assert g.tensor(g.inputs[0]).shape == (1, 64) and g.tensor(g.outputs[0]).shape == (1, 10)
    assert [g.tensor(op.inputs[1]).shape for op in g.ops[:3]] == [(64, 64), (32, 64), (10, 32)]


def test_int8_model_quantization_follows_tflite_conventions():
    g = read(INT8_MODEL)
    assert [op.type for op in g.ops] == ["FULLY_CONNECTED"] * 3 + ["SOFTMAX"]
    x = g.tensor(g.inputs[0])
    assert x.dtype == "int8" and x.quant.zp == -128  # calibrated range 0..16
    np.testing.assert_allclose(x.quant.s, 16 / 255, rtol=1e-6)
    for op in g.ops[:3]:
        inp, w, b, out = (g.tensor(i) for i in (*op.inputs, op.outputs[0]))
        assert w.dtype == "int8" and w.quant.axis == 0 and w.quant.scale.size == w.shape[0]
        assert not w.quant.zero_point.any() and np.abs(w.data.astype(int)).max() == 127
        assert w.data.min() >= -127
        assert b.dtype == "int32" and not b.quant.zero_point.any()
        np.testing.assert_allclose(b.quant.scale, inp.quant.s * w.quant.scale, rtol=1e-6)
        assert out.dtype == "int8" and out.quant.scale.size == 1
    for op in g.ops[:2]:  # ReLU outputs: range starts at 0
        assert g.tensor(op.outputs[0]).quant.zp == -128
    probs = g.tensor(g.outputs[0])
    assert probs.dtype == "int8" and probs.quant.zp == -128
    assert probs.quant.s == np.float32(1 / 256)


def test_emulator_matches_tflm_byte_for_byte(test_set):
    x_int8, y = test_set["x_int8"], test_set["y"]
    ref = tflm_outputs(INT8_MODEL, x_int8)
    out = emulate.run(lower(read(INT8_MODEL)), [x_int8])[0]
    assert out.dtype == np.int8
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)
    assert (out.reshape(len(y), -1).argmax(1) == y).mean() >= 0.9


def test_float_model_in_tflm_and_calibrated_by_ternembed(test_set):
    x, y = test_set["x"], test_set["y"]
    assert (tflm_outputs(FLOAT_MODEL, x).argmax(1) == y).mean() >= 0.9
    # ternembed's own calibration of the float model (first 100 samples calibrate, rest evaluate)
    plan = lower(quantize_graph(read(FLOAT_MODEL), FLOAT_MODEL, [x[:100]]))
    probs = emulate.run(plan, [x[100:]])[0]
    assert (probs.argmax(1) == y[100:]).mean() >= 0.9


def test_train_script_is_deterministic(tmp_path):
    """Two runs give the same bytes. Against the committed files only the sizes are compared:
    a different scikit-learn/BLAS build may change the last bits of the trained floats."""
    pytest.importorskip("sklearn")
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(DIGITS / "train.py"), "--out", str(tmp_path / run), "--no-eval"],
                       check=True, capture_output=True)
    for path in OUTPUTS:
        first, second = (tmp_path / "a" / path.name).read_bytes(), (tmp_path / "b" / path.name).read_bytes()
        assert first == second, path.name
        if path.suffix == ".tflite":
            assert len(first) == len(path.read_bytes()), path.name
