# SPDX-License-Identifier: Apache-2.0
"""The ternary pass: Plan -> Plan, turning chosen int8 MAC steps into ternary steps.

``ternarize_plan(plan, config, calib_inputs=None) -> (new_plan, report)`` works on the int8
weights already in the Plan. TFLite int8 weights are symmetric per output channel,
``w_real[o, i] = s_w[o] * w_q[o, i]``, so every fit happens on the integer values ``w_q`` of one
output row, and the per-channel scale ``s_w[o]`` stays where it was: in the requantization.

Integer contract of a ternary step (the C kernels implement exactly this)
=========================================================================

Notation. O output channels; K the reduction length and ``x_i`` the raw int8 input at tap i:
FC ``i`` = feature (K = ``depth``); conv ``i = (ky*KW + kx)*C + c`` over the KHxKW window
(K = KH*KW*C, TFLite weight order); depthwise ``i = ky*KW + kx`` for output channel ``oc`` reading
input channel ``oc // M`` (K = KH*KW). A tap outside the image reads the input zero point
``zp = -input_offset`` (as the int8 kernels). Groups: ``g(i) = i // N`` (N = ``group``),
``G = ceil(K/N)``, the last group shorter when N does not divide K. All sums are int32 on the
device; the pass checks for every output channel and every allowed plane count that
``|bias_o| + 128 * (sum_i |W[o,i]| + K*|offset_o|) <= 2^31 - 1`` (W the combined integer
weight below), so no partial sum can overflow in any summation order.

``fc_t2_s8`` / ``conv_t2_s8`` / ``dwconv_t2_s8`` (ternary codes, group scales, residual planes)::

    acc_o = bias_o + sum_{p < active_planes} ( sum_g scales[p,o,g] * sum_{i in g} t[p,o,i] * x_i ) << plane_shift[p,o]
    out   = clamp(MultiplyByQuantizedMultiplier(acc_o, multiplier[o], shift[o]) + output_offset,
                  act_min, act_max)

    codes       uint8, 1-D: planes p = 0..P-1, each [O, K] packed row-major in pack's "2bit"
                format (4 codes a byte, 0b00 = 0, 0b01 = +1, 0b11 = -1, weight i in bits
                2*(i%4)+1..2*(i%4) of byte i//4, every row starting on a byte); plane p row o
                starts at byte (p*O + o) * ceil(K/4).  format = "2bit".
    scales      uint8 (uint16 when scale_bits > 8) [P, O, G]: unsigned integer group scales
    plane_shift uint8 [P, O] (only when P > 1; absent = all 0): left shift of plane p's partial sum
    bias        int32 [O]; with ``switchable`` planes int32 [P, O], row k-1 used when k planes are
                active (each row has its own zero-point fold)
    multiplier, shift  int32 [O]
    planes P, active_planes (<= P, default P), group N, out_channels O, depth K,
    input_offset, output_offset, act_min, act_max, and the geometry: FC ``rows``; conv/depthwise
    ``kernel_hw`` (KH, KW), ``in_channels``, ``stride``, ``dilation``, ``pad`` (top, left),
    ``out_hw``; depthwise ``depth_multiplier``.

``fc_p2_s8`` / ``conv_p2_s8`` / ``dwconv_p2_s8`` (signed powers of two, one plane)::

    acc_o = bias_o + sum_g scales[o,g] * sum_{i in g, v_i != 0} sign(v_i) * (x_i << (levels - |v_i|))

    codes   uint8, 1-D: [O, K] of signed nibbles v = sign * (k+1), |v| <= levels, in pack's
            "int4" format (2 a byte, low nibble first, rows byte-aligned).  format = "int4".
    scales  uint8/uint16 [O, G]; levels L (1..7); bias, multiplier, shift, the rest as t2.

``fc_to_s8`` / ``conv_to_s8`` / ``dwconv_to_s8`` (ternary + per-channel offset, RTN-style)::

    acc_o = bias_o + sum_g scales[o,g] * sum_{i in g} t[o,i] * x_i + offset[o] * S
    S     = sum_{i < K} x_i over the same taps (padded taps read zp): FC the input row, conv the
            KHxKWxC patch (once per output pixel, shared by all O outputs), depthwise the KHxKW
            taps of one input channel (shared by its M outputs)

    codes [O, K] "2bit" as t2 (one plane); scales uint8/uint16 [O, G]; offset int32 [O].

How the constants are derived from the int8 step
------------------------------------------------
The fit represents ``w_q[o, i] ~ c_o * W[o, i]`` (+ ``c_o * offset_o`` for ``to``), with ``c_o``
one real scale per output channel in units of the int8 weight quantum, shared by all planes
(so the planes add into one accumulator): t2 ``W = sum_p (scales[p,o,g] * t) << plane_shift[p,o]``
(plane 1's scale is the least-squares integer scale s_o*a_g of the FGQ fit; plane p+1's unit is
plane p's divided by a power of two 2^k chosen so its scales still fit the integer width;
``c_o`` is the last plane's unit and ``plane_shift`` the accumulated k's); p2
``W = scales * sign * 2^(levels-|v|)`` with ``c_o = s_o * 2^-(levels-1)``; to ``c_o = s_o``.
With calibration inputs the codes and group scales are then re-chosen on the same integer grid
by error feedback (:mod:`ternembed.quantize.calibfit`). With the int8 step's folded bias
``bias_f = bias_q + input_offset * sum_i w_q`` and requantization (mult_o, shift_o) =
quantize_multiplier(s_in * s_w[o] / s_out):

    bias_q    = bias_f - input_offset * sum_i w_q[o, i]           (the int32 bias of the model)
    delta_o   = sum_i m_i * (w_q[o, i] - c_o * (W[o, i] + offset_o))    (bias correction; 0 without
                calibration data; m_i = calibration mean of x_i - zp at tap i)
    bias_o    = round_half_away((bias_q + delta_o) / c_o) + input_offset * (sum_i W[o, i] + K * offset_o)
    (multiplier, shift)_o = quantize_multiplier(M_o * c_o),  M_o = mult_o * 2^(shift_o - 31)

``delta_o`` keeps the layer's mean accumulator on the calibration data equal to the int8 layer's
(ternary fits do not preserve sums of weights, and inputs after ReLU or with a large zero point
have a large mean, so without it the error is dominated by a per-channel offset; with
``bias_correction = "sequential"`` the m multiplying the ternary weights is the mean the layer sees
inside the partly ternarized network). ``M_o`` is the
original real multiplier s_in * s_w[o] / s_out (the Buffers' scales give s_in and s_out, so
s_w[o] = M_o * s_out / s_in). When c_o is a power of two the original multiplier is kept verbatim
and only the shift moves; when c_o = 1 (already-ternary weights, packed losslessly with scales =
|w_q| per row) the step computes bit for bit what the int8 step computed. If the accumulator bound
fails, c_o is doubled (shifts first, then scales halved) until it holds. With switchable planes
bias row k-1 uses the combined weight of the first k planes (and its own delta).

Already-ternary layers (every output row in {-m_o, 0, +m_o}, :func:`detect_ternary`) are packed
losslessly (one group per row, scales = m_o, c_o = 1) whenever that is smaller than int8.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from .. import pack
from ..fixedpoint import quantize_multiplier, round_half_away_array
from ..plan import Plan, Step, quant_bytes
from . import ternary as T
from .fgq import _fit_groups
from ..kernelspec import INT8_KERNELS, MAC_KERNELS, TERNARY_KERNELS
from .policy import SOLVER_OF, MethodSpec, TernaryConfig, parse_spec

__all__ = ["MacLayer", "LayerFit", "mac_layers", "fit_layer", "build_step", "ternarize_plan",
           "set_active_planes", "quant_bytes", "INT8_KERNELS", "TERNARY_KERNELS"]

INT32_MAX = 2**31 - 1


# ------------------------------------------------------------------------------- layer view
@dataclass
class MacLayer:
    """One int8 MAC step of a plan, seen as a matrix of integer weights [O, K]."""

    pos: int  # index in plan.steps
    step: Step
    family: str  # fc | conv | dwconv
    w: np.ndarray  # int8 [O, K] in the contract's tap order
    bias_q: np.ndarray  # int64 [O]: the model's bias, input-offset fold removed
    real_mult: np.ndarray  # float64 [O]: M_o = s_in * s_w[o] / s_out
    name: str  # output buffer name

    @property
    def out_channels(self) -> int:
        return self.w.shape[0]

    @property
    def depth(self) -> int:
        return self.w.shape[1]

    @property
    def n_weights(self) -> int:
        return int(self.w.size)

    @property
    def op_index(self) -> int:
        return self.step.op_index


def _layer(plan: Plan, pos: int) -> MacLayer:
    step = plan.steps[pos]
    p = step.params
    w = np.asarray(p["weights"])
    if step.kernel == "fc_s8":
        w2 = w.reshape(w.shape[0], -1)
    elif step.kernel == "conv_s8":
        w2 = w.reshape(w.shape[0], -1)
    else:  # dwconv: [1, KH, KW, C*M] -> [C*M, KH*KW]
        w2 = w.reshape(-1, w.shape[3]).T
    w2 = np.ascontiguousarray(w2.astype(np.int8))
    O = w2.shape[0]
    bias_f = np.broadcast_to(np.asarray(p["bias"], np.int64), (O,))
    bias_q = bias_f - int(p.get("input_offset", 0)) * w2.astype(np.int64).sum(axis=1)
    mult = np.broadcast_to(np.asarray(p["multiplier"], np.int64), (O,))
    shift = np.broadcast_to(np.asarray(p["shift"], np.int64), (O,))
    real = mult.astype(np.float64) * np.ldexp(1.0, (shift - 31).astype(np.int64))
    name = plan.buffers[step.outputs[0]].name
    return MacLayer(pos, step, MAC_KERNELS[step.kernel].family, w2, bias_q.astype(np.int64), real, name)


def mac_layers(plan: Plan) -> list[MacLayer]:
    """Every int8 FC/conv/depthwise step of the plan, in execution order."""
    return [_layer(plan, k) for k, s in enumerate(plan.steps) if s.kernel in INT8_KERNELS]


# ------------------------------------------------------------------------------------ fitting
@dataclass
class LayerFit:
    """A layer's weights in the contract's integer form: w_q ~ c[:, None] * W (+ c * offset).

    ``codes`` int8 [P, O, K] ternary (p2: [1, O, K] nibbles sign*(k+1)); ``scales`` int64
    [P, O, G]; ``plane_shift`` int64 [P, O]; ``c`` float64 [O]; ``offset`` int64 [O] (to only).
    """

    kind: str  # t2 | p2 | to
    spec: MethodSpec
    codes: np.ndarray
    scales: np.ndarray
    plane_shift: np.ndarray
    c: np.ndarray
    group: int
    levels: int = 1
    offset: np.ndarray | None = None
    scale_bits: int = 8
    lossless: bool = False

    @property
    def planes(self) -> int:
        return int(self.codes.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.codes.shape[1]), int(self.codes.shape[2])

    def int_weights(self, planes: int | None = None) -> np.ndarray:
        """W int64 [O, K] of the first ``planes`` planes (all when None); offset not included."""
        O, K = self.shape
        gid = np.arange(K) // self.group
        if self.kind == "p2":
            v = self.codes[0].astype(np.int64)
            mag = np.abs(v)
            return np.sign(v) * (np.int64(1) << np.where(mag > 0, self.levels - mag, 0)) * self.scales[0][:, gid]
        k = self.planes if planes is None else int(planes)
        W = np.zeros((O, K), np.int64)
        for p in range(k):
            W += (self.codes[p].astype(np.int64) * self.scales[p][:, gid]) << self.plane_shift[p][:, None]
        return W

    def dequantize(self, planes: int | None = None) -> np.ndarray:
        """Float weights [O, K] in int8 weight units (multiply by s_w[o] for real weights)."""
        W = self.int_weights(planes).astype(np.float64)
        if self.offset is not None:
            W = W + self.offset[:, None].astype(np.float64)
        return self.c[:, None] * W

    def coarsened(self, rows: np.ndarray) -> "LayerFit":
        """Double c_o on the given rows (plane shifts first, then halve the integer scales)."""
        f = replace(self, scales=self.scales.copy(), plane_shift=self.plane_shift.copy(), c=self.c.copy(),
                    offset=None if self.offset is None else self.offset.copy())
        for o in np.flatnonzero(rows):
            for p in range(f.planes):
                if f.plane_shift[p, o] > 0:
                    f.plane_shift[p, o] -= 1
                else:
                    f.scales[p, o] = round_half_away_array(f.scales[p, o] / 2.0).astype(np.int64)
            if f.offset is not None:
                f.offset[o] = int(round_half_away_array(np.array(f.offset[o] / 2.0)))
            f.c[o] *= 2.0
        f.lossless = False
        return f


def _fit_t2(w: np.ndarray, spec: MethodSpec) -> LayerFit:
    O, K = w.shape
    g = K if spec.group is None else min(int(spec.group), K)
    gid = np.arange(K) // g
    M = float(2**spec.scale_bits - 1)
    solver = SOLVER_OF[spec.method]
    resid = w.astype(np.float64)
    codes_l, scales_l, k_l = [], [], []
    s_prev = None
    for p in range(spec.planes):
        codes, alpha, nnz = _fit_groups(resid, g, solver, {})
        if p == 0:
            a, s = T.integer_scales(alpha, nnz, bits=spec.scale_bits)
            a = a.astype(np.int64)
            k = np.zeros(O, np.int64)
        else:
            amax = alpha.max(axis=1)
            live = (s_prev > 0) & (amax > 0)
            ratio = np.where(live, M * s_prev / np.where(live, amax, 1.0), 1.0)
            k = np.where(live, np.clip(np.floor(np.log2(ratio)), 0, 24), 0).astype(np.int64)
            s = s_prev * np.ldexp(1.0, -k)
            safe = np.where(s > 0, s, 1.0)[:, None]
            a = np.where(s[:, None] > 0, np.clip(np.rint(alpha / safe), 0, M), 0).astype(np.int64)
        resid = resid - s[:, None] * a[:, gid] * codes
        codes_l.append(codes.astype(np.int8))
        scales_l.append(a)
        k_l.append(k)
        s_prev = s
    P = spec.planes
    shifts = np.zeros((P, O), np.int64)
    for p in range(P - 2, -1, -1):
        shifts[p] = shifts[p + 1] + k_l[p + 1]
    c = np.where(s_prev > 0, s_prev, 1.0)  # an all-zero row has scales 0; any c works
    return LayerFit("t2", spec, np.stack(codes_l), np.stack(scales_l), shifts, c.astype(np.float64), g,
                    scale_bits=spec.scale_bits)


def _fit_p2(w: np.ndarray, spec: MethodSpec) -> LayerFit:
    if spec.levels == 1:  # one level is plain ternary: the 2-bit kernel is cheaper
        return _fit_t2(w, replace(spec, method="fgq"))
    O, K = w.shape
    q = T.pow2_quantize(w.astype(np.float64), levels=spec.levels, group=spec.group, bits=spec.scale_bits)
    c = q.s * np.ldexp(1.0, -(spec.levels - 1))
    c = np.where(c > 0, c, 1.0)
    nib = q.nibbles()[None]
    return LayerFit("p2", spec, nib, q.a.astype(np.int64)[None], np.zeros((1, O), np.int64), c, q.group,
                    levels=spec.levels, scale_bits=spec.scale_bits)


def _fit_offset(w: np.ndarray, spec: MethodSpec) -> LayerFit:
    O, K = w.shape
    wf = w.astype(np.float64)
    g = K if spec.group is None else min(int(spec.group), K)
    gid = np.arange(K) // g
    solver = SOLVER_OF[spec.method]
    beta = T.scale_offset(wf).beta
    best = None
    for _ in range(4):
        codes, alpha, nnz = _fit_groups(wf - beta[:, None], g, solver, {})
        a, s = T.integer_scales(alpha, nnz, bits=spec.scale_bits)
        deq = s[:, None] * a.astype(np.float64)[:, gid] * codes
        beta_new = (wf - deq).mean(axis=1)
        err = ((wf - deq - beta_new[:, None]) ** 2).sum(axis=1)
        if best is None:
            best = [codes, a, s, beta_new, err]
        else:
            m = err < best[4]
            best = [np.where(m[:, None], codes, best[0]), np.where(m[:, None], a, best[1]),
                    np.where(m, s, best[2]), np.where(m, beta_new, best[3]), np.minimum(err, best[4])]
        beta = beta_new
    codes, a, s, beta, _ = best
    M = float(2**spec.scale_bits - 1)
    c = np.where(s > 0, s, np.maximum(np.abs(beta), 1e-12) / M)
    off = round_half_away_array(beta / c).astype(np.int64)
    return LayerFit("to", spec, codes.astype(np.int8)[None], a.astype(np.int64)[None], np.zeros((1, O), np.int64),
                    c.astype(np.float64), g, offset=off, scale_bits=spec.scale_bits)


def lossless_fit(w: np.ndarray) -> LayerFit | None:
    """Exact ternary form of already-ternary int8 weights (rows in {-m, 0, m}), else None."""
    O, K = w.shape
    w64 = w.astype(np.int64)
    if not T.detect_ternary(w64.astype(np.float64), rtol=0.0, atol=0.5):
        return None
    mag = np.abs(w64).max(axis=1)
    codes = np.sign(w64).astype(np.int8)
    spec = MethodSpec(method="exact", group=None, planes=1)
    return LayerFit("t2", spec, codes[None], mag.reshape(1, O, 1), np.zeros((1, O), np.int64),
                    np.ones(O), K, lossless=True)


def fit_layer(w: np.ndarray, spec: MethodSpec) -> LayerFit:
    """Fit int8 weights [O, K] with a (ternary) method spec."""
    if spec.is_int8:
        raise ValueError("int8 is not a ternary fit")
    if spec.method == "pow2":
        return _fit_p2(w, spec)
    if spec.method == "offset":
        return _fit_offset(w, spec)
    return _fit_t2(w, spec)


# ------------------------------------------------------------------------------ step building
def _requant(real_mult: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    O = len(c)
    mult = np.zeros(O, np.int32)
    shift = np.zeros(O, np.int32)
    for o in range(O):
        mult[o], shift[o] = quantize_multiplier(float(real_mult[o] * c[o]))
    return mult, shift


def _bias_rows(layer: MacLayer, fit: LayerFit, switchable: bool, mean_in: np.ndarray | None = None,
               mean_q: np.ndarray | dict | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Bias rows (one per allowed plane count) and the matching combined weights.

    ``mean_in`` (the calibration mean of x - zp per tap of the int8 network, [K] or [O, K]) turns
    on the bias correction: the bias is chosen so that the layer's mean accumulator equals the int8
    layer's, sum_i mean_in_i * w_q[o, i] = bias shift + sum_i mean_q_i * (c W)[o, i], with
    ``mean_q`` the mean input the ternary layer actually sees (defaults to ``mean_in``; the
    sequential correction passes the mean inside the partly ternarized network, as one array or
    as {plane count (None = all planes): array}).
    """
    in_off = int(layer.step.params.get("input_offset", 0))
    counts = range(1, fit.planes + 1) if (switchable and fit.kind == "t2" and fit.planes > 1) else [fit.planes]
    rows, Ws = [], []
    K = layer.depth
    for k in counts:
        W = fit.int_weights(k)
        fold = W.sum(axis=1)
        if fit.offset is not None:
            fold = fold + K * fit.offset
        bq = layer.bias_q.astype(np.float64)
        if mean_in is not None and not (fit.lossless and not mean_q):
            deq = fit.c[:, None] * (W + (0 if fit.offset is None else fit.offset[:, None]))
            mq = mean_q
            if isinstance(mean_q, dict):
                mq = mean_q.get(k, mean_q.get(None)) if k != fit.planes else mean_q.get(None, mean_q.get(k))
            mq = mean_in if mq is None else mq
            bq = bq + (np.broadcast_to(mean_in, deq.shape) * layer.w).sum(axis=1) \
                - (np.broadcast_to(mq, deq.shape) * deq).sum(axis=1)
        rows.append(round_half_away_array(bq / fit.c).astype(np.int64) + in_off * fold)
        Ws.append(W)
    return np.stack(rows), Ws


