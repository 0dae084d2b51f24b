# SPDX-License-Identifier: Apache-2.0
"""Calibration-aware fitting: choose ternary codes with error feedback (GPTQ/OBQ style).

Weight-L2 fits treat every weight alike. With calibration inputs the quantity that matters is the
layer's output error ``e^T C e`` per output row (e = w - w_hat, C the covariance of the layer's
input patches; the mean part of the error, e . mu, is removed afterwards by the bias correction
of :mod:`ternembed.quantize.plan_pass`). The columns of the reduction are quantized one at a time in
order; after each column its error is pushed onto the not-yet-quantized columns along the
directions that the inverse covariance says compensate it best (the optimal-brain-surgeon update
that GPTQ (Frantar et al. 2022) popularised). With ``U`` the upper Cholesky factor of
``(C + damp*mean(diag C)*I)^-1``::

    for i in 0..K-1:
        at a group start: choose the group's levels from the current (updated) weights
        q_i   = nearest level to w_i                     (per output row)
        err   = (w_i - q_i) / U[i, i]
        w_j  -= err * U[i, j]      for j > i

Levels of a group (the method decides the scales, the code of a weight is its nearest level):
t2 with P planes ``{sum_p s_p a_p t_p}`` (3^P combinations; the a_p from a greedy residual fit
of the current block with the method's solver, rounded to the integer grid s_p of the plain fit);
p2 ``{0, +-s a 2^-k}``; to ``beta + s a {-1, 0, 1}`` (beta from the plain fit). With
``sequential=True`` the planes are fitted one after another (each plane its own pass over the
residual), which keeps every prefix of planes the best fit with that many planes (switchable
planes); otherwise all planes are chosen jointly, which is more accurate.

The result is a :class:`~ternembed.quantize.plan_pass.LayerFit` on the same integer grid as the
plain fit (same c_o, plane shifts, group size), so the step building, integer contract and
accumulator checks are unchanged.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from .fit_core import _SOLVERS
from .pow2 import _pow2_rows
from .policy import SOLVER_OF

__all__ = ["LayerStats", "layer_stats", "refit", "output_error", "MIN_ROWS"]

#: Fewer calibration patches than this and there is no covariance: the pass keeps the plain fit.
#: (With fewer rows than K the damped covariance is low-rank plus a ridge: the feedback then
#: compensates errors along the calibration directions only, and may fit those inputs closely.)
MIN_ROWS = 2


@dataclass
class LayerStats:
    """Calibration statistics of one MAC layer's input patches (x - zp).

    ``mean`` [K] (FC/conv) or [O, K] (depthwise); ``U`` [K, K] or [O, K, K]: upper Cholesky factor
    of the damped inverse covariance; ``cov`` the covariance itself (for error reports).
    """

    mean: np.ndarray
    cov: np.ndarray | None
    U: np.ndarray | None
    rows: int


def _upper_inv_chol(C: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor of (C + damp*mean(diag)*I)^-1 (batched over leading axes)."""
    K = C.shape[-1]
    d = np.diagonal(C, axis1=-2, axis2=-1)
    lam = damp * np.maximum(d.mean(axis=-1), 1e-12)
    H = C + lam[..., None, None] * np.eye(K)
    Hinv = np.linalg.inv(H)
    Hinv = 0.5 * (Hinv + np.swapaxes(Hinv, -1, -2))
    L = np.linalg.cholesky(Hinv)
    return np.swapaxes(L, -1, -2)


