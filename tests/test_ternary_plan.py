# SPDX-License-Identifier: Apache-2.0
"""The ternary Plan pass: integer contract (vs an explicit per-tap reference), planes, budgets,
determinism, lossless packing of already-ternary weights, config parsing."""
from __future__ import annotations

import numpy as np
import pytest

from ternembed import emulate, pack
from ternembed.errors import InputError
from ternembed.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier
from ternembed.kernels import ternary as TK
from ternembed.plan import Buffer, Plan, Step
from ternembed.quantize.plan_pass import (build_step, fit_layer, mac_layers, quant_bytes, set_active_planes,
                                          ternarize_plan)
from ternembed.quantize.policy import TernaryConfig, config_from_dict, load_config, parse_spec

INT32_MAX = 2**31 - 1


# ------------------------------------------------------------------------- small random steps
def _requant(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in real]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


def _out_size(n: int, k: int, s: int, d: int, pad: int) -> int:
    return (n + 2 * pad - (k - 1) * d - 1) // s + 1


def make_plan(kind: str, rng: np.random.Generator, *, O=6, K=40, H=7, W=6, C=5, kh=3, kw=3, M=2,
              stride=(1, 1), dilation=(1, 1), pad=(1, 1), in_zp=13, out_zp=-7, act=(-128, 127),
              big_bias=False) -> tuple[Plan, np.ndarray]:
    """A one-step int8 plan as lower() would build it, and int8 inputs for it."""
    n = 3
    if kind == "fc":
        w = rng.integers(-127, 128, (O, K)).astype(np.int8)
        x = rng.integers(-128, 128, (n, K)).astype(np.int8)
        in_shape, out_shape, w2 = (1, K), (1, O), w.astype(np.int64)
        geo = dict(rows=1, depth=K)
        macs = O * K
    elif kind == "conv":
        w = rng.integers(-127, 128, (O, kh, kw, C)).astype(np.int8)
        x = rng.integers(-128, 128, (n, H, W, C)).astype(np.int8)
        oh, ow = (_out_size(H, kh, stride[0], dilation[0], pad[0]), _out_size(W, kw, stride[1], dilation[1], pad[1]))
        in_shape, out_shape = (1, H, W, C), (1, oh, ow, O)
        w2 = w.reshape(O, -1).astype(np.int64)
        geo = dict(stride=stride, dilation=dilation, pad=pad, out_hw=(oh, ow))
        macs = oh * ow * O * w2.shape[1]
    else:
        O = C * M
        w = rng.integers(-127, 128, (1, kh, kw, O)).astype(np.int8)
        x = rng.integers(-128, 128, (n, H, W, C)).astype(np.int8)
        oh, ow = (_out_size(H, kh, stride[0], dilation[0], pad[0]), _out_size(W, kw, stride[1], dilation[1], pad[1]))
        in_shape, out_shape = (1, H, W, C), (1, oh, ow, O)
        w2 = w.reshape(kh * kw, O).T.astype(np.int64)
        geo = dict(stride=stride, dilation=dilation, pad=pad, out_hw=(oh, ow), depth_multiplier=M)
        macs = oh * ow * O * kh * kw
    s_in, s_out = 0.05, 0.9
    s_w = rng.uniform(0.002, 0.01, O)
    bias = rng.integers(-20000, 20000, O).astype(np.int64)
    if big_bias:
        bias[0] = 2**30
    mult, shift = _requant(s_in * s_w / s_out)
    params = dict(weights=w, bias=(bias + (-in_zp) * w2.sum(axis=1)).astype(np.int32), multiplier=mult, shift=shift,
                  input_offset=-in_zp, output_offset=out_zp, act_min=act[0], act_max=act[1], **geo)
    kernel = {"fc": "fc_s8", "conv": "conv_s8", "dw": "dwconv_s8"}[kind]
    op = {"fc": "FULLY_CONNECTED", "conv": "CONV_2D", "dw": "DEPTHWISE_CONV_2D"}[kind]
    bufs = {0: Buffer(0, "x", in_shape, "int8", s_in, in_zp), 1: Buffer(1, "y", out_shape, "int8", s_out, out_zp)}
    plan = Plan(f"rand_{kind}", bufs, [Step(0, op, kernel, [0], [1], params, macs)], [0], [1])
    return plan, x