def _bad_rows(fit: LayerFit, rows: np.ndarray, Ws: list[np.ndarray], shift: np.ndarray) -> np.ndarray:
    K = fit.shape[1]
    bad = np.zeros(fit.shape[0], bool)
    for b, W in zip(rows, Ws):
        bound = np.abs(b) + 128 * np.abs(W).sum(axis=1)
        if fit.offset is not None:
            bound = bound + 128 * K * np.abs(fit.offset)
        lshift = np.maximum(shift.astype(np.int64), 0)
        bad |= (bound << lshift) > INT32_MAX
    bad |= fit.scales.max(axis=(0, 2)) > 2**fit.scale_bits - 1
    bad |= fit.plane_shift.max(axis=0) > 31
    return bad


def build_step(layer: MacLayer, fit: LayerFit, switchable: bool = False,
               mean_in: np.ndarray | None = None, mean_q: np.ndarray | dict | None = None) -> Step:
    """The ternary Step for one int8 MAC layer (see the module docstring for the params).

    ``mean_in`` / ``mean_q``: calibration mean input per tap (:func:`layer_mean_input`) of the
    int8 network / of the ternary network, for the bias correction (see :func:`_bias_rows`).
    """
    for _ in range(80):
        rows, Ws = _bias_rows(layer, fit, switchable, mean_in, mean_q)
        if fit.lossless:
            mult = np.broadcast_to(np.asarray(layer.step.params["multiplier"], np.int32), (layer.out_channels,)).copy()
            shift = np.broadcast_to(np.asarray(layer.step.params["shift"], np.int32), (layer.out_channels,)).copy()
        else:
            mult, shift = _requant(layer.real_mult, fit.c)
        bad = _bad_rows(fit, rows, Ws, shift)
        if not bad.any():
            break
        fit = fit.coarsened(bad)
    else:
        raise OverflowError(f"op {layer.op_index}: cannot fit the ternary accumulator in int32")
    src = layer.step.params
    O, K = layer.out_channels, layer.depth
    params: dict[str, Any] = {k: src[k] for k in ("input_offset", "output_offset", "act_min", "act_max") if k in src}
    if layer.family == "fc":
        params.update(rows=src.get("rows", 1))
    else:
        wshape = np.asarray(src["weights"]).shape
        params.update(kernel_hw=(int(wshape[1]), int(wshape[2])),
                      in_channels=int(wshape[3]) if layer.family == "conv" else int(wshape[3]) // int(src["depth_multiplier"]),
                      stride=src["stride"], dilation=src["dilation"], pad=src["pad"], out_hw=src["out_hw"])
        if layer.family == "dwconv":
            params["depth_multiplier"] = src["depth_multiplier"]
    sdt = np.uint8 if fit.scale_bits <= 8 else np.uint16
    G = fit.scales.shape[2]
    params.update(method=("lossless" if fit.lossless else fit.spec.label()), out_channels=O, depth=K,
                  group=int(fit.group))
    if fit.kind == "p2":
        params.update(format="int4", codes=pack.pack_int4(fit.codes[0]), levels=int(fit.levels),
                      scales=fit.scales[0].astype(sdt).reshape(O, G))
    else:
        params.update(format="2bit", codes=pack.pack_2bit(fit.codes.reshape(-1, K)))
        if fit.kind == "t2":
            params.update(planes=fit.planes, active_planes=fit.planes,
                          scales=fit.scales.astype(sdt).reshape(fit.planes, O, G))
            if fit.planes > 1:
                params["plane_shift"] = fit.plane_shift.astype(np.uint8)
        else:
            params.update(scales=fit.scales[0].astype(sdt).reshape(O, G), offset=fit.offset.astype(np.int32))
    params.update(bias=(rows.astype(np.int32) if rows.shape[0] > 1 else rows[0].astype(np.int32)),
                  multiplier=mult.astype(np.int32), shift=shift.astype(np.int32))
    kernel = f"{layer.family}_{fit.kind}_s8"
    return Step(layer.step.op_index, layer.step.op_type, kernel, list(layer.step.inputs),
                list(layer.step.outputs), params, macs=layer.step.macs)


