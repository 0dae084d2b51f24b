# SPDX-License-Identifier: Apache-2.0
"""Constant folding at read time: an op whose inputs are all constant (or that reads only a static
shape) is evaluated once here and its outputs become constants.

Converters leave shape arithmetic in graphs: Keras' dynamic-batch Reshape is
SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, Flatten adds REDUCE_PROD, some add CAST, GATHER,
CONCATENATION, FILL or integer arithmetic. Once the shapes are static all of it is a constant,
so the ops vanish and the RESHAPE lowers as any other. Only exact evaluations are folded:
data movement on any dtype, arithmetic on tensors without quantization parameters.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from .errors import UnsupportedOpError
from .graph import Graph, Op, Tensor
from .kernels import data

MAX_FOLDED_ELEMENTS = 1 << 20  # a folded constant goes to flash: refuse to create huge ones

Folder = Callable[[Graph, Op, list], list]
FOLDERS: dict[str, Folder] = {}


class _Skip(Exception):
    """This instance of the op is not folded (left for lowering to accept or refuse)."""


def folder(*op_types: str):
    def register(fn: Folder) -> Folder:
        for t in op_types:
            FOLDERS[t] = fn
        return fn
    return register


def fold_constants(graph: Graph) -> Graph:
    """The graph without the ops that evaluate to constants (their outputs hold the values)."""
    tensors = list(graph.tensors)
    kept: list[Op] = []
    protected = set(graph.outputs)
    for op in graph.ops:
        outs = _fold(dataclasses.replace(graph, tensors=tensors), op) \
            if op.type in FOLDERS and not protected & set(op.outputs) else None
        if outs is None:
            kept.append(op)
            continue
        for i, value in zip(op.outputs, outs):
            t = tensors[i]
            value = np.asarray(value).astype(t.dtype)
            shape = tuple(t.shape) if int(np.prod(t.shape, dtype=np.int64)) == value.size and all(
                d >= 0 for d in t.shape) else value.shape
            tensors[i] = dataclasses.replace(t, shape=shape, data=value.reshape(shape))
    if len(kept) == len(graph.ops):
        return graph
    return dataclasses.replace(graph, tensors=tensors, ops=kept)


def _fold(graph: Graph, op: Op) -> list | None:
    ins = [graph.tensors[i] if i >= 0 else None for i in op.inputs]
    needs_data = op.type != "SHAPE"
    if not ins or not op.outputs or (needs_data and any(t is not None and not t.is_const for t in ins)):
        return None
    try:
        outs = FOLDERS[op.type](graph, op, ins)
    except (_Skip, UnsupportedOpError, ValueError, IndexError, TypeError, OverflowError):
        return None  # not foldable here: lowering reports the op if it cannot run it either
    if len(outs) != len(op.outputs) or any(np.asarray(v).size > MAX_FOLDED_ELEMENTS for v in outs):
        return None
    return outs


def _ints(t: Tensor | None) -> list[int]:
    if t is None or t.data is None:
        raise _Skip
    return [int(v) for v in np.asarray(t.data).ravel()]


def _plain(ins: list, outs: list[Tensor]) -> None:
    """Arithmetic is folded only on tensors without quantization (shape and index math)."""
    if any(t is not None and t.quant is not None for t in list(ins) + outs):
        raise _Skip


def _same_quant(ins: list, outs: list[Tensor]) -> None:
    """Data movement of quantized tensors: foldable when no requantization could be involved."""
    qs = {None if t.quant is None else (tuple(t.quant.scale.tolist()), tuple(t.quant.zero_point.tolist()))
          for t in list(ins) + outs if t is not None}
    if len(qs) > 1:
        raise _Skip


# ---- shapes and data movement -----------------------------------------------------------------

@folder("SHAPE")
def _shape(graph, op, ins):
    shape = ins[0].shape
    if any(d < 0 for d in shape):
        raise _Skip
    return [np.asarray(shape, dtype=graph.tensors[op.outputs[0]].dtype)]


@folder("RANK")
def _rank(graph, op, ins):
    return [np.asarray(len(ins[0].shape))]


@folder("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(graph, op, ins):
    out = graph.tensors[op.outputs[0]]
    _same_quant(ins[:1], [out])
    x = ins[0].data
    if op.type == "RESHAPE" and len(ins) > 1 and ins[1] is not None and ins[1].data is not None:
        return [x.reshape(_ints(ins[1]))]
    if any(d < 0 for d in out.shape) or out.size != x.size:
        raise _Skip
    return [x.reshape(out.shape)]


@folder("STRIDED_SLICE")
def _strided_slice(graph, op, ins):
    out = graph.tensors[op.outputs[0]]
    _same_quant(ins[:1], [out])
    x = ins[0].data
    o = op.options
    starts, counts, steps, shape = data.strided_slice_geometry(
        x.shape, _ints(ins[1]), _ints(ins[2]), _ints(ins[3]), o.get("begin_mask", 0), o.get("end_mask", 0),
        o.get("shrink_axis_mask", 0), o.get("ellipsis_mask", 0), o.get("new_axis_mask", 0))
    return [_box(x, starts, counts, steps).reshape(shape)]


def _box(x: np.ndarray, starts, counts, steps) -> np.ndarray:
    p = data.slice_params(x.shape, starts, counts, steps)
    return x.reshape(-1)[data.copy_indices(p)].reshape(counts)


@folder("SLICE")
def _slice(graph, op, ins):
    _same_quant(ins[:1], graph.op_outputs(op))
    x = ins[0].data
    starts, counts, steps, _ = data.slice_geometry(x.shape, _ints(ins[1]), _ints(ins[2]))
    return [_box(x, starts, counts, steps)]


@folder("GATHER")
def _gather(graph, op, ins):
    _same_quant(ins[:1], graph.op_outputs(op))
    if op.options.get("batch_dims", 0):
        raise _Skip
    x, idx = ins[0].data, np.asarray(ins[1].data)
    axis = int(op.options.get("axis", 0))
    if np.any(idx < 0) or np.any(idx >= x.shape[axis]):
        raise _Skip  # TFLM refuses out-of-range indices
    return [np.take(x, idx, axis=axis)]


@folder("PACK")
def _pack(graph, op, ins):
    _same_quant(ins, graph.op_outputs(op))
    return [np.stack([t.data for t in ins], axis=int(op.options.get("axis", 0)))]


@folder("UNPACK")
def _unpack(graph, op, ins):
    _same_quant(ins, graph.op_outputs(op))
    axis = int(op.options.get("axis", 0))
    return [np.take(ins[0].data, k, axis=axis) for k in range(ins[0].data.shape[axis])]


@folder("CONCATENATION")
def _concat(graph, op, ins):
    _same_quant(ins, graph.op_outputs(op))
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _Skip
    return [np.concatenate([t.data for t in ins], axis=int(op.options.get("axis", 0)))]


@folder("TRANSPOSE")
def _transpose(graph, op, ins):
    _same_quant(ins[:1], graph.op_outputs(op))
    return [np.transpose(ins[0].data, _ints(ins[1]))]


@folder("CAST")
def _cast(graph, op, ins):
    out = graph.tensors[op.outputs[0]]
    _plain(ins, [out])
    x = ins[0].data
    if np.issubdtype(x.dtype, np.floating) and not np.issubdtype(np.dtype(out.dtype), np.floating):
        raise _Skip  # float -> int conversion rules differ between runtimes
    return [x.astype(out.dtype)]


@folder("FILL")
def _fill(graph, op, ins):
    _plain(ins, graph.op_outputs(op))
    return [np.full(_ints(ins[0]), np.asarray(ins[1].data).reshape(()))]


@folder("RANGE")
def _range(graph, op, ins):
    _plain(ins, graph.op_outputs(op))
    start, limit, delta = (np.asarray(t.data).reshape(()) for t in ins[:3])
    return [np.arange(start, limit, delta)]


@folder("DEQUANTIZE")
def _dequantize(graph, op, ins):
    if ins[0].dtype != "float16":  # float16 -> float32 is exact; int8 dequantization is not folded
        raise _Skip
    return [ins[0].data.astype(np.float32)]


# ---- arithmetic on shape tensors ----------------------------------------------------------------

_BINARY = {
    "ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "MAXIMUM": np.maximum,
    "MINIMUM": np.minimum, "FLOOR_DIV": np.floor_divide, "FLOOR_MOD": np.mod,
}


@folder(*_BINARY, "DIV")
def _binary(graph, op, ins):
    out = graph.tensors[op.outputs[0]]
    _plain(ins, [out])
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _Skip
    a, b = ins[0].data, ins[1].data
    if op.type == "DIV":
        if np.issubdtype(a.dtype, np.integer):
            if np.any(b == 0):
                raise _Skip
            return [np.trunc(a / b).astype(a.dtype)]  # TFLite integer DIV truncates
        return [np.divide(a, b)]
    if op.type in ("FLOOR_DIV", "FLOOR_MOD") and np.any(b == 0):
        raise _Skip
    return [_BINARY[op.type](a, b)]


@folder("REDUCE_PROD", "SUM", "REDUCE_MAX", "REDUCE_MIN")
def _reduce(graph, op, ins):
    _plain(ins, graph.op_outputs(op))
    fn = {"REDUCE_PROD": np.prod, "SUM": np.sum, "REDUCE_MAX": np.max, "REDUCE_MIN": np.min}[op.type]
    x = ins[0].data
    axes = tuple(a + x.ndim if a < 0 else a for a in _ints(ins[1]))
    return [fn(x, axis=axes, keepdims=bool(op.options.get("keep_dims", False))).astype(x.dtype)]


@folder("NEG")
def _neg(graph, op, ins):
    _plain(ins, graph.op_outputs(op))
    return [np.negative(ins[0].data)]
