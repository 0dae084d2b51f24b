# SPDX-License-Identifier: Apache-2.0
"""The emulator against TensorFlow Lite Micro's reference kernels, byte for byte, on every int8 shared model."""
import numpy as np
import pytest

from shared_data import int8_cases, random_int8
from ternembed import emulate
from ternembed.lower import lower
from ternembed.reference import run_tflm
from ternembed.tflite import read

CASES = {c.name: c for c in int8_cases()}
RANDOM_SAMPLES = 50


def _random_inputs(case, plan, seed):
    out = []
    for k, i in enumerate(plan.inputs):
        buf = plan.buffers[i]
        if buf.dtype == "int8":
            out.append(random_int8(buf.shape[1:], RANDOM_SAMPLES, seed + k))
        else:  # float interface (QUANTIZE inside): cover the quantized range and beyond
            lo, hi = -3.0, 3.0
            rng = np.random.default_rng(seed + k)
            out.append(rng.uniform(lo, hi, (RANDOM_SAMPLES,) + tuple(buf.shape[1:])).astype(np.float32))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_emulator_equals_tflm(name):
    case = CASES[name]
    plan = lower(read(case.model))
    for inputs in (case.inputs, _random_inputs(case, plan, seed=len(name))):
        ours = emulate.run(plan, inputs)
        ref = run_tflm(case.model, inputs)
        assert len(ours) == len(ref)
        for o, r in zip(ours, ref):
            assert o.dtype == r.dtype and o.shape == r.shape, (o.shape, r.shape)
            mismatch = np.flatnonzero(o.reshape(len(o), -1) != r.reshape(len(r), -1))
            assert mismatch.size == 0, f"{name}: {mismatch.size} of {o.size} output values differ from TFLM"


@pytest.mark.parametrize("name", ["ic_int8", "sww_int8", "ad01_int8", "micro_speech", "kws_int8"])
def test_litert_differs_by_at_most_one_lsb_where_it_first_differs(name):
    """ai-edge-litert (reference op resolver) is the desktop runtime users compare with. Its int8 kernels
    round some requantizations differently from TFLM's; a 1-LSB difference in one layer can then grow
    downstream (AD's 10-layer autoencoder reaches 12 LSB at the output), so the check is made at the
    first layer where the two differ, on every sample."""
    from ternembed.reference import litert_interpreter
    case = CASES[name]
    plan = lower(read(case.model))
    x = case.inputs[0][:20]
    ours = emulate.run(plan, [x], keep_all=True)
    interp = litert_interpreter(case.model, preserve_all=True)
    d = interp.get_input_details()[0]
    for s in range(len(x)):
        interp.set_tensor(d["index"], x[s:s + 1].reshape(d["shape"]))
        interp.invoke()
        for step in plan.steps:
            o = step.outputs[0]
            diff = np.abs(interp.get_tensor(o).astype(np.int32).ravel() - ours[o][s].astype(np.int32).ravel())
            if diff.any():
                assert diff.max() <= 1, f"{name} sample {s}: op {step.op_index} differs by {diff.max()} LSB"
                break
