# SPDX-License-Identifier: Apache-2.0
"""Learnable parameters per method (issue 11): FGQ group scales, TTQ asymmetric scales, TRN planes
trained jointly, GTC power-of-two levels and their number per layer, RTN scale + offset. For each:
the twin starts at the post-training plan, trained (perturbed) parameters lower to a plan the twin
predicts, and that plan is bit-exact emulator == host C (portable and DSP paths)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ternembed import emulate
from ternembed.pipeline import build_plan
from ternembed.quantize.plan_pass import ternarize_plan
from ternembed.quantize.policy import TernaryConfig

jax = pytest.importorskip("jax", reason="fine-tuning needs the train extra: pip install -e '.[train]'")
pytest.importorskip("optax", reason="fine-tuning needs the train extra: pip install -e '.[train]'")

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
METHODS = {  # form -> (post-training config, asymmetric, kernel of the lowered steps)
    "fgq": (dict(method="fgq", group=16), False, "fc_t2_s8"),
    "ttq": (dict(method="fgq", group=16), True, "fc_t2_s8"),
    "trn": (dict(method="trn", group=16, planes=2), False, "fc_t2_s8"),
    "gtc": (dict(method="pow2", group=16, levels=3), False, "fc_p2_s8"),
    "rtn": (dict(method="offset", group=16), False, "fc_to_s8"),
}


@pytest.fixture(scope="module")
def digits():
    plan, _ = build_plan(DIGITS / "digits_int8.tflite")
    with np.load(DIGITS / "digits_test.npz") as z:
        return plan, z["x_int8"]


def _twin_logits(tw, params, x):
    import jax.numpy as jnp
    return np.asarray(tw.logits(params, jnp.asarray(x, jnp.float32)))


def _plan_logits(tw, plan, x):
    out = emulate.run(plan, [x], keep_all=True)[tw.logit_buffer].reshape(len(x), -1)
    return (out.astype(np.float64) - tw.logit_zp) * tw.logit_scale


@pytest.mark.parametrize("form", list(METHODS))
def test_method_trains_lowers_and_is_bit_exact(digits, form):
    from ternembed.finetune.train import lower_params
    from ternembed.finetune.twin import Twin
    from ternembed.hostcheck import host_run
    plan, x = digits
    opts, asym, kernel = METHODS[form]
    tplan, _ = ternarize_plan(plan, TernaryConfig(first_last="ternary", **opts), [x[:200]])
    tw = Twin(tplan, asymmetric=asym)
    assert {f.kind for f in tw.forms.values()} == {form}
    params = tw.init_params()
    z0, ref = _twin_logits(tw, params, x[:100]), _plan_logits(tw, tplan, x[:100])
    # the start is the post-training plan (float vs fixed-point requantization: a step apart)
    close = np.abs(z0 - ref).max(axis=1) <= 1.01 * tw.logit_scale
    assert close.all()
    # "trained" parameters: every tensor moved, signs and levels re-decided
    rng = np.random.default_rng(0)
    moved = jax.tree_util.tree_map(lambda v: v * (1 + 0.2 * rng.standard_normal(v.shape)).astype(np.float32), params)
    low = lower_params(tplan, plan, tw, moved)
    assert all(low.steps[k].kernel == kernel for k in tw.forms)
    if form == "ttq":
        assert all(int(low.steps[k].params["planes"]) == 2 for k in tw.forms)
    # the integer plan computes what the twin trained (up to the integer rounding of scales/bias)
    z, got = _twin_logits(tw, moved, x[:200]), _plan_logits(tw, low, x[:200])
    assert (z.argmax(1) == got.argmax(1)).mean() >= 0.9
    assert np.abs(z - got).mean() <= 0.1 * np.abs(z).mean()
    want = emulate.run(low, [x[:64]])[0]
    for dsp in (False, True):
        assert np.array_equal(host_run(low, [x[:64]], emulate_dsp=dsp)[0], want)


@pytest.mark.parametrize("form", list(METHODS))
def test_method_fine_tunes_end_to_end(digits, form):
    # at the default learning rate: the loss falls and the held-out agreement does not collapse
    # (regression: a bias rate scaled to |bias| took the digits MLP from 0.98 to 0.5 in one epoch)
    from ternembed.finetune import finetune_plan
    plan, x = digits
    opts, asym, _ = METHODS[form]
    tplan, _ = ternarize_plan(plan, TernaryConfig(first_last="ternary", **opts), [x[:200]])
    ft, rep = finetune_plan(plan, tplan, x[:300], epochs=3, progress=False, seed=0, asymmetric=asym)
    losses = [h["loss"] for h in rep.history[1:]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert min(h["agreement"] for h in rep.history) >= rep.history[0]["agreement"] - 0.05
    assert rep.best["agreement"] >= rep.history[0]["agreement"]


@pytest.mark.parametrize("form", ["trn", "gtc", "rtn"])  # ttq: the same t2 planes as trn
def test_conv_method_lowers_bit_exact(form):
    # conv and depthwise geometry (padding, the offset kernel's patch sums) on the MNIST CNN
    from ternembed.finetune.train import lower_params
    from ternembed.finetune.twin import Twin
    from ternembed.hostcheck import host_run
    cnn = Path(__file__).resolve().parents[1] / "examples" / "mnist_cnn"
    plan, _ = build_plan(cnn / "mnist_cnn_int8.tflite")
    with np.load(cnn / "mnist_cnn_calib.npz") as z:
        x = z["x"][:64]
    opts, asym, kernel = METHODS[form]
    tplan, _ = ternarize_plan(plan, TernaryConfig(first_last="ternary", **opts), [x])
    tw = Twin(tplan, asymmetric=asym)
    assert any(tplan.steps[k].kernel.startswith("conv") for k in tw.forms)
    rng = np.random.default_rng(1)
    moved = jax.tree_util.tree_map(lambda v: v * (1 + 0.1 * rng.standard_normal(v.shape)).astype(np.float32),
                                   tw.init_params())
    low = lower_params(tplan, plan, tw, moved)
    z, got = _twin_logits(tw, moved, x), _plan_logits(tw, low, x)
    assert (z.argmax(1) == got.argmax(1)).mean() >= 0.9
    want = emulate.run(low, [x[:16]])[0]
    for dsp in (False, True):
        assert np.array_equal(host_run(low, [x[:16]], emulate_dsp=dsp)[0], want)


# ---- GTC: the number of levels is learned per layer (forms.gtc_levels) --------------------------
def test_gtc_levels_rule_on_crafted_weights():
    # the L whose stored weights (nearest levels under a, integer scales of the smallest level)
    # are closest to the latent weights, the fewest within 1%
    from ternembed.finetune.forms import gtc_levels
    g = np.arange(8) // 4  # two groups of 4 taps, two rows

    def learned(w, top):
        return int(gtc_levels(np.asarray(w, float), np.full((2, 2), float(top)), g, 255, np))

    octaves = np.array([[1, -1 / 2, 1 / 4, -1 / 8, 1 / 16, -1 / 32, 0, 1]] * 2)
    assert learned(64 * octaves, 64) == 6  # six octaves below a, each stored exactly
    assert learned(64 * np.round(octaves * 4) / 4, 64) == 3  # what L3 stores: more levels store it no better
    assert learned(64 * np.round(octaves), 64) == 1  # {0, +-a}: ternary
    # the same six octaves under a top level of 6 units: the integer scale of the smallest level
    # (6 / 2^(L-1), rounded) cannot split six ways; L = 2 stores {6, 3} exactly and wins
    assert learned(6 * octaves, 6) == 2
    # a level that helps by less than 1% is not taken: the L3 grid plus noise, and one small weight
    # that L7 would store (1.2 -> 1) but L3 zeroes
    from ternembed.finetune.forms import _gtc_error
    w = np.array([[64, -32, 16, 64, -32, 16, 64, 0]] * 2, float)
    w += np.random.default_rng(0).normal(0, 4, w.shape) * (w != 0)
    w[0, 7] = 1.2
    a = np.full((2, 2), 64.0)
    assert _gtc_error(w, a, g, 7, 255, np) < _gtc_error(w, a, g, 3, 255, np) and learned(w, 64) == 3


def _gtc_plan(plan, levels, x):
    from ternembed.finetune.twin import Twin
    tplan, rep = ternarize_plan(plan, TernaryConfig(method="pow2", group=16, levels=levels, first_last="ternary"), [x])
    return rep, tplan, Twin(tplan)


def _levels(plan) -> list[int]:
    """Each ternary step's L (a t2 step: 1), from its method label."""
    return [int(s.params["method"].split(" L")[1].split()[0]) for s in plan.steps if "_t2_" in s.kernel
            or "_p2_" in s.kernel]


