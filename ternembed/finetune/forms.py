# SPDX-License-Identifier: Apache-2.0
"""What is learned in a ternary step, per method, and how it lowers back to the integer contract.

Units: a step's integer weights W[o, i] (quantize/plan_pass.py's contract, ``c_o`` folded into
the step's realized multiplier) are the twin's float weights, so epoch 0 starts exactly at the
post-training fit. Each form keeps latent float weights ``w`` [O, K] (straight-through: dW/dw = 1)
plus its learned scales, and :meth:`Form.fit` turns trained parameters into a
``plan_pass.LayerFit`` on a unit ``c`` [O] of the twin's units (``build_step`` folds c into the
multiplier and the bias, and coarsens c where the int32 accumulator bound needs it):

- ``fgq``  one plane, group scales a [O, G]: W = a t, t = nearest of {-1, 0, 1} to w / a (FGQ).
- ``ttq``  asymmetric group scales ap, an [O, G]: W = ap [w > ap/2] - an [w < -an/2] (TTQ);
           stored as two t2 planes (the +1 codes with ap, the -1 codes with an), plane_shift 0.
- ``trn``  P residual planes, all trained jointly: latent w [P, O, K] and scales a [P, O, G],
           W = sum_p a_p t_p (TRN; each plane gets the gradient of the sum); lowered with
           per-plane power-of-two shifts on the finest unit.
- ``gtc``  signed powers of two below a learned top level a [O, G]: |W| in {0, a 2^-k, k < L},
           the nearest; the number of levels L per layer is learned too (GTC): re-decided at every
           step from the latent weights and a (:func:`gtc_levels`); the p2 kernel (L = 1: t2).
- ``rtn``  ternary plus a learned per-channel offset b [O]: W = a t + b, t from w - b (RTN); the
           ``to`` kernel (offset x sum of the inputs).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import pack
from ..errors import InputError
from ..plan import Step
from ..quantize import plan_pass as PP
from ..quantize.policy import MethodSpec

FORMS = ("fgq", "ttq", "trn", "gtc", "rtn")


def _sg(x):
    import jax
    return jax.lax.stop_gradient(x)


def _tern(w, a):
    """t in {-1, 0, 1}: the nearest of {-a, 0, +a} to w (no gradient)."""
    import jax.numpy as jnp
    return _sg(jnp.sign(w) * (jnp.abs(w) > 0.5 * a))


def _round_half_away(x, xp=np):
    return xp.sign(x) * xp.floor(xp.abs(x) + 0.5)


@dataclass
class Form:
    """One trainable step: its decoded start and its parametrization."""

    kind: str  # one of FORMS
    w: np.ndarray  # float [O, K]: the step's integer weights (offset included for rtn)
    b: np.ndarray  # float [O]: bias without the input-offset fold
    group: int
    scale_bits: int
    start: dict  # name -> float array: the learned scales' start
    levels: int = 1  # gtc: the post-training L (the start; training re-decides it, see gtc_levels)
    latent: np.ndarray | None = None  # the latent weights' start when not w (trn: one per plane)

    def init(self) -> dict:
        return {"w": self.w if self.latent is None else self.latent, **self.start, "db": np.zeros(len(self.b))}

    def lr_scales(self) -> dict:
        """mean |start| of each tensor: the learning rate is multiplied by it. The bias change is
        scaled to the accumulator's size (mean |W| sqrt(K)), not to the bias, which can be far larger
        (measured: the digits MLP diverged in its first steps when it was)."""
        d = {k: float(np.abs(v).mean()) + 1e-3 for k, v in self.init().items() if k != "db"}
        return {**d, "db": float(np.abs(self.w).mean() * np.sqrt(self.w.shape[1])) + 1e-3}

    def label(self, start: str, fit: "PP.LayerFit") -> str:
        """The lowered step's method: the start's (``step.params["method"]``) marked " ft", with
        the learned L of gtc (e.g. ``pow2/N16 L5 ft``) and " ttq" for asymmetric scales."""
        if self.kind == "gtc":
            start = f"{start.rsplit(' L', 1)[0]} L{fit.levels}"
        return f"{start} ft" + (" ttq" if self.kind == "ttq" else "")

    def gid(self) -> np.ndarray:
        return np.arange(self.w.shape[1]) // self.group

    def weights(self, p: dict):
        """The effective integer-valued weights W [O, K] (jax), straight-through to p["w"]."""
        import jax.numpy as jnp
        w, g = p["w"], self.gid()
        if self.kind == "fgq":
            a = jnp.abs(p["a"])[:, g]
            t = _tern(w, _sg(a))
            return w + _sg(a * t - w) + (a - _sg(a)) * t
        if self.kind == "ttq":
            ap, an = jnp.abs(p["ap"])[:, g], jnp.abs(p["an"])[:, g]
            pos, neg = _sg((w > 0.5 * ap).astype(w.dtype)), _sg((w < -0.5 * an).astype(w.dtype))
            q = ap * pos - an * neg
            return w + _sg(q - w) + (q - _sg(q))
        if self.kind == "trn":
            a = jnp.abs(p["a"])[:, :, g]
            t = _tern(w, _sg(a))
            return (w + _sg(a * t - w) + (a - _sg(a)) * t).sum(axis=0)
        if self.kind == "gtc":
            L = gtc_levels(_sg(w), _sg(jnp.abs(p["a"])), g, 2**self.scale_bits - 1, jnp)
            a = jnp.abs(p["a"])[:, g]
            mag = _gtc_magnitude(w, _sg(a), L)
            q = jnp.sign(w) * mag * (a / _sg(a))
            return w + _sg(q - w) + (q - _sg(q))
        if self.kind == "rtn":
            a, off = jnp.abs(p["a"])[:, g], p["off"][:, None]
            t = _tern(w - _sg(off), _sg(a))
            q = a * t + off
            return w + _sg(q - w) + (q - _sg(q))
        raise InputError(f"unknown fine-tuning form {self.kind!r}")

    def fit(self, p: dict) -> "PP.LayerFit":
        """The trained parameters as a LayerFit (codes, integer scales, unit c) for build_step."""
        p = {k: np.asarray(v, np.float64) for k, v in p.items()}
        w, g = p["w"], self.gid()
        O, K = self.w.shape
        top = 2**self.scale_bits - 1
        spec = MethodSpec({"trn": "trn", "gtc": "pow2", "rtn": "offset"}.get(self.kind, "fgq"),
                          group=self.group, scale_bits=self.scale_bits)
        common = dict(group=self.group, scale_bits=self.scale_bits)
        if self.kind == "fgq":
            a = np.abs(p["a"])
            codes = np.sign(w) * (np.abs(w) > 0.5 * a[:, g])
            a = _used(a, codes[None], g)[0]
            c = _unit(a.max(axis=1), top)
            return PP.LayerFit("t2", spec, codes[None].astype(np.int8), _int_scales(a, c, top)[None],
                               np.zeros((1, O), np.int64), c, **common)
        if self.kind == "ttq":
            ap, an = np.abs(p["ap"]), np.abs(p["an"])
            codes = np.stack([(w > 0.5 * ap[:, g]), -(w < -0.5 * an[:, g]).astype(np.int64)]).astype(np.int8)
            a = _used(np.stack([ap, an]), codes, g)
            c = _unit(a.max(axis=(0, 2)), top)
            return PP.LayerFit("t2", spec, codes, np.stack([_int_scales(x, c, top) for x in a]),
                               np.zeros((2, O), np.int64), c, **common)
        if self.kind == "trn":
            a = np.abs(p["a"])
            codes = (np.sign(w) * (np.abs(w) > 0.5 * a[:, :, g])).astype(np.int8)
            a = _used(a, codes, g)
            unit = a.max(axis=2) / top  # [P, O]: the finest unit each plane's scales fit in
            pos = np.where(unit > 0, unit, np.inf)
            c = np.where(np.isfinite(pos.min(axis=0)), np.maximum(pos.min(axis=0), 1.0), 1.0)  # as _unit
            shift = np.clip(np.ceil(np.log2(np.maximum(unit / c, 1.0)) - 1e-9), 0, 31).astype(np.int64)
            scales = np.stack([_int_scales(a[k], c * 2.0 ** shift[k], top) for k in range(len(a))])
            return PP.LayerFit("t2", spec, codes, scales, shift, c, **common)
        if self.kind == "gtc":
            a = np.abs(p["a"])
            L = int(gtc_levels(w, a, g, top, np))
            v, s, c = _gtc_store(w, a, g, L, top, np)
            v, s = v.astype(np.int8)[None], s.astype(np.int64)[None]
            if L == 1:  # {0, +-a} is ternary: the 2-bit kernel stores it in half the bytes (as post-training)
                return PP.LayerFit("t2", MethodSpec("fgq", group=self.group, scale_bits=self.scale_bits), v, s,
                                   np.zeros((1, O), np.int64), c, **common)
            return PP.LayerFit("p2", replace(spec, levels=L), v, s, np.zeros((1, O), np.int64), c, levels=L,
                               **common)
        if self.kind == "rtn":
            a, off = np.abs(p["a"]), p["off"]
            codes = np.sign(w - off[:, None]) * (np.abs(w - off[:, None]) > 0.5 * a[:, g])
            a = _used(a, codes[None], g)[0]
            c = _unit(a.max(axis=1), top)
            return PP.LayerFit("to", spec, codes[None].astype(np.int8), _int_scales(a, c, top)[None],
                               np.zeros((1, O), np.int64), c, offset=_round_half_away(off / c).astype(np.int64),
                               **common)
        raise InputError(f"unknown fine-tuning form {self.kind!r}")


# GTC learns the number of levels per layer. Here it is re-decided at every training step and at
# lowering (one rule, float32 in the twin, float64 in fit) as the L in 1..7 (int4 nibbles hold
# |v| <= 7; the p2 kernels read a 16-entry table, so their speed and storage do not depend on L)
# whose *stored* weights (nearest levels under the learned top level a, integer scales of the
# smallest level on the unit c >= 1 of the start) are closest to the latent weights, taking the
# fewest levels within GTC_TOL of the best. Why this error and not the latent one: with a fixed,
# more levels only add finer ones (never worse), but they split the same integer scale range,
# so the rounding of a grows 2x a level; the stored error weighs one against the other. The
# start (latent = the post-training integer weights) is stored exactly by its own L, and the
# tolerance is relative to the best error (0 there), so the twin starts at the post-training plan
# (a smaller L only where it stores the same weights). Measured (IC, MNIST CNN): L settles at
# 4-7, as many levels as the 8-bit scales carry; lower training loss, held-out agreement within
# 2 points of L fixed (either way), the same bytes and QEMU instructions.
GTC_LEVELS = tuple(range(1, 8))
GTC_TOL = 0.01  # a level that cuts the layer's squared error by less than 1% is not taken


def gtc_levels(w, a, g, top: int, xp):
    """The learned number of levels of a gtc layer: latent w [O, K], top levels a [O, G] (>= 0)."""
    errs = xp.stack([_gtc_error(w, a, g, L, top, xp) for L in GTC_LEVELS])
    return GTC_LEVELS[0] + xp.argmax(errs <= (1 + GTC_TOL) * errs.min())


def _gtc_store(w, a, g, L, top: int, xp):
    """What L levels store: nibbles v = sign (k+1) [O, K], the smallest level's integer scales
    s [O, G] (0 where a group has no nonzero code) and the unit c [O] (1, coarser where a scale
    outgrew the integer width)."""
    ag = a[:, g]
    mag = _gtc_magnitude(w, ag, L, xp)
    nz = mag > 0
    k = xp.round(xp.log2(xp.where(nz, ag / xp.where(nz, mag, 1.0), 1.0)))  # mag = ag 2^-k exactly
    v = xp.sign(w) * nz * (k + 1)
    onehot = (g[:, None] == np.arange(a.shape[1])[None, :]).astype(np.float32)
    base = xp.where((nz.astype(np.float32) @ onehot) > 0, a, 0.0) / 2.0 ** (L - 1)
    c = xp.maximum(base.max(axis=1) / top, 1.0)
    return v, xp.clip(_round_half_away(base / c[:, None], xp), 0, top), c


def _gtc_error(w, a, g, L, top: int, xp):
    v, s, c = _gtc_store(w, a, g, L, top, xp)
    stored = xp.sign(v) * c[:, None] * s[:, g] * 2.0 ** (L - xp.abs(v))
    return ((w - stored) ** 2).sum()


def levels_note(ptq, plan) -> str | None:
    """One line with the L that fine-tuning learned for each layer post-training stored with pow2
    levels (``ptq``: its TernaryReport; a learned L = 1 is a t2 step), or None."""
    before = {L.op_index: L.levels for L in ptq.layers if L.levels is not None}
    after = {s.op_index: int(s.params.get("levels", 1)) for s in plan.steps
             if s.op_index in before and str(s.params.get("method", "")).endswith(" ft")}
    if not after:
        return None
    return "learned power-of-two levels per layer (GTC): " + ", ".join(
        f"op {k} L{before[k]} -> L{L}" for k, L in sorted(after.items()))


def _gtc_magnitude(w, a, L, xp=None):
    """|nearest of {0, a 2^-k, k < L}| to w; the midpoint between levels m and m/2 is 0.75 m."""
    if xp is None:
        import jax.numpy as xp
    aw = xp.abs(w)
    k = xp.clip(xp.ceil(xp.log2(0.75 * a / xp.maximum(aw, 1e-30))), 0, L - 1)
    mag = a * 2.0 ** (-k)
    return xp.where(aw >= 0.5 * a * 2.0 ** (1 - L), mag, 0.0)


def _used(a: np.ndarray, codes: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Scales [P, O, G] (or [O, G]) zeroed where their group has no nonzero code."""
    a3 = a if a.ndim == 3 else a[None]
    used = np.zeros(a3.shape, bool)
    for k in range(a3.shape[0]):
        np.logical_or.at(used[k], (np.arange(codes.shape[1])[:, None], g[None, :]), codes[k] != 0)
    return np.where(used, a3, 0.0)


