# SPDX-License-Identifier: Apache-2.0
"""int4 activations: Plan -> Plan, moving chosen activation buffers to a signed 4-bit grid.

``int4_activations(plan, calib_inputs, buffers=None) -> (new_plan, report)``.

Eligible buffers are outputs of MAC steps (``fc_s8``/``conv_s8``/``dwconv_s8`` and the ternary
``*_t2_s8``/``*_p2_s8``/``*_to_s8``) that are read only by MAC steps and are not model inputs or
outputs, so no softmax/add/pool/model boundary sees a changed quantization. For each chosen
buffer the calibrated real range (the int8 plan run on ``calib_inputs``, dequantized with the
buffer's int8 scale/zero point, widened to include 0) gives a new (scale, zero point) for the
values [-8, 7]:

    scale = (hi - lo) / 15,    zp = clamp(round_half_away(-8 - lo / scale), -8, 7)

Values stay int8 numbers in the emulator (and in the arena unless packed); the producer's clamp
keeps them inside [-8, 7]. Integer changes, all from the same semantics as :mod:`lower`:

* producer: real multiplier ``M_o * s_old / s_new`` -> (multiplier, shift);
  ``output_offset = zp_new``; ``act_min/act_max`` = the fused activation's clamp (recovered
  from the int8 clamp as a real value) on the new grid, intersected with [-8, 7];
* every consumer: ``input_offset = -zp_new``; bias unfolded, moved to the new accumulator unit
  (the bias is quantized in units of s_in * s_w, so it scales by s_in_old / s_in_new) and
  re-folded: ``bias = round_half_away((bias_f - in_off_old * sum_w) * s_in_old / s_in_new)
  + in_off_new * sum_w`` with ``sum_w`` the step's
  effective integer weight sum per output (ternary: ``sum_i W[o, i] + K * offset_o`` from
  :func:`ternembed.kernels.ternary.decode_weights`; a switchable 2-D bias row by row with the
  first k planes); real multiplier ``M_o * s_in_new / s_in_old``.

A step that is both a consumer and a producer gets one requantization with both ratios applied
to its original real multiplier. The new Plan carries ``act4_buffers`` (a frozenset of buffer
indices); :func:`packed_nbytes` gives the arena size if those buffers were packed two per byte
(:func:`ternembed.pack.pack_int4`), :func:`pack_buffer`/:func:`unpack_buffer` the round trip.
"""
from __future__ import annotations

import copy
from typing import Sequence
from unittest import mock

import numpy as np

from .. import emulate, memory, pack
from ..errors import InputError
from ..fixedpoint import quantize_multiplier, round_half_away, round_half_away_array
from ..kernels.ternary import decode_weights
from ..plan import Buffer, Plan, Step
from ..kernelspec import INT8_KERNELS, TERNARY_KERNELS, spec

__all__ = ["MAC_KERNELS", "eligible_buffers", "int4_activations", "requantize_buffers",
           "packed_nbytes", "pack_buffer", "unpack_buffer", "INT4_MIN", "INT4_MAX"]

MAC_KERNELS = tuple(INT8_KERNELS) + tuple(TERNARY_KERNELS)
INT4_MIN, INT4_MAX = -8, 7
INT32_MAX = 2**31 - 1


# ------------------------------------------------------------------------------ structure
def eligible_buffers(plan: Plan) -> list[int]:
    """Buffers written by a MAC step and read (as the input) only by MAC steps."""
    producer: dict[int, Step] = {}
    readers: dict[int, list[Step]] = {}
    for s in plan.steps:
        for o in s.outputs:
            producer[o] = s
        for i in s.inputs:
            readers.setdefault(i, []).append(s)
    out = []
    for idx, buf in plan.buffers.items():
        if idx in plan.inputs or idx in plan.outputs or buf.dtype != "int8":
            continue
        p, rs = producer.get(idx), readers.get(idx, [])
        if p is None or p.kernel not in MAC_KERNELS or not rs:
            continue
        if all(r.kernel in MAC_KERNELS and r.inputs[0] == idx and len(r.inputs) == 1 for r in rs):
            out.append(idx)
    return sorted(out)