def layer_mean_input(layer: MacLayer, x: np.ndarray) -> np.ndarray:
    """Calibration mean of (x - zp) per tap of the layer's reduction, for the bias correction."""
    from ..kernels.ternary import mean_patch
    p = layer.step.params
    if layer.family == "fc":
        return mean_patch(x, "fc", layer.depth, p.get("input_offset", 0))
    ws = np.asarray(p["weights"]).shape
    return mean_patch(x, layer.family, layer.depth, p.get("input_offset", 0), (ws[1], ws[2]), p["stride"],
                      p["dilation"], p["pad"], p["out_hw"], p.get("depth_multiplier", 1))


def set_active_planes(plan: Plan, planes: int | dict[int, int]) -> Plan:
    """A copy of a ternary plan that runs only the first ``planes`` residual planes of each t2
    step (an int for all steps, or {op_index: n}); needs steps exported with switchable planes
    (or asks for all planes)."""
    new_steps = []
    for s in plan.steps:
        if s.kernel.endswith("_t2_s8"):
            n = planes if isinstance(planes, int) else planes.get(s.op_index)
            if n is not None:
                P = int(s.params["planes"])
                n = max(1, min(int(n), P))
                if n != P and np.asarray(s.params["bias"]).ndim != 2:
                    raise ValueError(f"op {s.op_index}: planes are not switchable (export with switchable=True)")
                s = Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs, dict(s.params, active_planes=n), s.macs)
        new_steps.append(s)
    return Plan(plan.name, plan.buffers, new_steps, plan.inputs, plan.outputs, plan.source_kind)


