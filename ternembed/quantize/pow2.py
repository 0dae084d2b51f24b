# SPDX-License-Identifier: Apache-2.0
"""Power-of-two levels per group (the GTC post-training analogue), pure numpy."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fit_core import (_as_2d, _exact_rows, _group_size, _group_sum, _map_groups, group_ids, grouped_bits,
                       int_dot_pow2, integer_scales, relative_error)

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


def _pow2_to_int(w2: np.ndarray, g: int, L: int, codes: np.ndarray, level: np.ndarray, alpha: np.ndarray,
                 bits: int) -> Pow2Weights:
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
    the layer's output x @ w.T, the measure docs/methods.md asks to pick by; otherwise the relative
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
        res.append(LevelChoice(levels=L, error=err, result=q,
                               bits_per_weight=grouped_bits(2.0 if q.levels == 1 else 4.0, q.shape, q.group, q.bits,
                                                            32, True)))
    return res
