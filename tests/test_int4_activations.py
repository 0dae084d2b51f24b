# SPDX-License-Identifier: Apache-2.0
"""int4 activations (Plan -> Plan): eligibility, 4-bit range, determinism, AD score, no-op path."""
from __future__ import annotations

import numpy as np
import pytest

from ternembed import emulate
from ternembed.errors import InputError
from ternembed.lower import lower
from ternembed.quantize.act4 import (INT4_MAX, INT4_MIN, eligible_buffers, int4_activations, pack_buffer,
                                     packed_nbytes, requantize_buffers, unpack_buffer)
from ternembed.tflite import read

from shared_data import int8_cases


@pytest.fixture(scope="module")
def ad():
    case = next((c for c in int8_cases() if c.name == "ad01_int8"), None)
    if case is None or not case.model.exists():
        pytest.skip("AD model not available")
    return lower(read(case.model)), case.inputs[0]


def _ad_score(plan, x):
    """Per-window MSE(input, dequantized output), as the AD benchmark scores anomalies."""
    y = emulate.run(plan, [x])[0].astype(np.float64).reshape(len(x), -1)
    bi, bo = plan.buffers[plan.inputs[0]], plan.buffers[plan.outputs[0]]
    xr = (x.astype(np.float64).reshape(len(x), -1) - bi.zero_point) * bi.scale
    return (((y - bo.zero_point) * bo.scale - xr) ** 2).mean(axis=1)


def test_ad_chain_is_eligible(ad):
    plan, _ = ad
    mac_outs = [s.outputs[0] for s in plan.steps if s.kernel == "fc_s8"]
    assert eligible_buffers(plan) == sorted(b for b in mac_outs if b not in plan.outputs)


def test_ad_int4_plan(ad):
    plan, x = ad
    new, rep = int4_activations(plan, [x])
    again, _ = int4_activations(plan, [x])
    assert new.act4_buffers == frozenset(eligible_buffers(plan)) == frozenset(rep["act4_buffers"])
    v1, v2 = emulate.run(new, [x], keep_all=True), emulate.run(again, [x], keep_all=True)
    for i in v1:
        assert np.array_equal(v1[i], v2[i])
    for i in new.act4_buffers:
        assert v1[i].min() >= INT4_MIN and v1[i].max() <= INT4_MAX
        assert np.array_equal(unpack_buffer(pack_buffer(v1[i]), len(x), v1[i].shape[1:]), v1[i])
    # the source plan is untouched
    assert not hasattr(plan, "act4_buffers")
    s8, s4 = _ad_score(plan, x), _ad_score(new, x)
    print(f"AD score int8 {s8.mean():.4f} int4 {s4.mean():.4f} corr {np.corrcoef(s8, s4)[0, 1]:.3f}; "
          f"arena {rep['arena_bytes_int8']} -> {rep['arena_bytes_packed']} bytes")
    assert abs(s4.mean() - s8.mean()) < 0.5 * s8.mean()
    assert np.corrcoef(s8, s4)[0, 1] > 0.5
    assert rep["activation_bytes_int4"] * 2 >= rep["activation_bytes_int8"]
    assert packed_nbytes(new) == rep["arena_bytes_packed"] <= rep["arena_bytes_int8"]


def test_no_calibration_raises(ad):
    plan, _ = ad
    with pytest.raises(InputError, match="calibration"):
        int4_activations(plan, None)
    with pytest.raises(InputError, match="calibration"):
        int4_activations(plan, [])


def test_ineligible_buffer_raises(ad):
    plan, x = ad
    with pytest.raises(InputError, match="cannot change quantization"):
        int4_activations(plan, [x], buffers=[plan.outputs[0]])


def test_noop_requant_is_bit_exact(ad):
    plan, x = ad
    same = requantize_buffers(plan, {i: (plan.buffers[i].scale, plan.buffers[i].zero_point, -128, 127)
                                     for i in eligible_buffers(plan)})
    a, b = emulate.run(plan, [x], keep_all=True), emulate.run(same, [x], keep_all=True)
    for i in a:
        assert np.array_equal(a[i], b[i])
    for s0, s1 in zip(plan.steps, same.steps):
        for k, v in s0.params.items():
            assert np.array_equal(np.asarray(v), np.asarray(s1.params[k])), k


def test_coarser_int8_grid_tracks_int8(ad):
    """Scale x2, int8 range: the consumer's bias/multiplier change keeps the net close to int8."""
    plan, x = ad
    i = eligible_buffers(plan)[0]
    b = plan.buffers[i]
    coarse = requantize_buffers(plan, {i: (2 * b.scale, b.zero_point, -128, 127)})
    a, c = emulate.run(plan, [x], keep_all=True), emulate.run(coarse, [x], keep_all=True)
    nxt = next(s.outputs[0] for s in plan.steps if s.inputs[0] == i)
    d = np.abs(a[nxt].astype(int) - c[nxt].astype(int))
    assert d.mean() < 1.0


def test_ternary_consumers(ad):
    """Ternary steps (decode_weights sums) re-fold bit-exactly on the no-op path and run in int4."""
    from ternembed.quantize.plan_pass import ternarize_plan
    plan, x = ad
    from ternembed.variants import assign_variants
    tp, _ = ternarize_plan(plan, None, [x])
    tp = assign_variants(tp)  # the variant pass comes before memory planning, as in export
    assert any(s.kernel.endswith("_t2_s8") for s in tp.steps)
    same = requantize_buffers(tp, {i: (tp.buffers[i].scale, tp.buffers[i].zero_point, -128, 127)
                                   for i in eligible_buffers(tp)})
    for a, b in zip(emulate.run(tp, [x]), emulate.run(same, [x])):
        assert np.array_equal(a, b)
    t4, _ = int4_activations(tp, [x])
    v = emulate.run(t4, [x], keep_all=True)
    assert all(v[i].min() >= INT4_MIN and v[i].max() <= INT4_MAX for i in t4.act4_buffers)
    assert _ad_score(t4, x).mean() < 2 * _ad_score(tp, x).mean()