# ------------------------------------------------------------------------------------- policy
def _match_override(layer: MacLayer, plan: Plan, overrides: dict[str, Any]) -> tuple[Any, str] | None:
    """The override for a layer: by op index ("3", "#3"), the exact name of the tensor it writes, else a
    substring of that name. (Not the names it reads: a tensor is the output of one layer and the input of
    the next, and naming it must pick one layer.)"""
    for key, spec in overrides.items():
        k = str(key).strip().lstrip("#")
        if k.isdigit() and int(k) == layer.op_index:
            return spec, key
    names = {plan.buffers[i].name for i in layer.step.outputs}
    for key, spec in overrides.items():
        if str(key) in names:
            return spec, key
    for key, spec in overrides.items():
        if not str(key).strip().lstrip("#").isdigit() and str(key) in layer.name:
            return spec, key
    return None


def _decide(plan: Plan, layers: list[MacLayer], cfg: TernaryConfig) -> tuple[dict[int, MethodSpec | None], dict[int, str]]:
    """Per layer pos: a fixed spec, or None for 'placed by the budget'; plus the reason."""
    decided: dict[int, MethodSpec | None] = {}
    why: dict[int, str] = {}
    used_keys = set()
    base = cfg.default_spec()
    for k, L in enumerate(layers):
        ov = _match_override(L, plan, cfg.layers)
        if ov is not None:
            decided[L.pos] = parse_spec(ov[0], cfg)
            why[L.pos] = f"override {ov[1]}"
            used_keys.add(ov[1])
            continue
        edge = k == 0 or k == len(layers) - 1
        if L.family == "dwconv" and cfg.depthwise != "ternary":
            if cfg.depthwise == "place" and cfg.budgeted:
                decided[L.pos], why[L.pos] = None, "placement"
            else:
                decided[L.pos], why[L.pos] = MethodSpec("int8"), "depthwise"
        elif edge and (cfg.first_last == "int8" or (cfg.first_last == "auto" and not cfg.budgeted)):
            decided[L.pos], why[L.pos] = MethodSpec("int8"), "first layer" if k == 0 else "last layer"
        elif cfg.budgeted:
            decided[L.pos], why[L.pos] = None, "placement"
        else:
            decided[L.pos], why[L.pos] = base, "default"
    unused = [k for k in cfg.layers if k not in used_keys]
    if unused:
        from ..errors import InputError
        raise InputError(f"{plan.name}: layer override(s) {', '.join(map(str, unused))} match no FC/conv/depthwise "
                         f"layer; use an op index or a tensor name: "
                         + "; ".join(f"{L.op_index} {L.name}" for L in layers))
    return decided, why


