# SPDX-License-Identifier: Apache-2.0
"""Lowerings of the int8 data-movement ops and of the elementwise ops added with them.

Data movement (STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK, TRANSPOSE) becomes one
strided copy per output; PACK a concatenation along a new axis (kernels/data.py). TFLM
copies the bytes whatever the quantization, and so do we.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Op
from .kernels import data
from .lowering import act as _act
from .lowering import fail as _fail
from .lowering import lowering
from .lowering import wrap as _wrap
from .plan import Step


def _const_ints(graph: Graph, op: Op, pos: int, what: str) -> list[int]:
    t = graph.tensors[op.inputs[pos]] if pos < len(op.inputs) and op.inputs[pos] >= 0 else None
    if t is None or t.data is None:
        raise _fail(op, f"{what} must be a constant tensor")
    return [int(v) for v in np.asarray(t.data).ravel()]


def _copy_step(op: Op, x, out, params: data.StridedCopyParams, size: int) -> Step:
    if size != out.size:
        raise _fail(op, f"the op computes {size} values, its output '{out.name}' has shape {list(out.shape)}")
    return Step(op.index, op.type, "strided_copy_s8", [x.index], [out.index], {"copy": params})


@lowering("STRIDED_SLICE")
def _strided_slice(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    o = op.options
    starts, counts, steps, shape = _wrap(
        op, data.strided_slice_geometry, x.shape, _const_ints(graph, op, 1, "begin"),
        _const_ints(graph, op, 2, "end"), _const_ints(graph, op, 3, "strides"), o.get("begin_mask", 0),
        o.get("end_mask", 0), o.get("shrink_axis_mask", 0), o.get("ellipsis_mask", 0),
        o.get("new_axis_mask", 0))
    if o.get("offset", False):
        raise _fail(op, "STRIDED_SLICE with offset=true is not supported (TFLM ignores it)")
    p = _wrap(op, data.slice_params, x.shape, starts, counts, steps)
    return _copy_step(op, x, out, p, int(np.prod(shape, dtype=np.int64)))


@lowering("SLICE")
def _slice(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    starts, counts, steps, shape = _wrap(op, data.slice_geometry, x.shape, _const_ints(graph, op, 1, "begin"),
                                         _const_ints(graph, op, 2, "size"))
    p = _wrap(op, data.slice_params, x.shape, starts, counts, steps)
    return _copy_step(op, x, out, p, int(np.prod(shape, dtype=np.int64)))


def _parts(graph: Graph, op: Op, x, axis: int, sizes: list[int]) -> list[Step]:
    parts = _wrap(op, data.split_geometry, x.shape, axis, sizes)
    if len(parts) != len(op.outputs):
        raise _fail(op, f"{len(parts)} parts but {len(op.outputs)} outputs")
    steps = []
    for k, (starts, counts) in enumerate(parts):
        out = _act(graph, op, k, out=True)
        p = _wrap(op, data.slice_params, x.shape, starts, counts, [1] * len(counts))
        steps.append(_copy_step(op, x, out, p, int(np.prod(counts, dtype=np.int64))))
    return steps


@lowering("SPLIT")
def _split(graph: Graph, op: Op) -> list[Step]:
    axis = _const_ints(graph, op, 0, "the axis")[0]
    x = _act(graph, op, 1)
    n = len(op.outputs)
    a = axis + len(x.shape) if axis < 0 else axis
    if not 0 <= a < len(x.shape) or x.shape[a] % n:
        raise _fail(op, f"cannot split shape {list(x.shape)} into {n} equal parts along axis {axis}")
    return _parts(graph, op, x, a, [x.shape[a] // n] * n)


@lowering("SPLIT_V")
def _split_v(graph: Graph, op: Op) -> list[Step]:
    x = _act(graph, op, 0)
    sizes = _const_ints(graph, op, 1, "size_splits")
    axis = _const_ints(graph, op, 2, "the axis")[0]
    return _parts(graph, op, x, axis, sizes)


@lowering("UNPACK")
def _unpack(graph: Graph, op: Op) -> list[Step]:
    x = _act(graph, op)
    axis = int(op.options.get("axis", 0))
    a = axis + len(x.shape) if axis < 0 else axis
    if not 0 <= a < len(x.shape):
        raise _fail(op, f"axis {axis} out of range for shape {list(x.shape)}")
    return _parts(graph, op, x, a, [1] * x.shape[a])


@lowering("TRANSPOSE")
def _transpose(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    perm = _const_ints(graph, op, 1, "the permutation")
    if len(perm) != len(x.shape):
        raise _fail(op, f"permutation {perm} for a rank-{len(x.shape)} input")
    p = _wrap(op, data.transpose_params, x.shape, perm)
    return _copy_step(op, x, out, p, x.size)


@lowering("PACK")
def _pack(graph: Graph, op: Op) -> Step:
    xs = [_act(graph, op, k) for k in range(len(op.inputs))]
    out = _act(graph, op, out=True)
    if any(tuple(x.shape) != tuple(xs[0].shape) for x in xs):
        raise _fail(op, f"inputs of different shapes {[list(x.shape) for x in xs]}")
    p = _wrap(op, data.pack_params, xs[0].shape, int(op.options.get("axis", 0)), len(xs))
    if p.outer * p.inner * p.count != out.size:
        raise _fail(op, f"packing {len(xs)} x {list(xs[0].shape)} does not give {list(out.shape)}")
    return Step(op.index, op.type, "pack_s8", [x.index for x in xs], [out.index], {"pack": p})


# ---- binary elementwise ops with broadcasting ---------------------------------------------------

@lowering("SUB", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM")
def _binary(graph: Graph, op: Op) -> Step:
    from .kernels import arith
    a, b, out = _act(graph, op, 0), _act(graph, op, 1), _act(graph, op, out=True)
    if max(len(a.shape), len(b.shape), len(out.shape)) > 4:
        raise _fail(op, "broadcasting over more than 4 dimensions is not supported")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise _fail(op, f"shapes {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    if int(np.prod(shape, dtype=np.int64)) != out.size:
        raise _fail(op, f"shapes {list(a.shape)} and {list(b.shape)} broadcast to {list(shape)}, "
                        f"not to the output's {list(out.shape)}")
    params: dict = {"shapes": (tuple(a.shape), tuple(b.shape))}
    quant = (a.quant.s, a.quant.zp, b.quant.s, b.quant.zp, out.quant.s, out.quant.zp)
    if op.type == "SUB":
        params["op"] = _wrap(op, arith.prepare_sub, *quant, op.options.get("fused_activation_function", "NONE"))
    elif op.type == "SQUARED_DIFFERENCE":
        params["op"] = _wrap(op, arith.prepare_squared_difference, *quant)
    return Step(op.index, op.type, op.type.lower() + "_s8", [a.index, b.index], [out.index], params)


# ---- activations ------------------------------------------------------------------------------

@lowering("HARD_SWISH", "LEAKY_RELU")
def _table(graph: Graph, op: Op) -> Step:
    from .kernels import unary
    x, out = _act(graph, op), _act(graph, op, out=True)
    q = (x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    if op.type == "HARD_SWISH":
        table = _wrap(op, unary.hard_swish_table, *q)
    else:
        table = unary.leaky_relu_table(*q, alpha=float(op.options.get("alpha", 0.2)))
    return Step(op.index, op.type, "table_s8", [x.index], [out.index], {"table": table})


@lowering("PRELU")
def _prelu(graph: Graph, op: Op) -> Step:
    from .kernels import unary
    x, out = _act(graph, op), _act(graph, op, out=True)
    alpha = graph.tensors[op.inputs[1]]
    if alpha.dtype != "int8" or alpha.quant is None or alpha.quant.per_channel:
        raise _fail(op, f"alpha '{alpha.name}' must be int8 with one scale (got {alpha.dtype})")
    if max(len(x.shape), len(alpha.shape), len(out.shape)) > 4:
        raise _fail(op, "broadcasting over more than 4 dimensions is not supported")
    if tuple(np.broadcast_shapes(x.shape, alpha.shape)) != tuple(out.shape):
        raise _fail(op, f"shapes {list(x.shape)} and {list(alpha.shape)} do not broadcast to {list(out.shape)}")
    p = unary.prepare_prelu(x.quant.s, x.quant.zp, alpha.quant.s, alpha.quant.zp, out.quant.s, out.quant.zp)
    params = {"op": p, "shapes": (tuple(x.shape), tuple(alpha.shape))}
    inputs = [x.index]
    if alpha.is_const:
        params["alpha"] = np.asarray(alpha.data, np.int8)
    else:
        inputs.append(alpha.index)
    return Step(op.index, op.type, "prelu_s8", inputs, [out.index], params)


@lowering("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")
def _resize(graph: Graph, op: Op) -> Step:
    """Index (nearest) or tap (bilinear) tables per output row and column, by TFLM's rules."""
    x, out = _act(graph, op), _act(graph, op, out=True)
    if len(x.shape) != 4:
        raise _fail(op, f"expects a 4-D input, got {list(x.shape)}")
    out_h, out_w = _const_ints(graph, op, 1, "the size")
    if tuple(out.shape) != (x.shape[0], out_h, out_w, x.shape[3]):
        raise _fail(op, f"output shape {list(out.shape)} is not {[x.shape[0], out_h, out_w, x.shape[3]]}")
    align, half = bool(op.options.get("align_corners", False)), bool(op.options.get("half_pixel_centers", False))
    if align and half:
        raise _fail(op, "align_corners and half_pixel_centers together (TFLM refuses it)")
    if op.type == "RESIZE_BILINEAR":
        kernel, table = "resize_bilinear_s8", data.bilinear_taps
    else:
        kernel, table = "resize_nearest_s8", data.nearest_indices
    params = {"rows": table(x.shape[1], out_h, align, half).astype(np.int32),
              "cols": table(x.shape[2], out_w, align, half).astype(np.int32), "in_shape": tuple(x.shape)}
    return Step(op.index, op.type, kernel, [x.index], [out.index], params)


