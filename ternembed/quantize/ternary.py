"""Post-training ternary weight quantizers (pure numpy).

Every function here works on ONE layer's weights ``w`` of shape ``[out, K]``: ``K`` is the
reduction length in TFLite order (FC ``[out, in]``; conv ``[out, kh, kw, in]`` flattened, so
input channels are innermost). The caller reshapes. Integer arrays (e.g. TFLite int8 weights,
symmetric per output channel) are accepted and treated as floats: a per-channel scale does not
change which ternary codes are chosen inside that channel.

The methods are described in ``docs/METHODS.md`` (shared docs). Summary of what lives here:

* 1-D solvers: :func:`exact_fit`, :func:`twn`, :func:`hefan`, :func:`tga`.
* FGQ group ternarization with the integer scale form ``alpha_g = s_o * a_g``: :func:`ternarize`.
* TRN residual planes: :func:`residual_planes`; He-Fan residual expansion: :func:`residual_expansion`.
* Power-of-two levels (GTC post-training analogue): :func:`pow2_quantize`, :func:`choose_levels`.
* Scale + offset (RTN-style): :func:`scale_offset`.
* Already-ternary models: :func:`detect_ternary`, :func:`lossless_ternary`.
* Storage accounting: :func:`bits_per_weight`.
* The integer accumulation contract the C kernels implement: :func:`int_dot`, :func:`int_dot_pow2`.

Why the integer scale form: with ``alpha_g = s_o * a_g`` (float ``s_o`` per output row, small
unsigned integer ``a_g`` per group) the whole dot product of one output is an exact integer,
``acc_o = sum_g a_g * sum_{i in g} t_i * x_i``, and the single float factor ``s_o`` (times the
activation scale) is folded into the per-channel requantization multiplier.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = [
    "TernaryFit",
    "TernaryWeights",
    "ResidualPlanes",
    "Pow2Weights",
    "LevelChoice",
    "OffsetTernaryWeights",
    "METHODS",
    "exact_fit",
    "twn",
    "hefan",
    "tga",
    "normal_pdf",
    "normal_cdf",
    "tga_alpha_factor",
    "ternarize",
    "integer_scales",
    "residual_planes",
    "expansion_scales",
    "residual_expansion",
    "pow2_quantize",
    "choose_levels",
    "scale_offset",
    "detect_ternary",
    "lossless_ternary",
    "bits_per_weight",
    "relative_error",
    "group_ids",
    "n_groups",
    "int_dot",
    "int_dot_pow2",
    "code_sums",
]

#: Group sizes METHODS.md names for FGQ (any positive int is accepted).
FGQ_GROUPS = (4, 8, 16, 32, 64)


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
    Gaussian's upper tail beyond mu + th, as METHODS.md states it. With ``ls_alpha=True`` alpha is
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


# --------------------------------------------------------------------------------------------
# FGQ
# --------------------------------------------------------------------------------------------
@dataclass
class TernaryWeights:
    """One layer's ternary weights in the integer scale form.

    w[o, i] ~ s[o] * a[o, g(i)] * codes[o, i], with g(i) = i // group.

    Fields:
      codes  int8 [out, K] in {-1, 0, 1}
      group  int, effective group size along K (K itself when quantized with group=None);
             n_groups = ceil(K / group), the last group is shorter when group does not divide K
      a      uint8 (bits <= 8) or uint16 [out, n_groups], unsigned integer group scales
      s      float64 [out], per-output float scale (0 for an all-zero row)
      bits   width of a (a <= 2^bits - 1)
      method solver name, for reports
    """

    codes: np.ndarray
    group: int
    a: np.ndarray
    s: np.ndarray
    bits: int = 8
    method: str = "exact"

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)  # type: ignore[return-value]

    @property
    def n_groups(self) -> int:
        return n_groups(self.codes.shape[1], self.group)

    @property
    def alpha(self) -> np.ndarray:
        """Float group scales s_o * a_g, [out, n_groups]."""
        return self.s[:, None] * self.a.astype(np.float64)

    def dequantize(self) -> np.ndarray:
        """Float weights [out, K] the integer form represents."""
        gid = group_ids(self.codes.shape[1], self.group)
        return self.codes.astype(np.float64) * self.alpha[:, gid]

    def int_dot(self, x_int: np.ndarray) -> np.ndarray:
        """Integer accumulators for integer inputs (see :func:`int_dot`)."""
        return int_dot(self.codes, self.a, self.group, x_int)


def _fit_groups(
    w: np.ndarray, group: int, method: str, kw: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes [out, K], non-negative float alpha [out, G], nnz [out, G] for every group."""
    solve = _solver(method, kw)

    def fn(V: np.ndarray, _aux: np.ndarray | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        t, alpha = solve(V)
        return t, {"alpha": alpha}

    codes, ex = _map_groups(w, group, fn)
    codes, alpha = _flip_negative(codes, ex["alpha"], group)
    nnz = _group_sum(np.abs(codes).astype(np.float64), group)
    return codes, alpha, nnz


def ternarize(
    w: np.ndarray,
    method: str = "exact",
    group: int | None = None,
    bits: int = 8,
    refit_scale: bool = True,
    **method_kw,
) -> TernaryWeights:
    """FGQ: ternarize each group of ``group`` consecutive values along K with its own scale.

    ``method`` is one of "exact" (default, L2-optimal per group), "twn", "hefan" (kw ``delta``),
    "tga" (kw ``th_sigma``, ``ls_alpha``). ``group=None`` gives one group per output row (the
    per-channel, TWN-like layout). The float group scales are then put in the integer form
    alpha_g ~ s_o * a_g (:func:`integer_scales`), so C kernels accumulate exactly in integers.
    """
    w2 = _as_2d(w)
    g = _group_size(w2.shape[1], group)
    codes, alpha, nnz = _fit_groups(w2, g, method, method_kw)
    a, s = integer_scales(alpha, nnz, bits=bits, refit=refit_scale)
    return TernaryWeights(codes=codes, group=g, a=a, s=s, bits=bits, method=method)


# --------------------------------------------------------------------------------------------
# TRN residual planes and He-Fan residual expansion
# --------------------------------------------------------------------------------------------
@dataclass
class ResidualPlanes:
    """A sum of ternary planes, w ~ sum_r planes[r].dequantize().

    Fields: ``planes`` list[TernaryWeights], most important first (plane 1 fits w, plane r fits
    what planes 1..r-1 left), each with its own codes, group size and integer scales; ``kind``
    "residual" (TRN) or "expansion" (He-Fan nested thresholds). A prefix of the planes is itself a
    valid, coarser model, which is what lets firmware switch planes off at run time.
    """

    planes: list[TernaryWeights]
    kind: str = "residual"

    @property
    def n_planes(self) -> int:
        return len(self.planes)

    @property
    def shape(self) -> tuple[int, int]:
        return self.planes[0].shape

    def dequantize(self, n_planes: int | None = None) -> np.ndarray:
        """Float weights using only the first ``n_planes`` planes (all when None)."""
        k = self.n_planes if n_planes is None else int(n_planes)
        if not 0 <= k <= self.n_planes:
            raise ValueError(f"n_planes must be in 0..{self.n_planes} (got {n_planes})")
        out = np.zeros(self.shape, dtype=np.float64)
        for p in self.planes[:k]:
            out += p.dequantize()
        return out


def residual_planes(
    w: np.ndarray,
    planes: int = 2,
    group: int | None | Sequence[int | None] = None,
    method: str = "exact",
    bits: int = 8,
    refit_scale: bool = True,
    **method_kw,
) -> ResidualPlanes:
    """TRN residual edges: plane r ternarizes w - sum_{s<r} dequant(plane s).

    Each plane's residual is taken against the previous planes' *integer-form* values, so the
    later planes also absorb the scale rounding. With the exact solver the error can only fall
    as planes are added. ``group`` may be one size for all planes or a sequence with one entry
    per plane (e.g. coarse groups for plane 1, finer ones for corrections).
    """
    w2 = _as_2d(w)
    if planes < 1:
        raise ValueError("planes must be >= 1")
    if isinstance(group, (list, tuple)):
        if len(group) != planes:
            raise ValueError(f"need one group size per plane ({planes}), got {len(group)}")
        groups = list(group)
    else:
        groups = [group] * planes  # type: ignore[list-item]
    resid = w2.copy()
    out: list[TernaryWeights] = []
    for r in range(planes):
        p = ternarize(resid, method=method, group=groups[r], bits=bits, refit_scale=refit_scale, **method_kw)
        out.append(p)
        resid = resid - p.dequantize()
    return ResidualPlanes(planes=out, kind="residual")


def expansion_scales(
    w: np.ndarray,
    deltas: Sequence[float] = (0.05, 0.1),
    group: int | None = None,
    refit: bool = True,
    threshold_scope: str = "layer",
) -> tuple[np.ndarray, np.ndarray, int]:
    """Float part of the He-Fan residual expansion.

    Plane k: t_k = sign(w) * [|w| >= delta_k * M] with M = max|w| over the layer
    (``threshold_scope="layer"``, as the paper) or over each row ("row"). Thresholds increasing
    -> nested supports, so sum_k beta_k t_k is a multi-level quantizer (sign + level 0..K).

    Scales beta_k per row (group=None) or per group:
      refit=False: greedy statistical scaling, beta_k = mean over plane k's support of what the
                   earlier planes left (beta_1 = He-Fan's alpha);
      refit=True : joint least squares of all K scales for the fixed codes (never worse).
    Returns ``(codes int8 [P, out, K], beta float [P, out, G], group)``; beta may be negative.
    """
    w2 = _as_2d(w)
    out, K = w2.shape
    g = _group_size(K, group)
    ds = [float(d) for d in deltas]
    if not ds or any(d < 0 for d in ds) or any(b < a for a, b in zip(ds, ds[1:])):
        raise ValueError(f"deltas must be non-empty, non-negative and increasing (got {deltas})")
    aw = np.abs(w2)
    if threshold_scope == "layer":
        M = np.full((out, 1), aw.max())
    elif threshold_scope == "row":
        M = aw.max(axis=1, keepdims=True)
    else:
        raise ValueError("threshold_scope must be 'layer' or 'row'")
    sgn = np.sign(w2)
    codes = np.stack([(sgn * ((aw >= d * M) & (aw > 0))).astype(np.int8) for d in ds])
    P = len(ds)
    G = n_groups(K, g)
    Tf = codes.astype(np.float64)
    if refit:
        gram = np.empty((out, G, P, P))
        for p in range(P):
            for q in range(p, P):
                v = _group_sum(Tf[p] * Tf[q], g)
                gram[:, :, p, q] = v
                gram[:, :, q, p] = v
        rhs = np.stack([_group_sum(Tf[p] * w2, g) for p in range(P)], axis=-1)  # [out, G, P]
        beta = np.einsum("ogpq,ogq->ogp", np.linalg.pinv(gram), rhs)
        beta = np.moveaxis(beta, -1, 0)
    else:
        beta = np.zeros((P, out, G))
        resid = w2.copy()
        for p in range(P):
            cnt = _group_sum(np.abs(Tf[p]), g)
            num = _group_sum(Tf[p] * resid, g)
            beta[p] = np.where(cnt > 0, num / np.maximum(cnt, 1), 0.0)
            resid = resid - Tf[p] * beta[p][:, group_ids(K, g)]
    return codes, beta, g


def residual_expansion(
    w: np.ndarray,
    deltas: Sequence[float] = (0.05, 0.1),
    group: int | None = None,
    refit: bool = True,
    bits: int = 8,
    threshold_scope: str = "layer",
) -> ResidualPlanes:
    """He-Fan residual expansion (see :func:`expansion_scales`) in the integer scale form.

    Each plane becomes a :class:`TernaryWeights` (negative scales are turned into flipped codes);
    plane 1 (lowest threshold, largest support) comes first, so prefixes remain usable.
    """
    codes, beta, g = expansion_scales(w, deltas, group=group, refit=refit, threshold_scope=threshold_scope)
    planes: list[TernaryWeights] = []
    for p in range(codes.shape[0]):
        c, alpha = _flip_negative(codes[p], beta[p], g)
        nnz = _group_sum(np.abs(c).astype(np.float64), g)
        a, s = integer_scales(alpha, nnz, bits=bits)
        planes.append(TernaryWeights(codes=c, group=g, a=a, s=s, bits=bits, method="expansion"))
    return ResidualPlanes(planes=planes, kind="expansion")


# --------------------------------------------------------------------------------------------
# power-of-two levels (GTC post-training analogue)
# --------------------------------------------------------------------------------------------
@dataclass
class Pow2Weights:
    """Signed power-of-two weights: w[o,i] ~ s[o] * a[o,g] * codes[o,i] * 2^-level[o,i].

    Fields:
      codes  int8 [out, K] sign in {-1, 0, 1}
      level  uint8 [out, K] exponent index k in 0..levels-1 (0 where codes == 0)
      levels L, number of non-zero magnitudes {alpha, alpha/2, ..., alpha/2^(L-1)}
      group, a, s, bits  as in :class:`TernaryWeights`
    Kernel view: acc = sum_g a_g sum_i t_i (x_i << (L-1-k_i)); float = s_o * 2^-(L-1) * acc.
    ``nibbles()`` gives sign*(k+1), the value stored with pack.pack_int4 for L <= 7.
    """

    codes: np.ndarray
    level: np.ndarray
    levels: int
    group: int
    a: np.ndarray
    s: np.ndarray
    bits: int = 8

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)  # type: ignore[return-value]

    @property
    def alpha(self) -> np.ndarray:
        return self.s[:, None] * self.a.astype(np.float64)

    def dequantize(self) -> np.ndarray:
        gid = group_ids(self.codes.shape[1], self.group)
        mag = np.ldexp(1.0, -self.level.astype(np.int64))
        return self.codes.astype(np.float64) * mag * self.alpha[:, gid]

    def nibbles(self) -> np.ndarray:
        """int8 [out, K] = sign * (level + 1), in [-L, L]: one signed code per weight."""
        return (self.codes.astype(np.int16) * (self.level.astype(np.int16) + 1)).astype(np.int8)

    def int_dot(self, x_int: np.ndarray) -> np.ndarray:
        return int_dot_pow2(self.codes, self.level, self.a, self.group, self.levels, x_int)