def test_gtc_levels_start_at_post_training_then_learned(digits):
    # the twin starts at the post-training L (it stores those weights exactly); trained parameters
    # move it; the twin (float32, every step) and the lowering (float64) decide the same L; the
    # lowered plan's method says which, and is bit-exact emulator == host C
    import jax.numpy as jnp
    from ternembed.finetune.forms import gtc_levels
    from ternembed.finetune.train import lower_params
    from ternembed.hostcheck import host_run
    plan, x = digits
    _, tplan, tw = _gtc_plan(plan, 2, x[:200])
    params = tw.init_params()
    assert _levels(lower_params(tplan, plan, tw, params)) == [2, 2, 2]
    rng = np.random.default_rng(0)
    moved = jax.tree_util.tree_map(lambda v: v * (1 + 0.2 * rng.standard_normal(v.shape)).astype(np.float32), params)
    low = lower_params(tplan, plan, tw, moved)
    got = _levels(low)
    assert got != [2, 2, 2] and all(1 <= L <= 7 for L in got)
    for (k, f), L in zip(sorted(tw.forms.items()), got):
        p = moved[str(k)]
        assert int(gtc_levels(p["w"], jnp.abs(p["a"]), f.gid(), 255, jnp)) == L
        assert low.steps[k].params["method"] == f"pow2/N16 L{L} ft"
        assert int(low.steps[k].params["levels"]) == L
    z, out = _twin_logits(tw, moved, x[:200]), _plan_logits(tw, low, x[:200])
    assert (z.argmax(1) == out.argmax(1)).mean() >= 0.9
    want = emulate.run(low, [x[:64]])[0]
    for dsp in (False, True):
        assert np.array_equal(host_run(low, [x[:64]], emulate_dsp=dsp)[0], want)


