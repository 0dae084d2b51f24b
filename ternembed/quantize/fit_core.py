# SPDX-License-Identifier: Apache-2.0
"""Ternary fits of one group of weights: the 1-D solvers (exact, TWN, He-Fan, TGA), the
group helpers and the integer scale form alpha_g = s_o * a_g. Pure numpy; see ternary.py."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def normal_pdf(x: float) -> float:
    """Standard normal density phi(x) (scipy is not a dependency)."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def normal_cdf(x: float) -> float:
    """Standard normal CDF Phi(x) via math.erf."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def tga_alpha_factor(a: float) -> float:
    """phi(a) / (1 - Phi(a)): mean of a standard normal truncated to (a, inf).

    Uses erfc for the tail so large ``a`` does not lose precision to 1 - Phi(a) cancellation.
    """
    tail = 0.5 * math.erfc(a / math.sqrt(2.0))
    if tail <= 0.0:  # a is so large the tail underflows; the truncated mean tends to a
        return a
    return normal_pdf(a) / tail


def _as_2d(w: np.ndarray) -> np.ndarray:
    """Weights as float64 [out, K]; a 1-D vector is one output row."""
    arr = np.asarray(w, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"weights must be [out, K] (got shape {arr.shape}); reshape conv weights first")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"weights must be non-empty (got shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError("weights contain NaN or inf")
    return arr


def _group_size(K: int, group: int | None) -> int:
    """Effective group size: None means one group per output row."""
    if group is None:
        return K
    g = int(group)
    if g <= 0:
        raise ValueError(f"group size must be positive (got {group})")
    return min(g, K)


def n_groups(K: int, group: int) -> int:
    """Number of groups along K; the last group is shorter when group does not divide K."""
    return -(-K // group)


def group_ids(K: int, group: int) -> np.ndarray:
    """Group index of every position 0..K-1 (groups of ``group`` consecutive values)."""
    return np.arange(K) // group


def _group_sum(x: np.ndarray, group: int) -> np.ndarray:
    """Sum over consecutive groups of the last axis (last group may be shorter)."""
    K = x.shape[-1]
    starts = np.arange(0, K, group)
    return np.add.reduceat(x, starts, axis=-1)


def _map_groups(
    w: np.ndarray,
    group: int,
    fn: Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, dict[str, np.ndarray]]],
    aux: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Apply a batched row solver to every group of every output row.

    ``fn(V, aux_rows)`` gets a 2-D block ``V [m, n]`` (one group per row) and the matching rows of
    the optional per-group array ``aux [out, G]`` (else None); it returns ``(codes [m, n],
    {name: per-row array [m]})``. Full groups are solved in one batch and the shorter tail
    group in another, so no solver ever sees padding (padding would bias TWN/TGA statistics).
    Returns codes ``[out, K]`` and per-group arrays ``[out, G]``.
    """
    out, K = w.shape
    gf = K // group
    code_parts: list[np.ndarray] = []
    extra_parts: dict[str, list[np.ndarray]] = {}
    if gf:
        full = w[:, : gf * group].reshape(out * gf, group)
        c, ex = fn(full, None if aux is None else aux[:, :gf].reshape(-1))
        code_parts.append(c.reshape(out, gf * group))
        for k, v in ex.items():
            extra_parts.setdefault(k, []).append(np.asarray(v).reshape(out, gf))
    if gf * group < K:
        tail = w[:, gf * group :]
        c, ex = fn(tail, None if aux is None else aux[:, gf])
        code_parts.append(c.reshape(out, K - gf * group))
        for k, v in ex.items():
            extra_parts.setdefault(k, []).append(np.asarray(v).reshape(out, 1))
    codes = np.concatenate(code_parts, axis=1)
    extras = {k: np.concatenate(v, axis=1) for k, v in extra_parts.items()}
    return codes, extras


def relative_error(w: np.ndarray, w_hat: np.ndarray) -> float:
    """||w - w_hat||_2 / ||w||_2 over the whole tensor (0 for an all-zero w reproduced exactly)."""
    w = np.asarray(w, dtype=np.float64)
    num = float(np.linalg.norm(w - np.asarray(w_hat, dtype=np.float64)))
    den = float(np.linalg.norm(w))
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