def _pow2_assign(A: np.ndarray, alpha: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest level of |v| among {0, alpha*2^-k}: returns (nonzero mask, level index)."""
    mags = np.concatenate([[0.0], np.ldexp(1.0, -np.arange(L))])  # [L+1]
    cand = alpha[:, None, None] * mags[None, None, :]
    j = np.argmin(np.abs(A[:, :, None] - cand), axis=2)
    return j > 0, np.maximum(j - 1, 0)


def _pow2_err(A: np.ndarray, nz: np.ndarray, lev: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    q = np.where(nz, alpha[:, None] * np.ldexp(1.0, -lev), 0.0)
    return ((A - q) ** 2).sum(axis=1)


def _pow2_rows(V: np.ndarray, L: int, alpha0: np.ndarray | None, iters: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit one alpha per row for levels {0, +-alpha 2^-k, k<L}.

    Candidates: a grid of fractions of max|v| plus ``alpha0`` (the L-1 solution, which is
    feasible for L levels, so the error can only fall as L grows); the best candidate per row is
    then polished by Lloyd steps (nearest-level assignment / LS alpha), each non-increasing.
    Returns (nonzero mask, level, alpha).
    """
    A = np.abs(V)
    amax = A.max(axis=1)
    cands = [amax * f for f in np.linspace(0.35, 1.0, 14)]
    if alpha0 is not None:
        cands.append(alpha0)
    best_e = np.full(V.shape[0], np.inf)
    best_alpha = amax.copy()
    for c in cands:
        nz, lev = _pow2_assign(A, c, L)
        e = _pow2_err(A, nz, lev, c)
        better = e < best_e
        best_e = np.where(better, e, best_e)
        best_alpha = np.where(better, c, best_alpha)
    alpha = best_alpha
    nz, lev = _pow2_assign(A, alpha, L)
    for _ in range(iters):
        m = np.where(nz, np.ldexp(1.0, -lev), 0.0)
        den = (m * m).sum(axis=1)
        new_alpha = np.where(den > 0, (A * m).sum(axis=1) / np.where(den > 0, den, 1.0), alpha)
        nz2, lev2 = _pow2_assign(A, new_alpha, L)
        e2 = _pow2_err(A, nz2, lev2, new_alpha)
        better = e2 < best_e
        if not np.any(better):
            break
        alpha = np.where(better, new_alpha, alpha)
        best_e = np.where(better, e2, best_e)
        nz = np.where(better[:, None], nz2, nz)
        lev = np.where(better[:, None], lev2, lev)
    return nz, lev, alpha


def _pow2_path(w2: np.ndarray, g: int, max_levels: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Float pow2 fits for L = 1..max_levels: list of (codes, level, alpha [out, G])."""
    if not 1 <= max_levels <= 7:
        raise ValueError("levels must be in 1..7 (a signed 4-bit code holds sign*(k+1) <= 7)")
    sgn = np.sign(w2).astype(np.int8)

    def exact_fn(V: np.ndarray, _aux: np.ndarray | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        t, alpha = _exact_rows(V)
        return t, {"alpha": alpha}

    # L = 1 is plain ternary: the exact solver is globally optimal there.
    codes1, ex = _map_groups(w2, g, exact_fn)
    path = [(codes1, np.zeros(w2.shape, dtype=np.uint8), ex["alpha"])]
    for L in range(2, max_levels + 1):

        def fn(V: np.ndarray, alpha0: np.ndarray | None, L: int = L) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            nz, lev, alpha = _pow2_rows(V, L, alpha0)
            return np.where(nz, lev + 1, 0), {"alpha": alpha}

        # the L-1 alphas seed the L search (per group), so the error cannot grow with L
        lv1, ex = _map_groups(w2, g, fn, aux=path[-1][2])
        nz = lv1 > 0
        codes = (sgn * nz).astype(np.int8)
        level = np.where(nz, lv1 - 1, 0).astype(np.uint8)
        path.append((codes, level, ex["alpha"]))
    return path


def _pow2_to_int(w2: np.ndarray, g: int, L: int, codes: np.ndarray, level: np.ndarray, alpha: np.ndarray, bits: int) -> Pow2Weights:
    m2 = np.where(codes != 0, np.ldexp(1.0, -2 * level.astype(np.int64)), 0.0)
    wt = _group_sum(m2, g)
    a, s = integer_scales(alpha, wt, bits=bits)
    return Pow2Weights(codes=codes, level=level, levels=L, group=g, a=a, s=s, bits=bits)


def pow2_quantize(w: np.ndarray, levels: int = 2, group: int | None = None, bits: int = 8) -> Pow2Weights:
    """Round each group to the nearest of {0, +-alpha*2^-k, k = 0..levels-1} (GTC, post-training).

    alpha per group is searched (grid + Lloyd) and stored in the integer scale form. A multiply
    by 2^-k becomes a shift in the kernel (see :class:`Pow2Weights`). levels=1 is ternary.
    """
    w2 = _as_2d(w)
    g = _group_size(w2.shape[1], group)
    codes, level, alpha = _pow2_path(w2, g, int(levels))[-1]
    return _pow2_to_int(w2, g, int(levels), codes, level, alpha, bits)


@dataclass
class LevelChoice:
    """One candidate of :func:`choose_levels`: ``levels`` L, ``error`` (relative L2 of the weights,
    or of the layer output on the calibration inputs when given), ``bits_per_weight`` and the
    quantized ``result``."""

    levels: int
    error: float
    bits_per_weight: float
    result: Pow2Weights


def choose_levels(
    w: np.ndarray,
    group: int | None = None,
    max_levels: int = 4,
    bits: int = 8,
    x_calib: np.ndarray | None = None,
) -> list[LevelChoice]:
    """Quantize with L = 1..max_levels and report each one's error, for the caller to pick.

    With ``x_calib [n, K]`` (calibration inputs to this layer) the error is the relative L2 of
    the layer's output x @ w.T, the measure METHODS.md asks to pick by; otherwise the relative
    weight error. The caller trades error against bits (L=1 packs in 2 bits, L>=2 in 4 bits).
    """
    w2 = _as_2d(w)
    g = _group_size(w2.shape[1], group)
    path = _pow2_path(w2, g, int(max_levels))
    res: list[LevelChoice] = []
    for L, (codes, level, alpha) in enumerate(path, start=1):
        q = _pow2_to_int(w2, g, L, codes, level, alpha, bits)
        wq = q.dequantize()
        if x_calib is not None:
            x = np.asarray(x_calib, dtype=np.float64).reshape(-1, w2.shape[1])
            err = relative_error(x @ w2.T, x @ wq.T)
        else:
            err = relative_error(w2, wq)
        res.append(LevelChoice(levels=L, error=err, bits_per_weight=bits_per_weight(q), result=q))
    return res


# --------------------------------------------------------------------------------------------
# RTN-style scale + offset
# --------------------------------------------------------------------------------------------
@dataclass
class OffsetTernaryWeights:
    """w[o, i] ~ gamma[o] * codes[o, i] + beta[o] (per output channel).

    Fields: ``codes`` int8 [out, K]; ``gamma`` float64 [out] (>= 0); ``beta`` float64 [out].
    Kernel view: w.x = gamma_o * (t.x) + beta_o * sum(x); sum(x) is computed once per input
    patch and shared by all outputs, t.x is :func:`int_dot` with a = 1.
    """

    codes: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.codes.shape)  # type: ignore[return-value]

    def dequantize(self) -> np.ndarray:
        return self.gamma[:, None] * self.codes.astype(np.float64) + self.beta[:, None]


def _ls_scale_offset(w2: np.ndarray, T: np.ndarray, g_fallback: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row least squares of w ~ g t + b for fixed t (closed-form 2x2 normal equations)."""
    n = w2.shape[1]
    st = T.sum(axis=1)
    stt = (T * T).sum(axis=1)
    stw = (T * w2).sum(axis=1)
    sw = w2.sum(axis=1)
    det = n * stt - st * st
    ok = det > 1e-12 * np.maximum(n * stt, 1.0)
    safe = np.where(ok, det, 1.0)
    g = np.where(ok, (n * stw - st * sw) / safe, g_fallback)
    b = np.where(ok, (stt * sw - st * stw) / safe, (sw - g_fallback * st) / n)
    return g, b


def scale_offset(w: np.ndarray, iters: int = 5) -> OffsetTernaryWeights:
    """RTN-style post-training fit: w ~ gamma_o * t + beta_o per output channel.

    Alternates (i) exact ternary fit of (w - beta) for (gamma, t) and (ii) least squares of
    (gamma, beta) for fixed t; each step is non-increasing. Two starts are run, beta = mean(w)
    and beta = 0 (the symmetric fit), and the better one per row is kept, so the result is never
    worse than the symmetric per-channel exact fit.
    """
    w2 = _as_2d(w)
    best: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    for b0 in (w2.mean(axis=1), np.zeros(w2.shape[0])):
        b = b0
        for _ in range(max(1, iters)):
            t, g = _exact_rows(w2 - b[:, None])
            T = t.astype(np.float64)
            g, b = _ls_scale_offset(w2, T, g)
            neg = g < 0
            if np.any(neg):
                t = np.where(neg[:, None], -t, t).astype(np.int8)
                g = np.abs(g)
        T = t.astype(np.float64)
        err = ((w2 - g[:, None] * T - b[:, None]) ** 2).sum(axis=1)
        if best is None:
            best = (t, g, b, err)
        else:
            bt, bg, bb, be = best
            m = err < be
            best = (
                np.where(m[:, None], t, bt).astype(np.int8),
                np.where(m, g, bg),
                np.where(m, b, bb),
                np.minimum(err, be),
            )
    assert best is not None
    return OffsetTernaryWeights(codes=best[0], gamma=best[1].astype(np.float64), beta=best[2].astype(np.float64))


# --------------------------------------------------------------------------------------------
# already-ternary weights
# --------------------------------------------------------------------------------------------
def _row_magnitudes(w2: np.ndarray, rtol: float, atol: float) -> np.ndarray | None:
    """Per-row magnitude a if every row is in {-a, 0, +a} (within tolerance), else None."""
    aw = np.abs(w2)
    nz = aw > atol
    cnt = nz.sum(axis=1)
    mag = np.where(cnt > 0, (aw * nz).sum(axis=1) / np.maximum(cnt, 1), 0.0)
    dev = np.abs(aw - mag[:, None])
    ok = np.where(nz, dev <= rtol * mag[:, None] + atol, True)
    return mag if bool(ok.all()) else None


def detect_ternary(w: np.ndarray, rtol: float = 1e-5, atol: float | None = None) -> bool:
    """True if each output row takes at most the values {-a_o, 0, +a_o} (up to float tolerance).

    Such weights (a model trained ternary and exported as float or int8) are represented
    losslessly by :func:`lossless_ternary`. ``atol`` defaults to 1e-9 * max|w|.
    """
    w2 = _as_2d(w)
    if atol is None:
        atol = 1e-9 * float(np.abs(w2).max())
    return _row_magnitudes(w2, rtol, atol) is not None


def lossless_ternary(w: np.ndarray, rtol: float = 1e-5, atol: float | None = None) -> TernaryWeights | None:
    """Codes + exact per-row scales (a = 1, s_o = a_o, one group per row) if w is ternary, else None."""
    w2 = _as_2d(w)
    if atol is None:
        atol = 1e-9 * float(np.abs(w2).max())
    mag = _row_magnitudes(w2, rtol, atol)
    if mag is None:
        return None
    codes = (np.sign(w2) * (np.abs(w2) > atol)).astype(np.int8)
    out, K = w2.shape
    a = (mag > 0).astype(np.uint8)[:, None]
    return TernaryWeights(codes=codes, group=K, a=a, s=mag.astype(np.float64), bits=1, method="lossless")


# --------------------------------------------------------------------------------------------
# storage accounting
# --------------------------------------------------------------------------------------------
def bits_per_weight(
    result: TernaryWeights | ResidualPlanes | Pow2Weights | OffsetTernaryWeights,
    code_bits: float | None = None,
    scale_bits: int = 32,
    row_overhead: bool = True,
) -> float:
    """Stored bits per weight: codes + integer group scales (+ per-output float scales).

    Defaults follow the pack formats: ternary codes 2 bits (pass code_bits=1.6 for base-3),
    pow2 codes 2 bits for L=1 else 4 bits (signed nibble), a_g ``bits`` each, s_o ``scale_bits``
    per output row (RTN: gamma and beta, 2 * scale_bits). ``row_overhead=False`` leaves out the
    per-row terms, giving METHODS.md's figures (N=4 -> 4.0, 8 -> 3.0, 16 -> 2.5, 64 -> 2.125).
    Residual planes add up over planes.
    """
    if isinstance(result, ResidualPlanes):
        out, K = result.shape
        total = sum(bits_per_weight(p, code_bits, scale_bits, row_overhead) for p in result.planes)
        return float(total)
    if isinstance(result, OffsetTernaryWeights):
        out, K = result.shape
        cb = 2.0 if code_bits is None else float(code_bits)
        return cb + (2.0 * scale_bits / K if row_overhead else 0.0)
    if isinstance(result, Pow2Weights):
        cb = (2.0 if result.levels == 1 else 4.0) if code_bits is None else float(code_bits)
    elif isinstance(result, TernaryWeights):
        cb = 2.0 if code_bits is None else float(code_bits)
    else:
        raise TypeError(f"unsupported result type {type(result).__name__}")
    out, K = result.shape
    G = n_groups(K, result.group)
    total = cb * out * K + result.bits * out * G + (scale_bits * out if row_overhead else 0)
    return total / (out * K)


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