def layer_stats(layer, x: np.ndarray, max_rows: int = 16384, damp: float = 0.01, seed: int = 0,
                with_cov: bool = True) -> LayerStats:
    """Mean and covariance of the layer's input patches on calibration inputs ``x`` (int8, batch first).

    At most ``max_rows`` patches are used (an evenly spread, seeded choice), so big convolutions
    stay cheap; the mean uses all patches. ``with_cov=False`` (or fewer than MIN_ROWS patches)
    gives the mean only (for the bias correction).
    """
    from ..kernels.ternary import _patches
    p = layer.step.params
    zp = -int(p.get("input_offset", 0))
    K = layer.depth
    rng = np.random.default_rng(seed)
    if layer.family == "fc":
        cols = x.reshape(-1, K)
    else:
        ws = np.asarray(p["weights"]).shape
        pt = _patches(x, ws[1], ws[2], p["stride"], p["dilation"], p["pad"], p["out_hw"], zp)
        if layer.family == "conv":
            cols = pt.reshape(-1, K)
        else:
            cols = pt.reshape(-1, ws[1] * ws[2], x.shape[3])  # [rows, taps, C]
    n = cols.shape[0]
    mean_all = cols.astype(np.float64).mean(axis=0) - zp if n else np.zeros(cols.shape[1:])
    if not with_cov or n < MIN_ROWS:
        mean = mean_all if layer.family != "dwconv" else np.repeat(mean_all.T, int(p["depth_multiplier"]), axis=0)
        return LayerStats(mean, None, None, n)
    if n > max_rows:
        idx = np.sort(rng.choice(n, max_rows, replace=False))
        cols = cols[idx]
    c = cols.astype(np.float64) - zp
    c = c - c.mean(axis=0)
    if layer.family == "dwconv":
        M = int(p["depth_multiplier"])
        cov = np.einsum("rtc,rsc->cts", c, c) / max(len(c), 1)  # [C, T, T]
        U = _upper_inv_chol(cov, damp)
        mean = np.repeat(mean_all.T, M, axis=0)  # [C*M, T]
        return LayerStats(mean, np.repeat(cov, M, axis=0), np.repeat(U, M, axis=0), n)
    cov = c.T @ c / max(len(c), 1)
    return LayerStats(mean_all, cov, _upper_inv_chol(cov, damp), n)


def output_error(w: np.ndarray, w_hat: np.ndarray, stats: LayerStats) -> float:
    """sqrt(sum_o e_o^T C e_o / sum_o w_o^T C w_o): relative output error without the mean part."""
    E = np.asarray(w, np.float64) - w_hat
    Wf = np.asarray(w, np.float64)
    if stats.cov.ndim == 3:
        num = np.einsum("ok,okl,ol->", E, stats.cov, E)
        den = np.einsum("ok,okl,ol->", Wf, stats.cov, Wf)
    else:
        num = np.einsum("ok,kl,ol->", E, stats.cov, E)
        den = np.einsum("ok,kl,ol->", Wf, stats.cov, Wf)
    return float(np.sqrt(num / den)) if den > 0 else 0.0


def _greedy_alphas(block: np.ndarray, planes: int, solver: str) -> np.ndarray:
    """Float group scales [O, planes] of a greedy residual fit of block [O, n]."""
    resid = block.copy()
    out = []
    for _ in range(planes):
        t, a = _SOLVERS[solver](resid)
        neg = a < 0
        t = np.where(neg[:, None], -t, t)
        a = np.abs(a)
        out.append(a)
        resid = resid - a[:, None] * t
    return np.stack(out, axis=1)


def _to_grid(alpha: np.ndarray, unit: np.ndarray, M: int) -> np.ndarray:
    """Integer scales a = clip(round(alpha / unit), 0, M) (unit [O] or [O, P])."""
    safe = np.where(unit > 0, unit, 1.0)
    return np.where(unit > 0, np.clip(np.rint(alpha / safe), 0, M), 0).astype(np.int64)


def _run(W: np.ndarray, U: np.ndarray, group: int, choose) -> None:
    """The column loop. ``choose(i, w_col, start)`` -> quantized column q [O] (and records codes)."""
    O, K = W.shape
    per_row = U.ndim == 3
    for i in range(K):
        q = choose(i, W[:, i], i % group == 0)
        if per_row:
            d = U[:, i, i]
            err = (W[:, i] - q) / np.where(d != 0, d, 1.0)
            if i + 1 < K:
                W[:, i + 1:] -= err[:, None] * U[:, i, i + 1:]
        else:
            d = U[i, i]
            err = (W[:, i] - q) / (d if d != 0 else 1.0)
            if i + 1 < K:
                W[:, i + 1:] -= np.outer(err, U[i, i + 1:])
        W[:, i] = q


