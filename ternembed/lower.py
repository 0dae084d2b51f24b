# SPDX-License-Identifier: Apache-2.0
"""Lowering: an int8 Graph -> a Plan of kernel calls with constants in final integer form.

This is TFLite Micro's "Prepare" step done once, at export time: zero points folded
into biases, real multipliers turned into fixed-point (multiplier, shift) pairs,
fused activations turned into clamps, SAME/VALID padding turned into offsets.
"""
from __future__ import annotations

import numpy as np

from .errors import ModelError, UnsupportedOpError
from .graph import Graph, Op, Tensor
from .kernels.mac import conv_out_size
from .lowering import CONST_OPERAND_OPS, LOWERINGS, activation_range, lowering
from .lowering import act as _act
from .lowering import bias as _bias
from .lowering import fail as _fail
from .lowering import int8_act as _int8_act
from .lowering import multipliers as _multipliers
from .lowering import weights as _weights
from .lowering import wrap as _wrap
from .plan import Buffer, Plan, Step

def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def unsupported_reason(graph: Graph, op: Op) -> str | None:
    """Why this op cannot be lowered, or None when it can."""
    if op.type not in LOWERINGS:
        return f"op {op.type} is not supported"
    try:
        lower_op(graph, op)
    except UnsupportedOpError as exc:
        return str(exc).split(": ", 1)[-1]
    return None


def lower_op(graph: Graph, op: Op):
    """The op's Step(s); a damaged op (missing operands, impossible shapes) is a ModelError naming it."""
    try:
        return LOWERINGS[op.type](graph, op)  # one Step, or one per output (SPLIT, UNPACK)
    except _DAMAGE as exc:
        raise _malformed(graph, op, exc) from None


_DAMAGE = (IndexError, KeyError, TypeError, ValueError, OverflowError)  # what a damaged op makes a lowering raise


def _malformed(graph: Graph, op: Op, exc: Exception) -> ModelError:
    return ModelError(f"{graph.name}: op {op.index} {op.type} is malformed ({type(exc).__name__}: {exc})")


def lower(graph: Graph) -> Plan:
    """Lower a full-integer graph. Float and hybrid graphs go through calibrate.quantize_graph first."""
    steps: list[Step] = []
    materialized: set[int] = set()
    for op in graph.ops:
        if op.type not in LOWERINGS:
            raise UnsupportedOpError(
                f"{graph.name}: op {op.index} {op.type} is not supported; supported: {', '.join(supported_ops())}")
        if not op.inputs or not (op.outputs or op.type == "ASSIGN_VARIABLE"):
            raise ModelError(f"{graph.name}: op {op.index} {op.type} has no inputs or no outputs")
        try:
            lowered = lower_op(graph, op)
            for i in op.inputs if op.type in CONST_OPERAND_OPS else ():
                if i >= 0 and graph.tensors[i].is_const and i not in materialized:
                    materialized.add(i)
                    steps.append(Step(op.index, op.type, "constant_s8", [], [i],
                                      {"data": graph.tensors[i].data.astype(np.int8)}))
            steps.extend(lowered if isinstance(lowered, list) else [lowered])
        except UnsupportedOpError as exc:
            raise UnsupportedOpError(f"{graph.name}: {exc}") from None
        except _DAMAGE as exc:
            raise _malformed(graph, op, exc) from None
    used = {i for s in steps for i in s.inputs + s.outputs} | set(graph.inputs) | set(graph.outputs)
    buffers = {i: _buffer(graph.tensors[i]) for i in sorted(used)}
    plan = Plan(graph.name, buffers, steps, list(graph.inputs), list(graph.outputs), graph.kind)
    _check_shapes(plan)
    return plan


