# SPDX-License-Identifier: Apache-2.0
"""The registry of lowerings (TFLite op type -> Step builder) and the helpers every lowering uses.

lower.py and lower_ops.py register their functions here; lower() looks them up.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import UnsupportedOpError
from .fixedpoint import quantize_multiplier
from .graph import Graph, Op, Tensor
from .plan import Step

LOWERINGS: dict[str, Callable[[Graph, Op], Step | list[Step]]] = {}


def lowering(*op_types: str):
    def register(fn):
        for t in op_types:
            LOWERINGS[t] = fn
        return fn
    return register


def fail(op: Op, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"op {op.index} {op.type}: {why}")


# Ops that take a constant int8 operand as if it were an activation (batch-norm MUL/ADD, clipping
# MAXIMUM/MINIMUM, ...): a `constant_s8` step copies it from flash into the arena before the op.
CONST_OPERAND_OPS = {"ADD", "MUL", "SUB", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "CONCATENATION", "PACK"}


def int8_act(graph: Graph, op: Op, index: int, role: str) -> Tensor:
    t = graph.tensors[index]
    if t.is_const and op.type not in CONST_OPERAND_OPS:
        raise fail(op, f"{role} tensor '{t.name}' is a constant; only activations are supported there")
    if t.dtype != "int8" or t.quant is None:
        raise fail(op, f"{role} tensor '{t.name}' is {t.dtype}; int8 with quantization is needed")
    if t.quant.per_channel:
        raise fail(op, f"{role} tensor '{t.name}' is quantized per channel")
    return t


def act(graph: Graph, op: Op, pos: int = 0, out: bool = False) -> Tensor:
    index = op.outputs[pos] if out else op.inputs[pos]
    return int8_act(graph, op, index, "output" if out else f"input {pos}")


def wrap(op: Op, fn, *args, **kwargs):
    """Run a kernel's prepare function; its UnsupportedOpError gets the op's index and name."""
    try:
        return fn(*args, **kwargs)
    except UnsupportedOpError as exc:
        raise fail(op, str(exc)) from None


def activation_range(op: Op, out: Tensor) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized for the op's fused activation on an int8 output."""
    from .kernels.misc import activation_range as clamp_for
    act = op.options.get("fused_activation_function", "NONE")
    try:
        return clamp_for(act, out.quant.s, out.quant.zp)
    except UnsupportedOpError:
        raise fail(op, f"fused activation {act} is not supported") from None


def multipliers(in_scale: float, w_scales: np.ndarray, out_scale: float, n_out: int,
                 float_product: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-output (multiplier, shift) for in_scale * w_scale / out_scale, as TFLM's Prepare does."""
    mult = np.zeros(n_out, np.int32)
    shift = np.zeros(n_out, np.int32)
    ws = np.broadcast_to(np.asarray(w_scales, np.float32), (n_out,))
    for o in range(n_out):
        if float_product:  # per-tensor FC: TFLM multiplies the two float scales in float32
            real = float(np.float32(in_scale) * ws[o]) / float(np.float32(out_scale))
        else:
            real = float(np.float32(in_scale)) * float(ws[o]) / float(np.float32(out_scale))
        mult[o], shift[o] = quantize_multiplier(real)
    return mult, shift


def bias(graph: Graph, op: Op, index: int, n_out: int) -> np.ndarray:
    if index < 0:
        return np.zeros(n_out, np.int64)
    b = graph.tensors[index]
    if b.data is None or b.dtype != "int32":
        raise fail(op, f"bias '{b.name}' must be a constant int32 tensor (got {b.dtype})")
    return b.data.astype(np.int64).reshape(n_out)


def weights(graph: Graph, op: Op, index: int) -> Tensor:
    w = graph.tensors[index]
    if w.data is None or w.dtype != "int8" or w.quant is None:
        raise fail(op, f"weights '{w.name}' must be constant int8 with quantization (got {w.dtype})")
    if np.any(w.quant.zero_point != 0):
        raise fail(op, f"weights '{w.name}' have a nonzero zero point")
    return w