def _refit_t2_joint(w: np.ndarray, fit, stats: LayerStats, solver: str):
    O, K = w.shape
    P, g = fit.planes, fit.group
    M = 2**fit.scale_bits - 1
    units = fit.c[:, None] * np.ldexp(1.0, fit.plane_shift.T.astype(np.int64))  # [O, P]: s_p
    combos = np.array(list(itertools.product((-1, 0, 1), repeat=P)), np.int64)  # [V, P]
    codes = np.zeros((P, O, K), np.int8)
    scales = np.zeros((P, O, -(-K // g)), np.int64)
    W = w.astype(np.float64).copy()
    state = {}

    def choose(i, col, start):
        if start:
            gi = i // g
            a = _to_grid(_greedy_alphas(W[:, i:i + g], P, solver), units, M)  # [O, P]
            scales[:, :, gi] = a.T
            state["vals"] = (units * a) @ combos.T  # [O, V]
        vals = state["vals"]
        j = np.argmin(np.abs(col[:, None] - vals), axis=1)
        codes[:, :, i] = combos[j].T
        return vals[np.arange(O), j]

    _run(W, stats.U, g, choose)
    return replace(fit, codes=codes, scales=scales)


def _refit_t2_sequential(w: np.ndarray, fit, stats: LayerStats, solver: str):
    O, K = w.shape
    planes = []
    scales = []
    resid = w.astype(np.float64)
    for p in range(fit.planes):
        one = replace(fit, codes=fit.codes[p:p + 1], scales=fit.scales[p:p + 1],
                      plane_shift=np.zeros((1, O), np.int64), c=fit.c * np.ldexp(1.0, fit.plane_shift[p].astype(np.int64)))
        r = _refit_t2_joint(resid, one, stats, solver)
        planes.append(r.codes[0])
        scales.append(r.scales[0])
        resid = resid - r.dequantize()
    return replace(fit, codes=np.stack(planes), scales=np.stack(scales))


def _refit_p2(w: np.ndarray, fit, stats: LayerStats):
    O, K = w.shape
    g, L = fit.group, fit.levels
    M = 2**fit.scale_bits - 1
    unit = fit.c * 2.0 ** (L - 1)  # s_o
    vcodes = np.arange(-L, L + 1, dtype=np.int64)  # nibble values
    mag = np.where(vcodes != 0, np.ldexp(1.0, -(np.abs(vcodes) - 1)), 0.0) * np.sign(vcodes)  # [V]
    codes = np.zeros((1, O, K), np.int8)
    scales = np.zeros((1, O, -(-K // g)), np.int64)
    W = w.astype(np.float64).copy()
    state = {}

    def choose(i, col, start):
        if start:
            blk = np.abs(W[:, i:i + g])
            _, _, alpha = _pow2_rows(blk, L, None)
            a = _to_grid(alpha, unit, M)
            scales[0, :, i // g] = a
            state["vals"] = (unit * a)[:, None] * mag[None, :]
        vals = state["vals"]
        j = np.argmin(np.abs(col[:, None] - vals), axis=1)
        codes[0, :, i] = vcodes[j]
        return vals[np.arange(O), j]

    _run(W, stats.U, g, choose)
    return replace(fit, codes=codes, scales=scales)


def _refit_offset(w: np.ndarray, fit, stats: LayerStats, solver: str):
    O, K = w.shape
    g = fit.group
    M = 2**fit.scale_bits - 1
    beta = fit.c * fit.offset  # float offset per row (int8 units), kept from the plain fit
    codes = np.zeros((1, O, K), np.int8)
    scales = np.zeros((1, O, -(-K // g)), np.int64)
    W = w.astype(np.float64).copy()
    tvals = np.array([-1, 0, 1], np.int64)
    state = {}

    def choose(i, col, start):
        if start:
            a_f = _greedy_alphas(W[:, i:i + g] - beta[:, None], 1, solver)[:, 0]
            a = _to_grid(a_f, fit.c, M)
            scales[0, :, i // g] = a
            state["vals"] = beta[:, None] + (fit.c * a)[:, None] * tvals[None, :]
        vals = state["vals"]
        j = np.argmin(np.abs(col[:, None] - vals), axis=1)
        codes[0, :, i] = tvals[j]
        return vals[np.arange(O), j]

    _run(W, stats.U, g, choose)
    return replace(fit, codes=codes, scales=scales)


def refit(w: np.ndarray, fit, stats: LayerStats, sequential: bool = False):
    """Error-feedback refit of a plain LayerFit (same kind, grid and group) on calibration stats.

    Keeps whichever of the two (plain, refit) has the lower output error ``e^T C e``; lossless
    fits are returned unchanged.
    """
    if fit.lossless:
        return fit
    solver = SOLVER_OF.get(fit.spec.method, "exact")
    if fit.kind == "p2":
        new = _refit_p2(w, fit, stats)
    elif fit.kind == "to":
        new = _refit_offset(w, fit, stats, solver)
    elif sequential or fit.planes > 4:
        new = _refit_t2_sequential(w, fit, stats, solver)
    else:
        new = _refit_t2_joint(w, fit, stats, solver)
    if sequential or output_error(w, new.dequantize(), stats) <= output_error(w, fit.dequantize(), stats):
        return new  # sequential planes: always the refit, so every prefix is the refit with that many planes
    return fit