def _kind(kernel: str) -> str:
    return spec(kernel).weights  # s8 | t2 | p2 | to


def _sum_w(step: Step) -> np.ndarray:
    """Per-output sum of the effective integer weights; [P, O] for a switchable 2-D bias."""
    p = step.params
    kind = _kind(step.kernel)
    if kind == "s8":
        w = np.asarray(p["weights"], np.int64)
        if step.kernel == "dwconv_s8":  # [1, KH, KW, C*M]
            return w.reshape(-1, w.shape[-1]).sum(axis=0)
        return w.reshape(w.shape[0], -1).sum(axis=1)  # fc [O, K]; conv [O, KH, KW, C]

    def one(params: dict) -> np.ndarray:
        W, off = decode_weights(params, kind)
        s = W.sum(axis=1)
        return s + W.shape[1] * off if off is not None else s
    if np.asarray(p["bias"]).ndim == 2:
        return np.stack([one({**p, "active_planes": k}) for k in range(1, np.asarray(p["bias"]).shape[0] + 1)])
    return one(p)


def _real(step: Step) -> np.ndarray:
    m = np.asarray(step.params["multiplier"], np.float64)
    sh = np.asarray(step.params["shift"], np.float64)
    return m * np.exp2(sh - 31)


def _requant_pair(real: np.ndarray, like: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(real)]
    mult = np.array([a for a, _ in pairs], np.int32).reshape(np.shape(like))
    shift = np.array([b for _, b in pairs], np.int32).reshape(np.shape(like))
    return mult, shift


def _clamp(old: int, edge: int, zp_old: int, s_old: float, zp: int, s: float, qmin: int, qmax: int) -> int:
    """One end of the fused-activation clamp, moved from the int8 grid to the new grid."""
    if old == edge:  # no clamp at this end in the int8 step
        return qmin if edge < 0 else qmax
    real = (old - zp_old) * s_old
    return int(min(max(zp + int(round_half_away(real / s)), qmin), qmax))


# ------------------------------------------------------------------------------- the rewrite
def requantize_buffers(plan: Plan, new_q: dict[int, tuple[float, int, int, int]]) -> Plan:
    """A new Plan with buffers ``idx -> (scale, zero_point, qmin, qmax)`` requantized.

    Every buffer must be one of :func:`eligible_buffers`. With the buffer's own scale and
    zero point and (qmin, qmax) = (-128, 127) the result computes exactly what ``plan`` does.
    """
    ok = set(eligible_buffers(plan))
    bad = [i for i in new_q if i not in ok]
    if bad:
        raise InputError(f"buffers {bad} cannot change quantization (only outputs of MAC steps read "
                         f"only by MAC steps can; eligible: {sorted(ok)})")
    new = copy.deepcopy(plan)
    for step in new.steps:
        if step.kernel not in MAC_KERNELS:
            continue
        i_idx, o_idx = step.inputs[0], step.outputs[0]
        if i_idx not in new_q and o_idx not in new_q:
            continue
        p = step.params
        ratio = 1.0
        if i_idx in new_q:
            b_old = plan.buffers[i_idx]
            s_new, zp_new = float(new_q[i_idx][0]), int(new_q[i_idx][1])
            sw = _sum_w(step)
            bias_old = np.asarray(p["bias"], np.int64)
            in_off_old, in_off_new = int(p["input_offset"]), -zp_new
            bias_q = (bias_old - in_off_old * sw).astype(np.float64) * (float(b_old.scale) / s_new)
            bias = round_half_away_array(bias_q).astype(np.int64) + in_off_new * sw
            if np.any(np.abs(bias) > INT32_MAX):
                raise InputError(f"step {step.op_index} ({step.kernel}): re-folded bias exceeds int32")
            p["bias"] = bias.astype(np.int32)
            p["input_offset"] = in_off_new
            ratio *= s_new / float(b_old.scale)
        if o_idx in new_q:
            b_old = plan.buffers[o_idx]
            s_new, zp_new, qmin, qmax = new_q[o_idx]
            s_new, zp_new = float(s_new), int(zp_new)
            ratio *= float(b_old.scale) / s_new
            lo = _clamp(int(p["act_min"]), -128, b_old.zero_point, b_old.scale, zp_new, s_new, qmin, qmax)
            hi = _clamp(int(p["act_max"]), 127, b_old.zero_point, b_old.scale, zp_new, s_new, qmin, qmax)
            p["output_offset"], p["act_min"], p["act_max"] = zp_new, lo, hi
        if ratio != 1.0:
            p["multiplier"], p["shift"] = _requant_pair(_real(step) * ratio, p["multiplier"])
    for idx, (s, zp, _, _) in new_q.items():
        b = new.buffers[idx]
        new.buffers[idx] = Buffer(b.index, b.name, b.shape, b.dtype, float(s), int(zp))
    prev = set(getattr(plan, "act4_buffers", frozenset()))
    new.act4_buffers = frozenset(prev | {i for i, q in new_q.items() if (q[2], q[3]) == (INT4_MIN, INT4_MAX)})
    return new