def _check_shapes(plan: Plan) -> None:
    """Run every step once on zeros: a model whose stored shapes contradict its ops is refused
    here, naming the op, instead of failing later inside a kernel or on the device."""
    from .emulate import ADAPTERS, STATE_KERNELS, initial_state, run_state_step
    if not plan.inputs or not plan.outputs:
        raise ModelError(f"{plan.name}: the model declares no inputs or no outputs")
    for buf in plan.buffers.values():
        if any(d < 0 for d in buf.shape):
            raise ModelError(f"{plan.name}: tensor '{buf.name}' has a dynamic or negative shape "
                             f"{list(buf.shape)}; export the model with fixed shapes")
        if buf.size > 1 << 26:
            raise ModelError(f"{plan.name}: tensor '{buf.name}' of shape {list(buf.shape)} is far too large "
                             "for a microcontroller")
    values = {i: np.zeros((1,) + plan.buffers[i].sample_shape, plan.buffers[i].dtype) for i in plan.inputs}
    state = initial_state(plan)
    for step in plan.steps:
        if any(i not in values for i in step.inputs):
            raise ModelError(f"{plan.name}: op {step.op_index} {step.op_type} reads a tensor no earlier op writes")
        if step.kernel in STATE_KERNELS:
            run_state_step(plan, step, [values[i] for i in step.inputs], values, state)
            continue
        out = plan.buffers[step.outputs[0]]
        try:
            result = np.asarray(ADAPTERS[step.kernel](step, [values[i] for i in step.inputs]))
        except (IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
            raise ModelError(f"{plan.name}: op {step.op_index} {step.op_type}: tensor shapes do not fit "
                             f"the op ({type(exc).__name__}: {exc})") from None
        if result.size != out.size:
            raise ModelError(f"{plan.name}: op {step.op_index} {step.op_type} computes {result.size} values "
                             f"but its output tensor '{out.name}' has shape {list(out.shape)}")
        values[step.outputs[0]] = result.reshape((1,) + out.sample_shape).astype(out.dtype)


def _buffer(t: Tensor) -> Buffer:
    q = t.quant
    return Buffer(t.index, t.name, tuple(t.shape), t.dtype,
                  q.s if q is not None else 1.0, q.zp if q is not None else 0)


# ---- helpers shared by the lowerings -------------------------------------------------------

def _fold_bias(bias: np.ndarray, w2d: np.ndarray, input_offset: int) -> np.ndarray:
    """bias + input_offset * sum(w): the zero-point term, computed once here, not per inference."""
    folded = bias + input_offset * w2d.astype(np.int64).sum(axis=1)
    if np.any(np.abs(folded) > 2**31 - 1):
        raise UnsupportedOpError("bias plus the input zero-point term exceeds int32")
    return folded.astype(np.int32)


# ---- multiply-accumulate ops -------------------------------------------------------------------

@lowering("FULLY_CONNECTED")
def _fc(graph: Graph, op: Op) -> Step:
    x = _int8_act(graph, op, op.inputs[0], "input")
    out = _int8_act(graph, op, op.outputs[0], "output")
    w = _weights(graph, op, op.inputs[1])
    if op.options.get("weights_format", 0) not in (0, "DEFAULT"):
        raise _fail(op, "shuffled weights format is not supported")
    n_out, k = w.shape
    if x.size % k:
        raise _fail(op, f"input size {x.size} is not a multiple of the weights' depth {k}")
    bias = _bias(graph, op, op.inputs[2] if len(op.inputs) > 2 else -1, n_out)
    mult, shift = _multipliers(x.quant.s, w.quant.scale, out.quant.s, n_out,
                               float_product=not w.quant.per_channel)
    lo, hi = activation_range(op, out)
    in_off = -x.quant.zp
    w2d = w.data.reshape(n_out, k)
    params = dict(weights=w2d, bias=_fold_bias(bias, w2d, in_off), multiplier=mult, shift=shift,
                  input_offset=in_off, output_offset=out.quant.zp, act_min=lo, act_max=hi,
                  rows=x.size // k, depth=k)
    return Step(op.index, op.type, "fc_s8", [x.index], [out.index], params, macs=x.size // k * n_out * k)


def _conv_geometry(op: Op, x: Tensor, kh: int, kw: int) -> dict:
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    if min(sh, sw, dh, dw) < 1:
        raise _fail(op, "stride and dilation must be >= 1")
    pad = op.options.get("padding", "SAME")
    oh, pt = conv_out_size(x.shape[1], kh, sh, dh, pad)
    ow, pl = conv_out_size(x.shape[2], kw, sw, dw, pad)
    return dict(stride=(sh, sw), dilation=(dh, dw), pad=(pt, pl), out_hw=(oh, ow))


@lowering("CONV_2D")
def _conv(graph: Graph, op: Op) -> Step:
    x = _int8_act(graph, op, op.inputs[0], "input")
    out = _int8_act(graph, op, op.outputs[0], "output")
    w = _weights(graph, op, op.inputs[1])
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise _fail(op, f"expects 4-D input and weights, got {x.shape} and {w.shape}")
    n_out, kh, kw, cin = w.shape
    if cin != x.shape[3]:
        raise _fail(op, f"grouped convolution ({x.shape[3]} input channels, {cin} per filter) is not supported")
    bias = _bias(graph, op, op.inputs[2] if len(op.inputs) > 2 else -1, n_out)
    mult, shift = _multipliers(x.quant.s, w.quant.scale, out.quant.s, n_out, float_product=False)
    lo, hi = activation_range(op, out)
    geo = _conv_geometry(op, x, kh, kw)
    in_off = -x.quant.zp
    w2d = w.data.reshape(n_out, -1)
    params = dict(weights=w.data, bias=_fold_bias(bias, w2d, in_off), multiplier=mult, shift=shift,
                  input_offset=in_off, output_offset=out.quant.zp, act_min=lo, act_max=hi, **geo)
    oh, ow = geo["out_hw"]
    return Step(op.index, op.type, "conv_s8", [x.index], [out.index], params,
                macs=x.shape[0] * oh * ow * n_out * kh * kw * cin)


@lowering("DEPTHWISE_CONV_2D")
def _dwconv(graph: Graph, op: Op) -> Step:
    x = _int8_act(graph, op, op.inputs[0], "input")
    out = _int8_act(graph, op, op.outputs[0], "output")
    w = _weights(graph, op, op.inputs[1])
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise _fail(op, f"expects 4-D input and weights, got {x.shape} and {w.shape}")
    _, kh, kw, n_out = w.shape
    cin = x.shape[3]
    if n_out % cin:
        raise _fail(op, f"{n_out} output channels is not a multiple of {cin} input channels")
    mult_dm = n_out // cin
    bias = _bias(graph, op, op.inputs[2] if len(op.inputs) > 2 else -1, n_out)
    mult, shift = _multipliers(x.quant.s, w.quant.scale, out.quant.s, n_out, float_product=False)
    lo, hi = activation_range(op, out)
    geo = _conv_geometry(op, x, kh, kw)
    in_off = -x.quant.zp
    w_oc = w.data.reshape(kh * kw, n_out).T  # [out channel, taps] for the bias fold
    params = dict(weights=w.data, bias=_fold_bias(bias, w_oc, in_off), multiplier=mult, shift=shift,
                  input_offset=in_off, output_offset=out.quant.zp, act_min=lo, act_max=hi,
                  depth_multiplier=mult_dm, **geo)
    oh, ow = geo["out_hw"]
    return Step(op.index, op.type, "dwconv_s8", [x.index], [out.index], params,
                macs=x.shape[0] * oh * ow * n_out * kh * kw)


# ---- data movement ---------------------------------------------------------------------------

@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
def _reshape(graph: Graph, op: Op) -> Step:
    x, out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if x.size != out.size:
        raise _fail(op, f"reshape from {x.shape} to {out.shape} changes the size")
    if x.dtype != out.dtype:
        raise _fail(op, f"reshape changes the type from {x.dtype} to {out.dtype}")
    return Step(op.index, op.type, "copy", [x.index], [out.index], {})


# ---- the other int8 ops: TFLM's Prepare is in the kernel modules (kernels/*.py) ----------------

@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def _pool(graph: Graph, op: Op) -> Step:
    from .kernels.pool import prepare_pool2d
    x, out = _act(graph, op), _act(graph, op, out=True)
    if len(x.shape) != 4:
        raise _fail(op, f"expects a 4-D input, got {x.shape}")
    o = op.options
    p = _wrap(op, prepare_pool2d, x.shape[1], x.shape[2], o.get("filter_height", 1), o.get("filter_width", 1),
              o.get("stride_h", 1), o.get("stride_w", 1), o.get("padding", "VALID"),
              o.get("fused_activation_function", "NONE"), x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    kernel = "avgpool_s8" if op.type == "AVERAGE_POOL_2D" else "maxpool_s8"
    return Step(op.index, op.type, kernel, [x.index], [out.index], {"pool": p})


@lowering("ADD", "MUL")
def _binary(graph: Graph, op: Op) -> Step:
    from .kernels.elementwise import prepare_add, prepare_mul
    a, b, out = _act(graph, op, 0), _act(graph, op, 1), _act(graph, op, out=True)
    if len(out.shape) > 4:
        raise _fail(op, f"broadcasting over {len(out.shape)} dimensions is not supported (at most 4)")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise _fail(op, f"shapes {a.shape} and {b.shape} do not broadcast") from None
    prepare = prepare_add if op.type == "ADD" else prepare_mul
    p = _wrap(op, prepare, a.quant.s, a.quant.zp, b.quant.s, b.quant.zp, out.quant.s, out.quant.zp,
              op.options.get("fused_activation_function", "NONE"))
    kernel = "add_s8" if op.type == "ADD" else "mul_s8"
    return Step(op.index, op.type, kernel, [a.index, b.index], [out.index], {"op": p})


@lowering("SOFTMAX")
def _softmax(graph: Graph, op: Op) -> Step:
    from .kernels.activation import prepare_softmax
    x, out = _act(graph, op), _act(graph, op, out=True)
    p = _wrap(op, prepare_softmax, op.options.get("beta", 1.0), x.quant.s, out.quant.s, out.quant.zp)
    depth = x.shape[-1] if x.shape else 1
    return Step(op.index, op.type, "softmax_s8", [x.index], [out.index], {"op": p, "depth": depth})


@lowering("LOGISTIC", "TANH")
def _sigmoid_like(graph: Graph, op: Op) -> Step:
    from .kernels.activation import prepare_logistic, prepare_tanh
    x, out = _act(graph, op), _act(graph, op, out=True)
    prepare = prepare_logistic if op.type == "LOGISTIC" else prepare_tanh
    p = _wrap(op, prepare, x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    return Step(op.index, op.type, op.type.lower() + "_s8", [x.index], [out.index], {"op": p})


@lowering("RELU", "RELU6")
def _relu(graph: Graph, op: Op) -> Step:
    from .kernels.activation import prepare_relu, prepare_relu6
    x, out = _act(graph, op), _act(graph, op, out=True)
    if op.type == "RELU":
        p = _wrap(op, prepare_relu, x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    else:
        if (np.float32(x.quant.s), x.quant.zp) != (np.float32(out.quant.s), out.quant.zp):
            raise _fail(op, "int8 RELU6 needs equal input and output quantization (TFLM ignores the output's)")
        p = _wrap(op, prepare_relu6, x.quant.s, x.quant.zp)
    return Step(op.index, op.type, op.type.lower() + "_s8", [x.index], [out.index], {"op": p})


@lowering("QUANTIZE")
def _quantize(graph: Graph, op: Op) -> Step:
    from .kernels.misc import prepare_quantize, prepare_requantize
    if "uint8" in (graph.tensors[op.inputs[0]].dtype, graph.tensors[op.outputs[0]].dtype):
        from .lower_ops import requantize_table
        return requantize_table(graph, op)  # int8 <-> uint8 at a model's edge
    x, out = graph.tensors[op.inputs[0]], _act(graph, op, out=True)
    if x.dtype == "float32" and not x.is_const:
        p = prepare_quantize(out.quant.s, out.quant.zp)
        return Step(op.index, op.type, "quantize_f32_s8", [x.index], [out.index], {"op": p})
    x = _act(graph, op)
    p = _wrap(op, prepare_requantize, x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    return Step(op.index, op.type, "requantize_s8", [x.index], [out.index], {"op": p})


@lowering("DEQUANTIZE")
def _dequantize(graph: Graph, op: Op) -> Step:
    from .kernels.misc import prepare_dequantize
    x, out = _act(graph, op), graph.tensors[op.outputs[0]]
    if out.dtype != "float32":
        raise _fail(op, f"DEQUANTIZE to {out.dtype} is not supported (only float32)")
    p = prepare_dequantize(x.quant.s, x.quant.zp)
    return Step(op.index, op.type, "dequantize_s8_f32", [x.index], [out.index], {"op": p})


@lowering("PAD", "PADV2")
def _pad(graph: Graph, op: Op) -> Step:
    from .kernels.misc import prepare_pad
    x, out = _act(graph, op), _act(graph, op, out=True)
    pads = graph.tensors[op.inputs[1]]
    if pads.data is None:
        raise _fail(op, "paddings must be a constant tensor")
    if len(x.shape) > 4:
        raise _fail(op, f"padding a {len(x.shape)}-D tensor is not supported (at most 4-D)")
    kw = {}
    if op.type == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        c = graph.tensors[op.inputs[2]]
        if c.data is None or c.quant is None:
            raise _fail(op, "the pad value must be a quantized constant")
        kw = dict(constant_value=int(c.data.ravel()[0]), constant_scale=c.quant.s,
                  constant_zero_point=c.quant.zp, output_scale=out.quant.s)
    p = _wrap(op, prepare_pad, pads.data.reshape(-1, 2).tolist(), out.quant.zp, **kw)
    return Step(op.index, op.type, "pad_s8", [x.index], [out.index], {"op": p})


@lowering("CONCATENATION")
def _concat(graph: Graph, op: Op) -> Step:
    from .kernels.misc import prepare_concat
    xs = [_act(graph, op, k) for k in range(len(op.inputs))]
    out = _act(graph, op, out=True)
    if op.options.get("fused_activation_function", "NONE") != "NONE":
        raise _fail(op, "a fused activation on CONCATENATION is not supported")
    axis = op.options.get("axis", 0)
    p = _wrap(op, prepare_concat, axis, len(out.shape), [(x.quant.s, x.quant.zp) for x in xs],
              (out.quant.s, out.quant.zp))
    return Step(op.index, op.type, "concat_s8", [x.index for x in xs], [out.index], {"op": p})


@lowering("MEAN")
def _mean(graph: Graph, op: Op) -> Step:
    from .kernels.pool import prepare_mean
    x, out = _act(graph, op), _act(graph, op, out=True)
    axes_t = graph.tensors[op.inputs[1]]
    if axes_t.data is None:
        raise _fail(op, "the axes must be a constant tensor")
    axes = [int(a) for a in axes_t.data.ravel()]
    p = _wrap(op, prepare_mean, x.shape, axes, x.quant.s, x.quant.zp, out.quant.s, out.quant.zp)
    return Step(op.index, op.type, "mean_s8", [x.index], [out.index],
                {"op": p, "axes": axes, "keep_dims": bool(op.options.get("keep_dims", False))})


# The ops added for real converters' graphs (data movement, more elementwise ops) register here.
from . import lower_ops  # noqa: E402,F401