def test_gtc_learned_one_level_lowers_to_t2_bit_exact(digits):
    # latent weights on {0, +-a}: L = 1, stored by the 2-bit kernel (as post-training pow2 L=1)
    from ternembed.finetune.train import lower_params
    from ternembed.hostcheck import host_run
    plan, x = digits
    _, tplan, tw = _gtc_plan(plan, 3, x[:200])
    params = tw.init_params()
    for k, f in tw.forms.items():  # top level: the smallest level's 8-bit scale (a 2^-2), which L = 1 stores
        p = params[str(k)]
        a = np.abs(np.asarray(p["a"])) / 4
        w = np.asarray(p["w"])
        p["a"], p["w"] = jax.numpy.asarray(a), jax.numpy.asarray(np.sign(w) * a[:, f.gid()] * (np.abs(w) > 0))
    low = lower_params(tplan, plan, tw, params)
    assert _levels(low) == [1, 1, 1] and all(low.steps[k].kernel == "fc_t2_s8" for k in tw.forms)
    z, out = _twin_logits(tw, params, x[:200]), _plan_logits(tw, low, x[:200])
    assert (z.argmax(1) == out.argmax(1)).mean() >= 0.9
    want = emulate.run(low, [x[:64]])[0]
    for dsp in (False, True):
        assert np.array_equal(host_run(low, [x[:64]], emulate_dsp=dsp)[0], want)


def test_gtc_fine_tuning_learns_levels(digits, monkeypatch):
    # end to end from post-training L = 2: the lowered plan of some epoch has learned another L,
    # and the export note names it
    from ternembed.finetune import finetune_plan
    from ternembed.finetune import train
    from ternembed.finetune.forms import levels_note
    plan, x = digits
    ptq, tplan, _ = _gtc_plan(plan, 2, x[:200])
    lowered = []
    real = train.lower_params
    monkeypatch.setattr(train, "lower_params", lambda *a: lowered.append(real(*a)) or lowered[-1])
    ft, rep = finetune_plan(plan, tplan, x[:300], epochs=2, lr=0.05, progress=False, seed=0)
    assert len(lowered) == 2 and any(_levels(p) != [2, 2, 2] for p in lowered)
    last = lowered[-1]
    assert levels_note(ptq, last) == "learned power-of-two levels per layer (GTC): " + ", ".join(
        f"op {s.op_index} L2 -> L{L}" for s, L in zip([s for s in last.steps if "method" in s.params], _levels(last)))
    assert levels_note(ptq, tplan) is None  # not fine-tuned
    assert rep.best["agreement"] >= rep.history[0]["agreement"]
