# SPDX-License-Identifier: Apache-2.0
"""RTN-style scale + offset, and already-ternary weights packed losslessly (pure numpy)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fgq import TernaryWeights
from .fit_core import _as_2d, _exact_rows

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
