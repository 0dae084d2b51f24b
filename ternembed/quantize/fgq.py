# SPDX-License-Identifier: Apache-2.0
"""FGQ group ternarization, TRN residual planes and He-Fan residual expansion (pure numpy)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .fit_core import (_as_2d, _flip_negative, _group_size, _group_sum, _map_groups, _solver, group_ids, int_dot,
                       integer_scales, n_groups)

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