# ---- TRANSPOSE_CONV --------------------------------------------------------------------------

@lowering("TRANSPOSE_CONV")
def _transpose_conv(graph: Graph, op: Op) -> Step:
    from .kernels.mac import conv_out_size
    from .kernels.misc import Range
    from .kernels.transpose_conv import TransposeConvParams
    from .lowering import activation_range
    from .lowering import bias as _bias
    from .lowering import multipliers as _multipliers
    from .lowering import weights as _weights
    x, out = _act(graph, op, 2), _act(graph, op, out=True)
    w = _weights(graph, op, op.inputs[1])
    if len(x.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        raise _fail(op, f"expects 4-D input, weights and output, got {x.shape}, {w.shape}, {out.shape}")
    n_out, kh, kw, cin = w.shape
    if cin != x.shape[3] or n_out != out.shape[3]:
        raise _fail(op, f"weights {list(w.shape)} do not fit input {list(x.shape)} and output {list(out.shape)}")
    bias = _bias(graph, op, op.inputs[3] if len(op.inputs) > 3 else -1, n_out).astype(np.int32)
    mult, shift = _multipliers(x.quant.s, w.quant.scale, out.quant.s, n_out, float_product=False)
    lo, hi = activation_range(op, out)
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    if min(sh, sw) < 1:
        raise _fail(op, "stride must be >= 1")
    padding = op.options.get("padding", "SAME")
    # TFLM pads as a convolution from the output's size
    _, pad_h = conv_out_size(out.shape[1], kh, sh, 1, padding)
    _, pad_w = conv_out_size(out.shape[2], kw, sw, 1, padding)
    p = TransposeConvParams(-x.quant.zp, out.quant.zp, sh, sw, pad_h, pad_w, Range(lo, hi))
    params = dict(weights=w.data, bias=bias, multiplier=mult, shift=shift, op=p,
                  out_hw=(int(out.shape[1]), int(out.shape[2])))
    return Step(op.index, op.type, "transpose_conv_s8", [x.index], [out.index], params,
                macs=x.size * kh * kw * n_out)


# ---- streaming state: resource variables (state.py) -----------------------------------------------

def _variable(graph: Graph, op: Op, value) -> tuple[str, dict]:
    """The variable an op reads or assigns, and its initial value if this op is its first use."""
    name = graph.resources.get(op.inputs[0])
    if name is None:
        raise _fail(op, "its resource is not named by a VAR_HANDLE of the graph")
    init = graph.variables.get(name)
    if init is None:
        raise _fail(op, f"variable '{name}' has no constant initial value (CALL_ONCE init subgraph)")
    if init.dtype != "int8" or init.size != value.size:
        raise _fail(op, f"variable '{name}' holds {init.size} {init.dtype} values, the op moves {value.size} int8")
    first = next(o for o in graph.ops if o.type in ("READ_VARIABLE", "ASSIGN_VARIABLE")
                 and graph.resources.get(o.inputs[0]) == name)
    params = {"variable": name}
    if first is op:  # the initial value travels with the first step that uses the variable
        params["initial"] = init.data.astype(np.int8).reshape(-1)
    return name, params


@lowering("READ_VARIABLE")
def _read_variable(graph: Graph, op: Op) -> Step:
    out = _act(graph, op, out=True)
    _, params = _variable(graph, op, out)
    return Step(op.index, op.type, "read_variable", [], [out.index], params)


@lowering("ASSIGN_VARIABLE")
def _assign_variable(graph: Graph, op: Op) -> Step:
    value = _act(graph, op, 1)
    _, params = _variable(graph, op, value)
    return Step(op.index, op.type, "assign_variable", [value.index], [], params)


def requantize_table(graph: Graph, op: Op) -> Step:
    """QUANTIZE between int8 and uint8 (e.g. microWakeWord's uint8 output): TFLM's Requantize of
    every possible byte, as a 256-byte table (table_s8 moves bytes, whatever their signedness)."""
    from .fixedpoint import multiply_by_quantized_multiplier
    from .kernels.misc import prepare_requantize
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    for t, role in ((x, "input"), (out, "output")):
        if t.dtype not in ("int8", "uint8") or t.quant is None or t.quant.per_channel or t.is_const:
            raise _fail(op, f"{role} tensor '{t.name}' must be an int8 or uint8 activation with one scale")
    p = _wrap(op, prepare_requantize, x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    signed = np.arange(256, dtype=np.int64) - 128  # table index = the byte read as int8, + 128
    values = signed if x.dtype == "int8" else signed & 0xFF
    lo, hi = (0, 255) if out.dtype == "uint8" else (-128, 127)
    result = multiply_by_quantized_multiplier(values - p.input_zero_point, p.multiplier, p.shift) \
        + p.output_zero_point
    table = np.clip(result, lo, hi).astype(out.dtype).view(np.int8)
    return Step(op.index, op.type, "table_s8", [x.index], [out.index], {"table": table})



@lowering("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def _depth_space(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    if len(x.shape) != 4:
        raise _fail(op, f"expects a 4-D input, got {list(x.shape)}")
    fn = data.depth_to_space_params if op.type == "DEPTH_TO_SPACE" else data.space_to_depth_params
    p = _wrap(op, fn, x.shape, int(op.options.get("block_size", 0)))
    return _copy_step(op, x, out, p, x.size)


@lowering("GATHER")
def _gather(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    if op.options.get("batch_dims", 0):
        raise _fail(op, "batch_dims is not supported")
    indices = np.asarray(_const_ints(graph, op, 1, "the indices"), np.int32)
    p = _wrap(op, data.gather_params, x.shape, int(op.options.get("axis", 0)), indices.tolist())
    if p.outer * indices.size * p.inner != out.size:
        raise _fail(op, f"gathering {indices.size} of {list(x.shape)} does not give {list(out.shape)}")
    return Step(op.index, op.type, "gather_s8", [x.index], [out.index], {"gather": p, "indices": indices})


@lowering("REVERSE_V2", "BROADCAST_TO")
def _reverse_broadcast(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    if op.type == "REVERSE_V2":
        p = _wrap(op, data.reverse_params, x.shape, _const_ints(graph, op, 1, "the axes"))
    else:
        p = _wrap(op, data.broadcast_to_params, x.shape, out.shape)
    return _copy_step(op, x, out, p, out.size)


@lowering("MIRROR_PAD")
def _mirror_pad(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    pads = _const_ints(graph, op, 1, "the paddings")
    if len(pads) != 2 * len(x.shape):
        raise _fail(op, f"{len(pads) // 2} paddings for a rank-{len(x.shape)} input")
    mode = op.options.get("mode", 0)
    reflect = mode in (0, "REFLECT")
    tables = []
    for k, d in enumerate(x.shape):
        before, after = pads[2 * k], pads[2 * k + 1]
        if min(before, after) < 0 or max(before, after) > d - (1 if reflect else 0):
            raise _fail(op, f"padding ({before}, {after}) of an axis of {d} is more than the mode allows")
        tables.append(data.mirror_indices(d, before, after, reflect))
    p, offsets = _wrap(op, data.axis_gather, x.shape, tables)
    if int(np.prod(p.count)) != out.size:
        raise _fail(op, f"padding {list(x.shape)} by {pads} does not give {list(out.shape)}")
    return Step(op.index, op.type, "axis_gather_s8", [x.index], [out.index], {"gather": p, "offsets": offsets})


@lowering("REDUCE_MAX", "REDUCE_MIN")
def _reduce_minmax(graph: Graph, op: Op) -> Step:
    x, out = _act(graph, op), _act(graph, op, out=True)
    if np.float32(x.quant.s) != np.float32(out.quant.s):
        raise _fail(op, "int8 input and output scales differ (TFLM requires them equal)")
    p = _wrap(op, data.reduce_params, x.shape, _const_ints(graph, op, 1, "the axes"), op.type == "REDUCE_MAX")
    if int(np.prod(p.keep.count)) != out.size:
        raise _fail(op, f"reducing {list(x.shape)} does not give {list(out.shape)}")
    return Step(op.index, op.type, "reduce_minmax_s8", [x.index], [out.index], {"reduce": p})