# --------------------------------------------------------------------------------------------
# batched 1-group solvers: V [m, n] -> codes int8 [m, n], alpha float [m]
# --------------------------------------------------------------------------------------------
def _exact_rows(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimiser of ||v - alpha t||^2 per row.

    For a support of size k the best choice is the k largest |v| with their signs and
    alpha = S_k / k (S_k = sum of the k largest |v|), leaving error ||v||^2 - S_k^2 / k.
    So k* = argmax_k S_k^2 / k. O(n log n) per row.
    """
    m, n = V.shape
    a = np.abs(V)
    order = np.argsort(-a, axis=1, kind="stable")
    sa = np.take_along_axis(a, order, axis=1)
    S = np.cumsum(sa, axis=1)
    k = np.arange(1, n + 1, dtype=np.float64)
    kstar = np.argmax(S * S / k, axis=1) + 1
    alpha = S[np.arange(m), kstar - 1] / kstar
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), (m, n)), axis=1)
    keep = rank < kstar[:, None]
    t = (np.sign(V) * keep).astype(np.int8)
    return t, alpha


def _twn_rows(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TWN: threshold 0.7 * mean|v|, alpha = mean |v| over the kept set."""
    a = np.abs(V)
    delta = 0.7 * a.mean(axis=1, keepdims=True)
    keep = (a > delta) & (a > 0)
    cnt = keep.sum(axis=1)
    alpha = np.where(cnt > 0, (a * keep).sum(axis=1) / np.maximum(cnt, 1), 0.0)
    return (np.sign(V) * keep).astype(np.int8), alpha


def _hefan_rows(V: np.ndarray, delta: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """He-Fan statistical scaling: threshold delta * max|v|, alpha = mean |v| over |v| >= threshold."""
    a = np.abs(V)
    thr = float(delta) * a.max(axis=1, keepdims=True)
    keep = (a >= thr) & (a > 0)
    cnt = keep.sum(axis=1)
    alpha = np.where(cnt > 0, (a * keep).sum(axis=1) / np.maximum(cnt, 1), 0.0)
    return (np.sign(V) * keep).astype(np.int8), alpha


def _tga_rows(V: np.ndarray, th_sigma: float = 0.6, ls_alpha: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Truncated-Gaussian approximation (He & Fan, CVPR'19), post-training with a fixed threshold.

    mu, sigma = mean and std of v; th = th_sigma * sigma; t = +1 if v > mu + th, -1 if v < mu - th.
    alpha = mu + sigma * phi(a) / (1 - Phi(a)), a = th / sigma = th_sigma, i.e. the mean of the
    Gaussian's upper tail beyond mu + th, as docs/methods.md states it. With ``ls_alpha=True`` alpha is
    instead the least-squares scale for the chosen support, sum(t*v) / nnz(t).
    """
    mu = V.mean(axis=1, keepdims=True)
    sig = V.std(axis=1, keepdims=True)
    th = float(th_sigma) * sig
    t = (V > mu + th).astype(np.int8) - (V < mu - th).astype(np.int8)
    cnt = np.abs(t).sum(axis=1)
    if ls_alpha:
        alpha = np.where(cnt > 0, (t * V).sum(axis=1) / np.maximum(cnt, 1), 0.0)
    else:
        lam = tga_alpha_factor(float(th_sigma))
        alpha = np.where(cnt > 0, mu[:, 0] + sig[:, 0] * lam, 0.0)
    return t, alpha


_SOLVERS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "exact": _exact_rows,
    "twn": _twn_rows,
    "hefan": _hefan_rows,
    "tga": _tga_rows,
}
#: Names accepted by ``method=`` in :func:`ternarize` and :func:`residual_planes`.
METHODS = tuple(_SOLVERS)


def _solver(method: str, kw: dict) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    if method not in _SOLVERS:
        raise ValueError(f"unknown ternary method {method!r}; choose one of {', '.join(METHODS)}")
    fn = _SOLVERS[method]
    return lambda V: fn(V, **kw)


# --------------------------------------------------------------------------------------------
# 1-D API
# --------------------------------------------------------------------------------------------
@dataclass
class TernaryFit:
    """One vector ternarized: v ~ alpha * t.

    Fields: ``t`` int8 [n] in {-1, 0, 1}; ``alpha`` float scale; ``method`` name.
    """

    t: np.ndarray
    alpha: float
    method: str = "exact"

    def dequantize(self) -> np.ndarray:
        return self.alpha * self.t.astype(np.float64)

    def error(self, v: np.ndarray) -> float:
        """Squared L2 error ||v - alpha t||^2."""
        d = np.asarray(v, dtype=np.float64) - self.dequantize()
        return float(d @ d)


def _fit_1d(v: np.ndarray, method: str, **kw) -> TernaryFit:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"expected a non-empty 1-D vector (got shape {arr.shape})")
    t, alpha = _SOLVERS[method](arr[None, :], **kw)
    return TernaryFit(t=t[0], alpha=float(alpha[0]), method=method)


def exact_fit(v: np.ndarray) -> TernaryFit:
    """Exact L2-optimal ternary fit of a vector (the default solver; see :func:`_exact_rows`)."""
    return _fit_1d(v, "exact")


def twn(v: np.ndarray) -> TernaryFit:
    """Ternary weight networks (Li & Liu 2016): threshold 0.7*mean|v|, alpha = mean kept |v|."""
    return _fit_1d(v, "twn")


def hefan(v: np.ndarray, delta: float = 0.05) -> TernaryFit:
    """He-Fan statistical scaling: threshold delta*max|v|, alpha = mean |v| over the kept set."""
    return _fit_1d(v, "hefan", delta=delta)


def tga(v: np.ndarray, th_sigma: float = 0.6, ls_alpha: bool = False) -> TernaryFit:
    """Truncated-Gaussian approximation with fixed threshold th = th_sigma*sigma (see _tga_rows).

    0.6 sigma is the L2-optimal threshold for Gaussian weights. ``ls_alpha`` swaps the Gaussian
    formula for the least-squares alpha on the chosen support.
    """
    return _fit_1d(v, "tga", th_sigma=th_sigma, ls_alpha=ls_alpha)


# --------------------------------------------------------------------------------------------
# integer scale form
# --------------------------------------------------------------------------------------------
def _uint_dtype(bits: int) -> type:
    if not 1 <= bits <= 16:
        raise ValueError(f"scale bits must be in 1..16 (got {bits})")
    return np.uint8 if bits <= 8 else np.uint16


def integer_scales(
    alpha: np.ndarray, weight: np.ndarray | None = None, bits: int = 8, refit: bool = True, iters: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Write non-negative group scales ``alpha [out, G]`` as ``s[out] * a[out, G]``.

    ``a`` is an unsigned integer in [0, 2^bits - 1] (0 allowed: that group contributes nothing).
    Start with s_o = max_g alpha_g / (2^bits - 1) and a = round(alpha / s); with ``refit`` then
    alternate a least-squares update of s_o for fixed a and re-rounding of a for fixed s_o,
    keeping the best. The objective is sum_g weight_g * (alpha_g - s_o a_g)^2: with
    weight_g = nnz of the group's codes and alpha_g the group's LS scale, that is exactly the
    extra weight-L2 error the integer form adds. Returns ``(a uint8/uint16 [out, G], s float64 [out])``.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 2:
        raise ValueError("alpha must be [out, G]")
    if np.any(alpha < 0):
        raise ValueError("alpha must be non-negative (flip the group's codes for a negative scale)")
    wt = np.ones_like(alpha) if weight is None else np.asarray(weight, dtype=np.float64)
    M = float(2**bits - 1)
    dt = _uint_dtype(bits)
    amax = alpha.max(axis=1)
    live = amax > 0
    s = np.where(live, amax / M, 0.0)

    def round_a(s_: np.ndarray) -> np.ndarray:
        safe = np.where(s_ > 0, s_, 1.0)[:, None]
        return np.where(s_[:, None] > 0, np.clip(np.rint(alpha / safe), 0, M), 0.0)

    def objective(a_: np.ndarray, s_: np.ndarray) -> np.ndarray:
        return (wt * (alpha - s_[:, None] * a_) ** 2).sum(axis=1)

    a = round_a(s)
    best_a, best_s, best_e = a, s, objective(a, s)
    if refit:
        for _ in range(iters):
            den = (wt * a * a).sum(axis=1)
            num = (wt * alpha * a).sum(axis=1)
            s = np.where(den > 0, num / np.where(den > 0, den, 1.0), s)
            e_s = objective(a, s)  # LS step for s never increases the objective
            better = e_s < best_e
            best_a = np.where(better[:, None], a, best_a)
            best_s = np.where(better, s, best_s)
            best_e = np.minimum(e_s, best_e)
            a = round_a(s)
            e_a = objective(a, s)
            better = e_a < best_e
            best_a = np.where(better[:, None], a, best_a)
            best_s = np.where(better, s, best_s)
            best_e = np.minimum(e_a, best_e)
    return best_a.astype(dt), best_s.astype(np.float64)


def _flip_negative(codes: np.ndarray, alpha: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """Make every group scale non-negative by negating that group's codes (alpha*t is unchanged)."""
    neg = alpha < 0
    if not np.any(neg):
        return codes, alpha
    flip = np.where(neg[:, group_ids(codes.shape[1], group)], -1, 1).astype(np.int8)
    return (codes * flip).astype(np.int8), np.abs(alpha)


def grouped_bits(code_bits: float, shape: tuple[int, int], group: int, bits: int, scale_bits: int,
                 row_overhead: bool) -> float:
    """Bits per weight of codes plus one ``bits``-wide integer scale per group (plus s_o per row)."""
    out, K = shape
    G = n_groups(K, group)
    return (code_bits * out * K + bits * out * G + (scale_bits * out if row_overhead else 0)) / (out * K)


# --------------------------------------------------------------------------------------------
# the integer accumulation contract
# --------------------------------------------------------------------------------------------
def int_dot(codes: np.ndarray, a: np.ndarray, group: int, x_int: np.ndarray) -> np.ndarray:
    """acc_o = sum_g a[o, g] * (sum_{i in g} codes[o, i] * x_int[i]), exactly, in int64.

    This is what the C kernels compute (in int32 on device; the exporter checks the range:
    |acc_o| <= max|x| * sum_i a[o, g(i)] * |codes[o, i]| <= max|x| * (2^bits - 1) * K). The
    float output is s_o * acc_o (times the activation scale). Groups are ``group`` consecutive
    positions along K, the last one shorter when group does not divide K.
    ``x_int`` is [K] -> result [out], or [B, K] -> [B, out]. For asymmetric int8 activations
    x = s_x (q - z), pass q and fold -z * code_sums(codes, a, group) into the bias.
    """
    c = np.asarray(codes, dtype=np.int64)
    if c.ndim != 2:
        raise ValueError("codes must be [out, K]")
    out, K = c.shape
    A = np.asarray(a, dtype=np.int64)
    if A.shape != (out, n_groups(K, group)):
        raise ValueError(f"a must be [out, {n_groups(K, group)}] (got {A.shape})")
    x = np.asarray(x_int)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError("x_int must be an integer array")
    x = x.astype(np.int64)
    single = x.ndim == 1
    x2 = x[None, :] if single else x
    if x2.shape[-1] != K:
        raise ValueError(f"x_int must have last dimension K={K} (got {x2.shape})")
    prod = c[None, :, :] * x2[:, None, :]  # [B, out, K]
    per_group = _group_sum(prod, group)  # [B, out, G]
    acc = (per_group * A[None]).sum(axis=-1)
    return acc[0] if single else acc


def code_sums(codes: np.ndarray, a: np.ndarray, group: int) -> np.ndarray:
    """sum_g a_g * sum_{i in g} t_i per output: the weight-only constant of the zero-point fold."""
    K = np.asarray(codes).shape[1]
    return int_dot(codes, a, group, np.ones(K, dtype=np.int64))


def int_dot_pow2(
    codes: np.ndarray, level: np.ndarray, a: np.ndarray, group: int, levels: int, x_int: np.ndarray
) -> np.ndarray:
    """Pow2 contract: acc_o = sum_g a_g * sum_{i in g} t_i * (x_i << (levels-1-k_i)), int64.

    Float output = s_o * 2^-(levels-1) * acc_o: the shift replaces the multiply by 2^-k.
    """
    shift = (int(levels) - 1) - np.asarray(level, dtype=np.int64)
    if np.any(shift < 0):
        raise ValueError("level index must be < levels")
    eff = np.asarray(codes, dtype=np.int64) << shift  # t * 2^(L-1-k): same as shifting x
    return int_dot(eff, a, group, x_int)