def reference(step: Step, x: np.ndarray) -> np.ndarray:
    """The contract of plan_pass's docstring, tap by tap in Python integers."""
    p = step.params
    fam, kind = step.kernel.split("_")[:2]
    O, K, N = int(p["out_channels"]), int(p["depth"]), int(p["group"])
    zp = -int(p["input_offset"])
    if kind == "p2":
        v = pack.unpack_int4(p["codes"], O, K).astype(int)[None]
        P = active = 1
        scales = np.asarray(p["scales"]).astype(int).reshape(1, O, -1)
    else:
        P = int(p.get("planes", 1))
        active = int(p.get("active_planes", P))
        v = pack.unpack_2bit(p["codes"], P * O, K).reshape(P, O, K).astype(int)
        scales = np.asarray(p["scales"]).astype(int).reshape(P, O, -1)
    e = np.asarray(p.get("plane_shift", np.zeros((P, O), int))).astype(int)
    bias = np.asarray(p["bias"]).astype(int)
    bias = bias[active - 1] if bias.ndim == 2 else bias
    offset = np.asarray(p["offset"]).astype(int) if kind == "to" else None

    def taps(sample: np.ndarray, oy: int, ox: int, o: int) -> list[int]:
        """x_i for i = 0..K-1 of output o at (oy, ox), padded taps = zp."""
        if fam == "fc":
            return [int(t) for t in sample.reshape(-1)]
        kh, kw = p["kernel_hw"]
        (sh, sw), (dh, dw), (pt, pl) = p["stride"], p["dilation"], p["pad"]
        H, W, C = sample.shape
        chans = range(C) if fam == "conv" else [o // int(p["depth_multiplier"])]
        res = []
        for ky in range(kh):
            for kx in range(kw):
                iy, ix = oy * sh - pt + ky * dh, ox * sw - pl + kx * dw
                for c in chans:
                    res.append(int(sample[iy, ix, c]) if 0 <= iy < H and 0 <= ix < W else zp)
        return res

    def acc_of(xs: list[int], o: int) -> int:
        acc = int(bias[o])
        for pl_ in range(active):
            part = 0
            for g in range(0, K, N):
                inner = 0
                for i in range(g, min(g + N, K)):
                    c = int(v[pl_, o, i])
                    if c == 0:
                        continue
                    if kind == "p2":
                        inner += int(np.sign(c)) * (xs[i] << (int(p["levels"]) - abs(c)))
                    else:
                        inner += c * xs[i]
                part += int(scales[pl_, o, g // N]) * inner
            acc += part << int(e[pl_, o])
        if offset is not None:
            acc += int(offset[o]) * sum(xs)
        assert abs(acc) <= INT32_MAX
        return acc

    n = x.shape[0]
    if fam == "fc":
        accs = np.array([[acc_of(taps(x[s], 0, 0, o), o) for o in range(O)] for s in range(n)])
    else:
        oh, ow = p["out_hw"]
        accs = np.array([[[[acc_of(taps(x[s], oy, ox, o), o) for o in range(O)] for ox in range(ow)]
                          for oy in range(oh)] for s in range(n)])
    q = multiply_by_quantized_multiplier(accs, np.asarray(p["multiplier"], np.int64),
                                         np.asarray(p["shift"], np.int64)) + int(p["output_offset"])
    return np.clip(q, p["act_min"], p["act_max"]).astype(np.int8)


SPECS = ["fgq:group=8", "fgq:group=16,planes=2", "trn:group=7,planes=3", "twn", "hefan:group=8",
         "tga:group=16", "pow2:levels=3,group=8", "pow2:levels=2", "offset", "offset:group=8",
         "fgq:group=8,planes=2,scale_bits=12"]


@pytest.mark.parametrize("kind", ["fc", "conv", "dw"])
@pytest.mark.parametrize("spec", SPECS)
def test_contract_matches_reference(kind: str, spec: str) -> None:
    rng = np.random.default_rng(hash((kind, spec)) % 2**32)
    geo = {} if kind == "fc" else dict(stride=(2, 1), dilation=(1, 2), pad=(1, 2), H=7, W=8)
    plan, x = make_plan(kind, rng, **geo)
    cfg = TernaryConfig(first_last="ternary", depthwise="ternary", layers={"0": spec}, switchable=True)
    new, rep = ternarize_plan(plan, cfg, [x])
    st = new.steps[0]
    fam = {"fc": "fc", "conv": "conv", "dw": "dwconv"}[kind]
    assert st.kernel.startswith(fam + "_") and st.kernel in TK.TERNARY_KERNELS
    got = emulate.run(new, [x])[0]
    assert np.array_equal(got.reshape(reference(st, x).shape), reference(st, x))
    # every allowed plane count of a switchable step obeys the same contract
    for k in range(1, int(st.params.get("planes", 1))):
        sub = set_active_planes(new, k)
        assert np.array_equal(emulate.run(sub, [x])[0].reshape(got.shape),
                              reference(sub.steps[0], x).reshape(got.shape))
    # params: packed codes of the stated format, integer dtypes, accumulator bound
    p = st.params
    assert p["codes"].dtype == np.uint8 and p["codes"].ndim == 1
    assert p["format"] in ("2bit", "int4")
    assert p["bias"].dtype == np.int32 and p["multiplier"].dtype == np.int32
    W, off = TK.decode_weights(p, st.kernel.split("_")[1])
    worst_bias = np.abs(np.asarray(p["bias"], np.int64)).reshape(-1, W.shape[0]).max(axis=0)
    assert TK.accumulator_bound(W, worst_bias, off) <= INT32_MAX


@pytest.mark.parametrize("kind", ["fc", "conv", "dw"])
def test_float_meaning(kind: str) -> None:
    """Dequantized, the ternary step approximates the int8 step's real-valued accumulator:
    s_in * s_w[o] * c_o * acc_ternary ~ s_in * s_w[o] * acc_int8 (before requantization)."""
    rng = np.random.default_rng(5)
    plan, x = make_plan(kind, rng, in_zp=0, out_zp=0)
    L = mac_layers(plan)[0]
    fit = fit_layer(L.w, parse_spec("trn:group=8,planes=3"))
    deq = fit.dequantize()
    rel = np.linalg.norm(deq - L.w) / np.linalg.norm(L.w)
    assert rel < 0.1
    st = build_step(L, fit)
    W, _ = TK.decode_weights(st.params, "t2")
    np.testing.assert_allclose(fit.c[:, None] * W, deq)
    # the new requantization multiplier is the old real multiplier times c_o
    real_new = st.params["multiplier"] * np.ldexp(1.0, st.params["shift"].astype(int) - 31)
    np.testing.assert_allclose(real_new, L.real_mult * fit.c, rtol=1e-8)


def test_accumulator_bound_coarsens() -> None:
    """A bias near the int32 limit forces a coarser common scale; the contract still holds."""
    rng = np.random.default_rng(1)
    plan, x = make_plan("fc", rng, big_bias=True)
    new, _ = ternarize_plan(plan, TernaryConfig(first_last="ternary", layers={"0": "trn:group=8,planes=3"}), [x])
    st = new.steps[0]
    W, _ = TK.decode_weights(st.params, "t2")
    assert TK.accumulator_bound(W, st.params["bias"]) <= INT32_MAX
    assert np.array_equal(emulate.run(new, [x])[0], reference(st, x))


def test_power_of_two_common_scale_keeps_multiplier() -> None:
    """When c_o is a power of two the original multiplier is kept and only the shift moves."""
    rng = np.random.default_rng(2)
    plan, x = make_plan("fc", rng)
    L = mac_layers(plan)[0]
    fit = fit_layer(L.w, parse_spec("fgq:group=8"))
    e = np.arange(L.out_channels) % 4
    fit.c = np.ldexp(1.0, -e)
    st = build_step(L, fit)
    assert np.array_equal(st.params["multiplier"], L.step.params["multiplier"])
    assert np.array_equal(st.params["shift"], L.step.params["shift"] - e)


# ----------------------------------------------------------------------------- already ternary
@pytest.mark.parametrize("kind", ["fc", "conv"])
def test_already_ternary_is_lossless(kind: str) -> None:
    rng = np.random.default_rng(3)
    plan, x = make_plan(kind, rng, K=64, C=8)
    st0 = plan.steps[0]
    w = np.asarray(st0.params["weights"])
    O = w.shape[0]
    mags = rng.integers(1, 128, O)
    t = rng.integers(-1, 2, w.shape)
    wt = (t * mags.reshape((O,) + (1,) * (w.ndim - 1))).astype(np.int8)
    w2 = wt.reshape(O, -1).astype(np.int64)
    bias_q = rng.integers(-5000, 5000, O)
    st0.params.update(weights=wt, bias=(bias_q + st0.params["input_offset"] * w2.sum(axis=1)).astype(np.int32))
    new, rep = ternarize_plan(plan, TernaryConfig(first_last="ternary"), [x])
    st = new.steps[0]
    assert st.kernel.endswith("_t2_s8") and st.params["method"] == "lossless"
    assert rep.layers[0].reason.startswith("already ternary")
    assert np.array_equal(pack.unpack_2bit(st.params["codes"], O, w2.shape[1]), np.sign(w2))
    assert np.array_equal(st.params["multiplier"], st0.params["multiplier"])
    assert np.array_equal(emulate.run(new, [x])[0], emulate.run(plan, [x])[0])  # bit for bit
    assert quant_bytes(st) < quant_bytes(st0)
    # forcing int8 by an override keeps the int8 step
    new2, _ = ternarize_plan(plan, TernaryConfig(layers={"0": "int8"}), [x])
    assert new2.steps[0] is st0


# --------------------------------------------------------------------------------- real model
@pytest.fixture(scope="module")
def ad():
    from shared_data import int8_cases
    from ternembed.lower import lower
    from ternembed.tflite import read
    case = [c for c in int8_cases() if c.name == "ad01_int8"][0]
    return lower(read(case.model)), case.inputs[0]


def test_planes_are_switchable_prefixes_and_error_falls(ad) -> None:
    plan, x = ad
    calib = [x[::2]]
    cfg = TernaryConfig(method="trn", group=64, planes=3, switchable=True)
    full, rep3 = ternarize_plan(plan, cfg, calib)
    errs = []
    for k in (1, 2, 3):
        sub = set_active_planes(full, k)
        alone, _ = ternarize_plan(plan, TernaryConfig(method="trn", group=64, planes=k, switchable=True), calib)
        for a, b in zip(sub.steps, alone.steps):
            if b.kernel.endswith("_t2_s8"):  # the k-plane fit is the prefix of the 3-plane fit
                K, O = int(b.params["depth"]), int(b.params["out_channels"])
                rb = pack.row_bytes("2bit", K)
                assert np.array_equal(a.params["codes"][:k * O * rb], b.params["codes"])
                assert np.array_equal(a.params["scales"][:k], b.params["scales"].reshape(k, O, -1))
                # same real weights; only the integer unit differs (c_o of 3 planes vs of k planes)
                Wa, _ = TK.decode_weights(a.params, "t2")
                Wb, _ = TK.decode_weights(b.params, "t2")
                ra = a.params["multiplier"] * np.ldexp(1.0, a.params["shift"].astype(int))
                rbm = b.params["multiplier"] * np.ldexp(1.0, b.params["shift"].astype(int))
                np.testing.assert_allclose(Wa * ra[:, None], Wb * rbm[:, None], rtol=1e-12)
        y_sub, y_alone = emulate.run(sub, [x])[0], emulate.run(alone, [x])[0]
        d = np.abs(y_sub.astype(int) - y_alone)
        # bias and requantization round in different units: +-1 LSB per layer, propagated
        assert d.max() <= 3 and d.mean() < 0.1
        y8 = emulate.run(plan, [x])[0].astype(float)
        errs.append(np.linalg.norm(y_sub - y8) / np.linalg.norm(y8 - plan.buffers[plan.outputs[0]].zero_point))
    assert errs[0] > errs[1] > errs[2]
    # per-layer weight error falls with planes too
    for L in mac_layers(plan)[1:-1]:
        e = [np.linalg.norm(fit_layer(L.w, parse_spec(f"trn:group=64,planes={k}")).dequantize() - L.w)
             for k in (1, 2, 3)]
        assert e[0] > e[1] > e[2]
    with pytest.raises(ValueError):
        set_active_planes(ternarize_plan(plan, TernaryConfig(method="trn", group=64), calib)[0], 1)


@pytest.mark.parametrize("budget", [2.5, 3.0, 4.0])
def test_budget_placement_meets_bits(ad, budget: float) -> None:
    plan, x = ad
    new, rep = ternarize_plan(plan, TernaryConfig(method="fgq", group=64, budget_bits=budget), [x[::3]])
    assert rep.bits_per_weight <= budget + 1e-9
    assert rep.budget["met"]
    assert rep.sensitivity and rep.placement_trace
    assert rep.weight_bytes == new.weight_bytes < plan.weight_bytes
    # a larger budget never has a larger predicted loss (greedy from the same start)
    d = rep.to_dict()
    assert d["layers"][0]["op_index"] == 0 and "table" not in d
    assert "bits/w" in rep.table()


def test_flash_and_agreement_budgets(ad) -> None:
    plan, x = ad
    cap = plan.weight_bytes // 3
    new, rep = ternarize_plan(plan, TernaryConfig(method="fgq", group=64, max_flash=cap), [x[::3]])
    assert new.weight_bytes <= cap and rep.budget["met"]
    new, rep = ternarize_plan(plan, TernaryConfig(method="fgq", group=64, min_agreement=0.9995), [x[::3]])
    assert rep.agreement["cosine"] >= 0.9995
    assert new.weight_bytes < plan.weight_bytes


def test_deterministic(ad) -> None:
    plan, x = ad
    cfg = TernaryConfig(method="fgq", group=32, budget_bits=3.0)
    a, ra = ternarize_plan(plan, cfg, [x[::4]])
    b, rb = ternarize_plan(plan, cfg, [x[::4]])
    for s, t in zip(a.steps, b.steps):
        assert s.kernel == t.kernel and s.params.keys() == t.params.keys()
        for k in s.params:
            assert np.array_equal(np.asarray(s.params[k]), np.asarray(t.params[k]))
    assert np.array_equal(emulate.run(a, [x])[0], emulate.run(b, [x])[0])
    assert ra.to_dict() == rb.to_dict()


def test_methods_on_real_model_without_calibration(ad) -> None:
    plan, x = ad
    for method in ("twn", "exact", "fgq", "trn", "hefan", "tga", "pow2", "offset"):
        new, rep = ternarize_plan(plan, TernaryConfig(method=method, group=32))
        assert rep.agreement is None
        kinds = {s.kernel for s in new.steps}
        assert kinds & set(TK.TERNARY_KERNELS)
        y = emulate.run(new, [x])[0]
        assert y.dtype == np.int8 and y.shape == (len(x), 640)
        assert rep.layers[0].method == "int8" and rep.layers[-1].method == "int8"  # first/last default


# --------------------------------------------------------------------------------- config
def test_spec_parsing() -> None:
    assert parse_spec("int8").is_int8
    s = parse_spec("trn:group=32")
    assert (s.method, s.group, s.planes) == ("trn", 32, 2)
    assert parse_spec("twn").group is None
    assert parse_spec("fgq:group=channel").group is None
    assert parse_spec({"method": "pow2", "levels": 3}).levels == 3
    for bad in ("nope", "fgq:group", "fgq:colour=3", "pow2:planes=2", "fgq:planes=0"):
        with pytest.raises(InputError):
            parse_spec(bad)


def test_toml_config_and_overrides(tmp_path, ad) -> None:
    plan, x = ad
    f = tmp_path / "t.toml"
    f.write_text('method = "fgq"\ngroup = 16\nmax_flash = "100k"\n'
                 '[layers]\n3 = "int8"\n"dense_6/BiasAdd" = "trn:group=64,planes=3"\n')
    cfg = load_config(f)
    assert cfg.group == 16 and cfg.max_flash == 100 * 1024 and cfg.budgeted
    cfg = cfg.with_overrides(max_flash=None)
    new, rep = ternarize_plan(plan, cfg)
    by_op = {L.op_index: L for L in rep.layers}
    assert by_op[3].method == "int8" and by_op[3].reason.startswith("override")
    assert by_op[6].method == "trn/N64x3"  # substring of op 6's output name
    assert by_op[2].method == "fgq/N16"
    # the exact name of op 5's output picks op 5 only, not op 6 that reads it
    name5 = next(plan.buffers[s.outputs[0]].name for s in plan.steps if s.op_index == 5)
    one = {L.op_index: L for L in ternarize_plan(plan, TernaryConfig(layers={name5: "int8"}))[1].layers}
    assert one[5].method == "int8" and one[6].method != "int8"
    with pytest.raises(InputError):
        ternarize_plan(plan, TernaryConfig(layers={"no_such_layer": "int8"}))
    with pytest.raises(InputError):
        config_from_dict({"methdo": "fgq"})
    with pytest.raises(InputError):
        ternarize_plan(plan, TernaryConfig(budget_bits=3.0))  # a budget needs calibration data


# ------------------------------------------------------------------- calibration-aware options
def test_feedback_fit_lowers_output_error(ad) -> None:
    """Error-feedback refits on calibration statistics beat plain weight-L2 fits in e^T C e."""
    from ternembed.emulate import run
    from ternembed.quantize import calibfit as CF
    plan, x = ad
    vals = run(plan, [x[::2]], keep_all=True)
    for L in mac_layers(plan)[1:4]:
        st = CF.layer_stats(L, vals[L.step.inputs[0]])
        for spec in ("fgq:group=64", "trn:group=64,planes=2", "pow2:levels=3,group=32", "offset:group=64"):
            plain = fit_layer(L.w, parse_spec(spec))
            fb = CF.refit(L.w, plain, st)
            assert fb.kind == plain.kind and np.array_equal(fb.c, plain.c) and fb.group == plain.group
            assert CF.output_error(L.w, fb.dequantize(), st) <= CF.output_error(L.w, plain.dequantize(), st)
        fb = CF.refit(L.w, fit_layer(L.w, parse_spec("fgq:group=64")), st)
        assert CF.output_error(L.w, fb.dequantize(), st) < 0.9 * CF.output_error(
            L.w, fit_layer(L.w, parse_spec("fgq:group=64")).dequantize(), st)


def make_chain(rng: np.random.Generator) -> tuple[Plan, np.ndarray]:
    """conv -> depthwise -> FC, each step as lower() builds it (zero points, padding, stride)."""
    p1, x = make_plan("conv", rng, O=6, C=4, H=6, W=5, stride=(2, 1), pad=(1, 1))
    oh, ow = p1.buffers[1].shape[1:3]
    p2, _ = make_plan("dw", rng, C=6, M=1, H=oh, W=ow, in_zp=p1.buffers[1].zero_point, out_zp=3)
    K = int(np.prod(p2.buffers[1].shape[1:]))
    p3, _ = make_plan("fc", rng, O=5, K=K, in_zp=3, out_zp=-1)
    bufs = {0: p1.buffers[0], 1: p1.buffers[1],
            2: Buffer(2, "z", p2.buffers[1].shape, "int8", p2.buffers[1].scale, 3),
            3: Buffer(3, "out", (1, 5), "int8", 0.9, -1)}
    bufs[1].scale = p2.buffers[0].scale
    s1, s2, s3 = p1.steps[0], p2.steps[0], p3.steps[0]
    steps = [Step(0, s1.op_type, s1.kernel, [0], [1], s1.params, s1.macs),
             Step(1, s2.op_type, s2.kernel, [1], [2], s2.params, s2.macs),
             Step(2, s3.op_type, s3.kernel, [2], [3], s3.params, s3.macs)]
    return Plan("chain", bufs, steps, [0], [3]), x


@pytest.mark.parametrize("bc", ["off", "layer", "sequential"])
def test_calibration_options_keep_the_contract(bc: str) -> None:
    """Feedback fits, bias correction and the sequential pass change constants, not the contract."""
    rng = np.random.default_rng(11)
    plan, x = make_chain(rng)
    y8 = emulate.run(plan, [x], keep_all=True)
    cfg = TernaryConfig(first_last="ternary", depthwise="ternary", bias_correction=bc, fit="feedback",
                        layers={"0": "trn:group=8,planes=2", "2": "fgq:group=16"})
    new, rep = ternarize_plan(plan, cfg, [x])
    vals = emulate.run(new, [x], keep_all=True)
    for st in new.steps:
        assert st.kernel in TK.TERNARY_KERNELS
        got = vals[st.outputs[0]]
        assert np.array_equal(got.reshape(-1), reference(st, vals[st.inputs[0]].reshape(
            (len(x),) + tuple(new.buffers[st.inputs[0]].shape[1:]))).reshape(-1))
    assert all(L.output_error is not None for L in rep.layers)
    assert y8[3].shape == vals[3].shape


def test_sequential_bias_correction_on_real_model(ad) -> None:
    plan, x = ad
    a, ra = ternarize_plan(plan, TernaryConfig(method="fgq", bias_correction="layer"), [x[::2]])
    b, rb = ternarize_plan(plan, TernaryConfig(method="fgq", bias_correction="sequential"), [x[::2]])
    c, rc = ternarize_plan(plan, TernaryConfig(method="fgq", bias_correction=False), [x[::2]])
    assert a.steps[1].params["bias"].tolist() == b.steps[1].params["bias"].tolist()  # first ternary layer
    assert a.steps[2].params["bias"].tolist() != b.steps[2].params["bias"].tolist()  # later ones move
    assert rc.agreement["nmse"] > ra.agreement["nmse"]  # bias correction matters on AD


def test_layer_proxy_sensitivity_and_classifier_metrics() -> None:
    from shared_data import int8_cases
    from ternembed.lower import lower
    from ternembed.tflite import read
    case = [c for c in int8_cases() if c.name == "sww_int8"][0]
    plan = lower(read(case.model))
    x = case.inputs[0]
    for sens in ("model", "layer"):
        new, rep = ternarize_plan(plan, TernaryConfig(budget_bits=3.0, sensitivity=sens, depthwise="place"), [x])
        assert rep.task == "classify" and 0 <= rep.agreement["top1_agreement"] <= 1
        assert rep.bits_per_weight <= 3.0 and rep.budget["met"]
        assert any(L.op_type == "DEPTHWISE_CONV_2D" for L in rep.layers)
    new, rep = ternarize_plan(plan, TernaryConfig(min_agreement=0.97), [x])
    assert rep.agreement["top1_agreement"] >= 0.97


def test_report_says_when_calibration_outputs_cannot_tell() -> None:
    """Blank calibration inputs make every model 'agree': the report says the figure means nothing,
    and explains every figure it prints; real digits raise no warning."""
    from pathlib import Path
    from ternembed.pipeline import build_plan
    digits = Path(__file__).resolve().parent.parent / "examples" / "digits"
    plan, _ = build_plan(digits / "digits_int8.tflite")
    cfg = TernaryConfig(method="fgq", group=16)
    _, blank = ternarize_plan(plan, cfg, [np.full((20, 64), -128, np.int8)])
    assert "nearly) constant over the 20 calibration input(s)" in blank.table()
    assert blank.agreement["uninformative"]
    _, real = ternarize_plan(plan, cfg, [np.load(digits / "digits_test.npz")["x_int8"][:100]])
    text = real.table()
    assert "warning" not in text and "uninformative" not in real.agreement
    for figure in ("cosine: 1 =", "nmse: squared error", "top-1 agreement: share"):
        assert figure in text