def _int4_params(lo: float, hi: float, s_old: float) -> tuple[float, int]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0.0:
        return float(s_old), 0
    s = (hi - lo) / (INT4_MAX - INT4_MIN)
    zp = int(min(max(round_half_away(INT4_MIN - lo / s), INT4_MIN), INT4_MAX))
    return float(s), zp


def int4_activations(plan: Plan, calib_inputs: Sequence[np.ndarray] | None,
                     buffers: Sequence[int] | None = None) -> tuple[Plan, dict]:
    """Move ``buffers`` (default: every eligible one) to signed 4-bit activations."""
    if calib_inputs is None or len(calib_inputs) == 0 or any(np.asarray(x).size == 0 for x in calib_inputs):
        raise InputError("int4 activations need calibration inputs (one array per model input, "
                         "leading sample axis) to choose the 4-bit scales")
    chosen = eligible_buffers(plan) if buffers is None else sorted(int(b) for b in buffers)
    values = emulate.run(plan, list(calib_inputs), keep_all=True)
    new_q, rows = {}, []
    for idx in chosen:
        if idx not in plan.buffers:
            raise InputError(f"{plan.name} has no buffer #{idx}")
        b = plan.buffers[idx]
        real = (values[idx].astype(np.float64) - b.zero_point) * b.scale
        s, zp = _int4_params(float(real.min()), float(real.max()), b.scale)
        new_q[idx] = (s, zp, INT4_MIN, INT4_MAX)
        rows.append(dict(buffer=idx, name=b.name, size=b.size, real_min=float(real.min()),
                         real_max=float(real.max()), old_scale=float(b.scale), old_zero_point=int(b.zero_point),
                         scale=s, zero_point=zp))
    new = requantize_buffers(plan, new_q)
    report = dict(act4_buffers=sorted(new.act4_buffers), buffers=rows,
                  activation_bytes_int8=int(sum(plan.buffers[i].nbytes for i in chosen)),
                  activation_bytes_int4=int(sum(-(-plan.buffers[i].size // 2) for i in chosen)),
                  arena_bytes_int8=int(memory.plan_memory(plan).arena_bytes),
                  arena_bytes_packed=packed_nbytes(new))
    return new, report


# ------------------------------------------------------------------------------- packing
def _packed_size(plan: Plan, buf: Buffer) -> int:
    if buf.index in getattr(plan, "act4_buffers", ()):
        return -(-buf.size // 2)
    return int(buf.nbytes)


def packed_nbytes(plan: Plan) -> int:
    """Arena bytes of ``plan`` if its 4-bit buffers were stored two values per byte."""
    with mock.patch.object(memory, "_nbytes", lambda buf: _packed_size(plan, buf)):
        return int(memory.plan_memory(plan).arena_bytes)


def pack_buffer(values: np.ndarray) -> np.ndarray:
    """[N, ...] int4-valued int8 samples -> uint8 [N * ceil(size/2)] (pack's int4 format, one row a sample)."""
    v = np.asarray(values)
    return pack.pack_int4(v.reshape(len(v), -1))


def unpack_buffer(buf: np.ndarray, n: int, shape: tuple[int, ...]) -> np.ndarray:
    size = int(np.prod(shape, dtype=np.int64))
    return pack.unpack_int4(buf, n, size).astype(np.int8).reshape((n,) + tuple(shape))