# --------------------------------------------------------------------------------------- pass
def _sequential_correction(plan: Plan, steps: list[Step], layers: list[MacLayer], fits: dict[int, LayerFit],
                           stats: dict[int, Any], ev, switchable: bool) -> None:
    """Empirical bias correction in execution order: each ternary layer's bias is rebuilt from the
    mean input it sees inside the network whose earlier layers are already ternary, so mean shifts
    do not accumulate from layer to layer. With switchable planes there is one pass per plane count
    k (every step running min(k, P) planes), each setting bias row k-1. Replaces entries of
    ``steps`` in place."""
    from ..emulate import ADAPTERS
    by_pos = {L.pos: L for L in layers}
    tern = [k for k, s in enumerate(steps) if s is not plan.steps[k] and id(s) in fits and k in stats]
    if not tern:
        return
    pmax = max(fits[id(steps[k])].planes for k in tern)
    passes: list[int | None] = list(range(1, pmax + 1)) if (switchable and pmax > 1) else [None]
    mus: dict[int, dict[int | None, np.ndarray]] = {k: {} for k in tern}
    for count in passes:
        vals = dict(ev.values)
        dirty = False
        for k, step in enumerate(steps):
            if k in mus:
                fit = fits[id(step)]
                if dirty and (count is None or count <= fit.planes):
                    mus[k][count] = layer_mean_input(by_pos[k], vals[step.inputs[0]])
                    new = build_step(by_pos[k], fit, switchable, stats[k].mean, mus[k])
                    fits[id(new)] = fit
                    steps[k] = step = new
                dirty = True
            elif step is not plan.steps[k]:
                dirty = True
            if not dirty:
                continue
            run = step
            if count is not None and "active_planes" in step.params:
                n = min(count, int(step.params["planes"]))
                run = Step(step.op_index, step.op_type, step.kernel, step.inputs, step.outputs,
                           dict(step.params, active_planes=n), step.macs)
            res = ADAPTERS[run.kernel](run, [vals[i] for i in run.inputs])
            out = plan.buffers[run.outputs[0]]
            vals[run.outputs[0]] = np.asarray(res).reshape((ev.n,) + tuple(out.shape[1:])).astype(out.dtype)


