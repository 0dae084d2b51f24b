# SPDX-License-Identifier: Apache-2.0
"""Ternary quantizers of ternembed.quantize: optimality, monotonicity, integer contract, storage."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ternembed.quantize import ternary as T


def gaussian(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def laplacian(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).laplace(size=shape)


# ------------------------------------------------------------------------------- exact fit
def brute_force(v: np.ndarray) -> float:
    """min over all t in {-1,0,1}^n and alpha of ||v - alpha t||^2 (alpha LS for each t)."""
    n = v.size
    ts = np.array(list(itertools.product((-1, 0, 1), repeat=n)), dtype=np.float64)
    nnz = (ts != 0).sum(axis=1)
    proj = ts @ v
    # ||v||^2 - (t.v)^2 / nnz is the error at the LS alpha; t = 0 leaves ||v||^2
    gain = np.where(nnz > 0, proj**2 / np.maximum(nnz, 1), 0.0)
    return float(v @ v - gain.max())


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 10])
def test_exact_fit_equals_brute_force(n: int) -> None:
    rng = np.random.default_rng(n)
    for trial in range(6 if n < 10 else 2):
        v = rng.standard_normal(n) * rng.uniform(0.1, 10)
        if trial == 1:
            v[: n // 2] = 0.0  # exact zeros
        if trial == 2 and n > 1:
            v[1] = -v[0]  # ties in |v|
        fit = T.exact_fit(v)
        assert set(np.unique(fit.t)).issubset({-1, 0, 1})
        assert fit.t.dtype == np.int8
        assert fit.error(v) == pytest.approx(brute_force(v), rel=1e-9, abs=1e-12)


def test_exact_fit_beats_heuristics() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        v = rng.standard_normal(50)
        e = T.exact_fit(v).error(v)
        assert e <= T.twn(v).error(v) + 1e-12
        assert e <= T.hefan(v).error(v) + 1e-12
        assert e <= T.tga(v).error(v) + 1e-12
        assert e <= T.tga(v, ls_alpha=True).error(v) + 1e-12


def test_heuristic_definitions() -> None:
    v = np.array([0.1, -0.5, 1.0, -2.0, 0.05, 0.0])
    a = np.abs(v)
    f = T.twn(v)
    keep = a > 0.7 * a.mean()
    np.testing.assert_array_equal(f.t, np.sign(v) * keep)
    assert f.alpha == pytest.approx(a[keep].mean())
    f = T.hefan(v, delta=0.05)
    keep = (a >= 0.05 * a.max()) & (a > 0)
    np.testing.assert_array_equal(f.t, np.sign(v) * keep)
    assert f.alpha == pytest.approx(a[keep].mean())


def test_tga_formula() -> None:
    v = gaussian((1, 4000), seed=9)[0] + 0.3
    mu, sig = v.mean(), v.std()
    f = T.tga(v, th_sigma=0.6)
    expect_t = (v > mu + 0.6 * sig).astype(int) - (v < mu - 0.6 * sig).astype(int)
    np.testing.assert_array_equal(f.t, expect_t)
    phi = math.exp(-0.18) / math.sqrt(2 * math.pi)
    Phi = 0.5 * (1 + math.erf(0.6 / math.sqrt(2)))
    assert f.alpha == pytest.approx(mu + sig * phi / (1 - Phi))
    assert T.normal_cdf(0.0) == pytest.approx(0.5)
    assert T.tga_alpha_factor(0.0) == pytest.approx(math.sqrt(2 / math.pi))
    # for a zero-mean Gaussian, the TGA alpha is close to the LS alpha on the same support
    g = gaussian((1, 20000), seed=10)[0]
    assert T.tga(g).alpha == pytest.approx(T.tga(g, ls_alpha=True).alpha, rel=0.03)


def test_degenerate_inputs() -> None:
    z = np.zeros(7)
    for fn in (T.exact_fit, T.twn, T.hefan, T.tga):
        f = fn(z)
        assert not f.t.any() and f.alpha == 0.0
    q = T.ternarize(np.zeros((3, 10)), group=4)
    assert not q.dequantize().any()
    q = T.ternarize(np.ones((2, 1)), group=4)
    np.testing.assert_allclose(q.dequantize(), np.ones((2, 1)))


# ------------------------------------------------------------------------------------- FGQ
@pytest.mark.parametrize("dist", [gaussian, laplacian])
@pytest.mark.parametrize("method", ["exact", "twn"])
def test_fgq_error_falls_as_groups_shrink(dist, method: str) -> None:
    w = dist((64, 640), seed=1)
    errs = [T.relative_error(w, T.ternarize(w, method=method, group=N).dequantize()) for N in (64, 32, 16, 8, 4)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs


@pytest.mark.parametrize("K,N", [(10, 4), (640, 64), (7, 16), (33, 8), (1, 4), (100, 32)])
def test_fgq_structure(K: int, N: int) -> None:
    w = gaussian((5, K), seed=K)
    q = T.ternarize(w, group=N)
    G = -(-K // N)
    assert q.codes.shape == (5, K) and q.codes.dtype == np.int8
    assert set(np.unique(q.codes)).issubset({-1, 0, 1})
    assert q.a.shape == (5, G) and q.a.dtype == np.uint8
    assert q.s.shape == (5,) and q.s.dtype == np.float64
    assert q.n_groups == G and q.group == min(N, K)
    # per group, the float exact fit is the optimum; the integer form adds only a little
    for o in range(5):
        for g in range(G):
            sl = slice(g * q.group, min((g + 1) * q.group, K))
            f = T.exact_fit(w[o, sl])
            np.testing.assert_array_equal(q.codes[o, sl], f.t)
            assert abs(q.alpha[o, g] - f.alpha) <= q.s[o] * (1 + 1e-9)  # within one integer step


def test_group_none_is_per_row() -> None:
    w = gaussian((4, 50), seed=2)
    q = T.ternarize(w, group=None)
    assert q.group == 50 and q.a.shape == (4, 1)
    for o in range(4):
        f = T.exact_fit(w[o])
        np.testing.assert_array_equal(q.codes[o], f.t)
        assert q.alpha[o, 0] == pytest.approx(f.alpha, rel=1e-12)


def test_integer_scales() -> None:
    rng = np.random.default_rng(4)
    alpha = rng.uniform(0, 1, size=(6, 20))
    alpha[0, :] = 0.0
    alpha[1, 3] = 0.0
    wt = rng.integers(0, 5, size=alpha.shape).astype(float)
    for bits in (4, 8, 12):
        a, s = T.integer_scales(alpha, wt, bits=bits, refit=False)
        a2, s2 = T.integer_scales(alpha, wt, bits=bits, refit=True)
        assert a.max() <= 2**bits - 1 and a2.max() <= 2**bits - 1
        assert a.dtype == (np.uint8 if bits <= 8 else np.uint16)
        e1 = (wt * (alpha - s[:, None] * a) ** 2).sum()
        e2 = (wt * (alpha - s2[:, None] * a2) ** 2).sum()
        assert e2 <= e1 + 1e-15
        assert s[0] == 0.0 and not a[0].any()
        # plain rounding: within half a step of alpha
        assert np.all(np.abs(alpha - s[:, None] * a) <= s[:, None] / 2 + 1e-12)
    with pytest.raises(ValueError):
        T.integer_scales(-alpha)


def test_negative_scales_flip_codes() -> None:
    # TGA alpha = mu + sigma*lambda is negative for a strongly negative-mean group: the integer
    # form keeps a_g unsigned by negating that group's codes, and still represents alpha * t
    w = -5.0 + 0.1 * gaussian((3, 64), seed=8)
    q = T.ternarize(w, method="tga", group=16, bits=16)
    assert q.a.dtype == np.uint16
    ref = np.concatenate(
        [np.concatenate([T.tga(w[o, g : g + 16]).dequantize() for g in range(0, 64, 16)])[None] for o in range(3)]
    )
    assert np.all([T.tga(w[0, :16]).alpha < 0])
    np.testing.assert_allclose(q.dequantize(), ref, rtol=1e-4)


# ---------------------------------------------------------------------------- residual planes
@pytest.mark.parametrize("group", [None, 16, 4])
@pytest.mark.parametrize("dist", [gaussian, laplacian])
def test_residual_planes_error_falls(group, dist) -> None:
    w = dist((32, 256), seed=6)
    rp = T.residual_planes(w, planes=4, group=group)
    assert rp.n_planes == 4
    errs = [T.relative_error(w, rp.dequantize(k)) for k in range(0, 5)]
    assert errs[0] == pytest.approx(1.0)
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    # the first plane is exactly the one-plane FGQ result
    np.testing.assert_array_equal(rp.planes[0].codes, T.ternarize(w, group=group).codes)
    np.testing.assert_allclose(rp.dequantize(), sum(p.dequantize() for p in rp.planes))


def test_residual_planes_per_plane_groups() -> None:
    w = gaussian((8, 100), seed=7)
    rp = T.residual_planes(w, planes=2, group=[None, 8])
    assert rp.planes[0].group == 100 and rp.planes[1].group == 8
    with pytest.raises(ValueError):
        T.residual_planes(w, planes=3, group=[4, 4])


# -------------------------------------------------------------------------- residual expansion
@pytest.mark.parametrize("deltas", [(0.05, 0.1), (0.05, 0.1, 0.15, 0.2)])
@pytest.mark.parametrize("group", [None, 16])
@pytest.mark.parametrize("dist", [gaussian, laplacian])
def test_expansion_refit_never_worse(deltas, group, dist) -> None:
    w = dist((32, 200), seed=11)

    def float_err(refit: bool) -> float:
        codes, beta, g = T.expansion_scales(w, deltas, group=group, refit=refit)
        gid = T.group_ids(w.shape[1], g)
        w_hat = sum(codes[p] * beta[p][:, gid] for p in range(len(deltas)))
        return T.relative_error(w, w_hat)

    e_no, e_ls = float_err(False), float_err(True)
    assert e_ls <= e_no + 1e-12
    q_no = T.residual_expansion(w, deltas, group=group, refit=False)
    q_ls = T.residual_expansion(w, deltas, group=group, refit=True)
    assert q_ls.n_planes == len(deltas) and q_ls.kind == "expansion"
    # the integer form stays close to the float one
    assert T.relative_error(w, q_ls.dequantize()) == pytest.approx(e_ls, abs=2e-3)
    assert T.relative_error(w, q_ls.dequantize()) <= T.relative_error(w, q_no.dequantize()) + 2e-3


def test_expansion_first_plane_is_hefan() -> None:
    w = gaussian((1, 300), seed=12)
    codes, beta, _ = T.expansion_scales(w, (0.05, 0.1), refit=False)
    f = T.hefan(w[0], delta=0.05)
    np.testing.assert_array_equal(codes[0, 0], f.t)
    assert beta[0, 0, 0] == pytest.approx(f.alpha)


# ---------------------------------------------------------------------------------------- pow2
@pytest.mark.parametrize("group", [None, 16])
@pytest.mark.parametrize("dist", [gaussian, laplacian])
def test_pow2_error_falls_with_levels(group, dist) -> None:
    w = dist((32, 192), seed=13)
    choices = T.choose_levels(w, group=group, max_levels=4)
    errs = [c.error for c in choices]
    assert [c.levels for c in choices] == [1, 2, 3, 4]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    # L=1 is ternary with the exact fit
    np.testing.assert_array_equal(choices[0].result.codes, T.ternarize(w, group=group).codes)
    q = choices[2].result
    assert q.level.max() <= 2 and not q.level[q.codes == 0].any()
    # magnitudes are exactly alpha * 2^-k
    gid = T.group_ids(w.shape[1], q.group)
    mag = np.abs(q.dequantize()) / np.where(q.codes != 0, q.alpha[:, gid], 1.0)
    assert np.allclose(mag[q.codes != 0], np.ldexp(1.0, -q.level[q.codes != 0].astype(int)))
    assert choices[1].bits_per_weight > choices[0].bits_per_weight


def test_choose_levels_with_calibration() -> None:
    w = gaussian((16, 64), seed=14)
    x = gaussian((40, 64), seed=15)
    ch = T.choose_levels(w, group=8, max_levels=3, x_calib=x)
    for c in ch:
        assert c.error == pytest.approx(T.relative_error(x @ w.T, x @ c.result.dequantize().T))


def test_pow2_int_dot_and_nibbles() -> None:
    rng = np.random.default_rng(16)
    w = gaussian((6, 37), seed=16)
    q = T.pow2_quantize(w, levels=3, group=8)
    x = rng.integers(-128, 128, size=37)
    acc = q.int_dot(x)
    ref = (q.dequantize() / (q.s[:, None] * 2.0 ** -(q.levels - 1))) @ x
    np.testing.assert_allclose(acc, ref, rtol=1e-9)
    nib = q.nibbles()
    np.testing.assert_array_equal(np.sign(nib), q.codes)
    np.testing.assert_array_equal(np.where(q.codes != 0, np.abs(nib) - 1, 0), q.level)


# ----------------------------------------------------------------------------------------- RTN
@pytest.mark.parametrize("dist", [gaussian, laplacian])
def test_scale_offset_no_worse_than_symmetric(dist) -> None:
    w = dist((24, 128), seed=17) + np.linspace(-0.8, 0.8, 24)[:, None]
    r = T.scale_offset(w)
    sym = T.ternarize(w, group=None, bits=16)  # near-float symmetric per-channel fit
    sym_rows = np.stack([T.exact_fit(w[o]).dequantize() for o in range(24)])
    e_rtn = ((w - r.dequantize()) ** 2).sum(axis=1)
    e_sym = ((w - sym_rows) ** 2).sum(axis=1)
    assert np.all(e_rtn <= e_sym + 1e-9)
    assert T.relative_error(w, r.dequantize()) < T.relative_error(w, sym.dequantize())
    assert np.all(r.gamma >= 0)
    # with zero-mean rows the offset buys little, but never hurts
    w0 = dist((8, 128), seed=18)
    r0 = T.scale_offset(w0)
    assert T.relative_error(w0, r0.dequantize()) <= T.relative_error(w0, T.ternarize(w0, bits=16).dequantize()) + 1e-6


def test_scale_offset_recovers_exact_model() -> None:
    rng = np.random.default_rng(19)
    t = rng.integers(-1, 2, size=(5, 40))
    t[:, :3] = [-1, 0, 1]  # every row uses all three codes
    g = rng.uniform(0.5, 2, size=5)
    b = rng.uniform(-1, 1, size=5)
    w = g[:, None] * t + b[:, None]
    r = T.scale_offset(w)
    np.testing.assert_allclose(r.dequantize(), w, atol=1e-9)


# ------------------------------------------------------------------------------ detect ternary
def test_detect_ternary() -> None:
    rng = np.random.default_rng(20)
    t = rng.integers(-1, 2, size=(6, 30))
    mags = rng.uniform(0.01, 3, size=6)
    w = (t * mags[:, None]).astype(np.float32)
    assert T.detect_ternary(w)
    q = T.lossless_ternary(w)
    assert q is not None
    np.testing.assert_allclose(q.dequantize(), w, rtol=1e-6)
    np.testing.assert_array_equal(q.codes, t)
    # int8 TFLite-style weights, {-127, 0, 127} per channel
    assert T.detect_ternary((t * 127).astype(np.int8))
    # all-zero rows are ternary; one row with only {0, +a} too
    w2 = w.copy()
    w2[0] = 0
    w2[1] = np.abs(w2[1])
    assert T.detect_ternary(w2)
    # not ternary: a fourth value, asymmetric magnitudes, Gaussian weights
    w3 = w.copy()
    w3[2, 0] = mags[2] * 0.5
    assert not T.detect_ternary(w3)
    w4 = np.array([[-1.0, 0.0, 2.0]])
    assert not T.detect_ternary(w4)
    assert T.lossless_ternary(w4) is None
    assert not T.detect_ternary(gaussian((4, 16)))
    # float tolerance
    w5 = w * (1 + 1e-7 * rng.standard_normal(w.shape))
    assert T.detect_ternary(w5)


# ----------------------------------------------------------------------------------- int_dot
@pytest.mark.parametrize("K,N", [(640, 4), (37, 8), (64, 64), (5, 16), (100, None)])
def test_int_dot_exact(K: int, N) -> None:
    rng = np.random.default_rng(K)
    w = gaussian((9, K), seed=K)
    q = T.ternarize(w, group=N)
    x = rng.integers(-128, 128, size=K).astype(np.int8)
    acc = T.int_dot(q.codes, q.a, q.group, x)
    assert acc.dtype == np.int64 and acc.shape == (9,)
    # integer weights a_g * t_i are exact in float64, so this float dot is exact
    gid = T.group_ids(K, q.group)
    w_int = q.codes.astype(np.float64) * q.a.astype(np.float64)[:, gid]
    np.testing.assert_array_equal(acc, (w_int @ x.astype(np.float64)).astype(np.int64))
    # and it is the dequantized dot divided by s_o
    np.testing.assert_allclose(acc, (q.dequantize() @ x) / q.s, rtol=1e-9)
    # batched form, and the zero-point constant
    xb = rng.integers(0, 256, size=(3, K))
    np.testing.assert_array_equal(q.int_dot(xb), np.stack([q.int_dot(r) for r in xb]))
    z = 17
    np.testing.assert_array_equal(q.int_dot(xb[0] - z), q.int_dot(xb[0]) - z * T.code_sums(q.codes, q.a, q.group))


def test_int_dot_rejects_float_input() -> None:
    q = T.ternarize(gaussian((2, 8)), group=4)
    with pytest.raises(ValueError):
        T.int_dot(q.codes, q.a, q.group, np.ones(8))


# ------------------------------------------------------------------------------ storage bits
def test_bits_per_weight_matches_methods() -> None:
    w = gaussian((16, 640), seed=21)
    table = {4: 4.0, 8: 3.0, 16: 2.5, 64: 2.125}
    for N, expect in table.items():
        q = T.ternarize(w, group=N)
        assert T.bits_per_weight(q, row_overhead=False) == pytest.approx(expect)
        assert T.bits_per_weight(q) == pytest.approx(expect + 32 / 640)
    # base-3 codes
    assert T.bits_per_weight(T.ternarize(w, group=16), code_bits=1.6, row_overhead=False) == pytest.approx(2.1)
    # K not a multiple of N: the shorter last group still costs one a_g
    q = T.ternarize(gaussian((2, 10)), group=4)
    assert T.bits_per_weight(q, row_overhead=False) == pytest.approx(2 + 3 * 8 / 10)
    # residual planes add up; RTN: 2 bits + two floats per row
    rp = T.residual_planes(w, planes=2, group=16)
    assert T.bits_per_weight(rp, row_overhead=False) == pytest.approx(5.0)
    assert T.bits_per_weight(T.scale_offset(w)) == pytest.approx(2 + 64 / 640)
    assert T.bits_per_weight(T.pow2_quantize(w, levels=2, group=16), row_overhead=False) == pytest.approx(4.5)