def _unit(amax: np.ndarray, top: int) -> np.ndarray:
    """The post-training unit (1), coarser only where a scale outgrew the integer width."""
    return np.maximum(amax / top, 1.0)


def _int_scales(a: np.ndarray, unit, top: int) -> np.ndarray:
    u = np.asarray(unit, np.float64)
    return np.clip(_round_half_away(a / u[:, None]), 0, top).astype(np.int64)


def decode(step: Step, asymmetric: bool = False) -> Form:
    """The Form of a ternary step (t2 one plane: fgq, or ttq when ``asymmetric``; t2 planes: trn;
    p2: gtc; to: rtn), started at the step's own integer weights."""
    p = step.params
    kern = step.kernel.split("_")[1]
    if np.asarray(p["bias"]).ndim != 1:
        raise InputError(f"op {step.op_index}: fine-tuning does not handle switchable planes (export without "
                         "--switchable)")
    O, K, gs = int(p["out_channels"]), int(p["depth"]), int(p["group"])
    bits = 8 if np.asarray(p["scales"]).dtype == np.uint8 else 16
    gid = np.arange(K) // gs
    if kern == "t2":
        P = int(p.get("planes", 1))
        codes = pack.unpack_2bit(p["codes"], P * O, K).reshape(P, O, K).astype(np.float64)
        sc = np.asarray(p["scales"], np.float64).reshape(P, O, -1)
        shift = np.asarray(p.get("plane_shift", np.zeros((P, O))), np.float64).reshape(P, O)
        a = sc * 2.0 ** shift[:, :, None]
        W = (codes * a[:, :, gid]).sum(axis=0)
        latent = None
        if P > 1:
            kind, start, latent = "trn", {"a": a}, codes * a[:, :, gid]
        elif asymmetric:
            kind, start = "ttq", {"ap": a[0], "an": a[0]}
        else:
            kind, start = "fgq", {"a": a[0]}
        levels = 1
    elif kern == "p2":
        levels = int(p["levels"])
        v = pack.unpack_int4(p["codes"], O, K).astype(np.int64)
        sc = np.asarray(p["scales"], np.float64).reshape(O, -1)
        mag = np.where(v != 0, 2.0 ** (levels - np.abs(v)), 0.0)
        W = np.sign(v) * mag * sc[:, gid]
        kind, start, latent = "gtc", {"a": sc * 2.0 ** (levels - 1)}, None
    elif kern == "to":
        codes = pack.unpack_2bit(p["codes"], O, K).astype(np.float64)
        sc = np.asarray(p["scales"], np.float64).reshape(O, -1)
        off = np.asarray(p["offset"], np.float64)
        W = codes * sc[:, gid] + off[:, None]
        kind, start, levels, latent = "rtn", {"a": sc, "off": off}, 1, None
    else:
        raise InputError(f"op {step.op_index}: {step.kernel} is not a ternary step")
    b = np.asarray(p["bias"], np.float64) - int(p.get("input_offset", 0)) * W.sum(axis=1)
    return Form(kind, W, b, gs, bits, start, levels, latent)