def ternarize_plan(plan: Plan, config: TernaryConfig | None = None,
                   calib_inputs: Sequence[np.ndarray] | None = None):
    """Turn chosen int8 MAC steps of ``plan`` into ternary steps. Returns (new_plan, report).

    Without a budget every eligible layer gets ``config``'s method (first/last layer and
    depthwise layers int8 by default). With ``budget_bits``, ``max_flash`` or ``min_agreement``
    the layers are placed by measured sensitivity on ``calib_inputs`` (required then). The
    report (:class:`ternembed.quantize.summary.TernaryReport`) measures output errors and
    agreement when calibration inputs are given.
    """
    from . import calibfit as CF
    from . import placement as PL
    from .summary import build_report

    cfg = config or TernaryConfig()
    layers = mac_layers(plan)
    decided, why = _decide(plan, layers, cfg)
    chosen: dict[int, Step] = {}
    notes: list[str] = []
    evaluator = None
    if calib_inputs is not None:
        evaluator = PL.Evaluator(plan, list(calib_inputs), cfg.task)
    stats: dict[int, Any] = {}
    feedback = cfg.fit == "feedback" or (cfg.fit == "auto" and evaluator is not None)
    if cfg.fit == "feedback" and evaluator is None:
        from ..errors import InputError
        raise InputError(f"{plan.name}: fit = 'feedback' needs calibration inputs")
    use_stats = evaluator is not None and (feedback or cfg.bias_correction != "off")

    def layer_stats(L: MacLayer):
        """Calibration statistics of a layer, computed on first use (only ternary candidates need them)."""
        if use_stats and L.pos not in stats:
            stats[L.pos] = CF.layer_stats(L, evaluator.values[L.step.inputs[0]], with_cov=feedback)
        return stats.get(L.pos)

    fits: dict[int, LayerFit] = {}  # id(step) -> fit, for the sequential bias correction

    def make_step(L: MacLayer, spec: MethodSpec) -> Step:
        fit = fit_layer(L.w, spec)
        st = layer_stats(L)
        if feedback and st is not None and st.rows >= CF.MIN_ROWS:
            fit = CF.refit(L.w, fit, st, sequential=cfg.switchable)
        mean = st.mean if (st is not None and cfg.bias_correction != "off") else None
        step = build_step(L, fit, cfg.switchable, mean)
        fits[id(step)] = fit
        return step

    # already-ternary layers: lossless when cheaper than int8 (and not forced int8 by an override)
    for L in layers:
        forced_int8 = why[L.pos].startswith("override") and decided[L.pos] is not None and decided[L.pos].is_int8
        if cfg.detect_lossless and not forced_int8:
            fit = lossless_fit(L.w)
            if fit is not None:
                st = build_step(L, fit, cfg.switchable)
                if quant_bytes(st) < quant_bytes(L.step):
                    chosen[L.pos] = st
                    why[L.pos] = "already ternary (lossless)"
                    decided[L.pos] = fit.spec

    for L in layers:
        if L.pos in chosen:
            continue
        spec = decided[L.pos]
        if spec is not None and not spec.is_int8:
            chosen[L.pos] = make_step(L, spec)

    placement = None
    placeable = [L for L in layers if decided[L.pos] is None and L.pos not in chosen]
    if cfg.budgeted:
        if evaluator is None:
            from ..errors import InputError
            raise InputError(f"{plan.name}: a budget (bits, flash or agreement) needs calibration inputs")
        placement = PL.place(plan, layers, placeable, chosen, cfg, evaluator, make_step)
        for pos, st in placement.choice.items():
            if st is not None:
                chosen[pos] = st
        notes.extend(placement.notes)

    steps = list(plan.steps)
    for pos, st in chosen.items():
        steps[pos] = st
    if evaluator is not None and cfg.bias_correction == "sequential":
        _sequential_correction(plan, steps, layers, fits, stats, evaluator, cfg.switchable)
    new_plan = Plan(plan.name, dict(plan.buffers), steps, list(plan.inputs), list(plan.outputs), plan.source_kind)
    report = build_report(plan, new_plan, layers, why, cfg, evaluator, placement, notes)
    return new_plan, report
