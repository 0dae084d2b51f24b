# SPDX-License-Identifier: Apache-2.0
"""One C call emitter per kernel family: Step -> C statements (see core.py for the context).

Each emitter reads the Step's params exactly as lower.py wrote them and the emulator reads
them, and calls the C kernel declared in firmware/include/te_kernels_*.h.
"""
from __future__ import annotations

import numpy as np

from ..kernels.activation import LogisticParams, Relu6Params, ReluParams, SoftmaxParams
from ..kernels.elementwise import AddParams, MulParams
from ..kernels.misc import (ConcatParams, DequantizeParams, PadParams, QuantizeParams,
                            RequantizeParams)
from ..kernels.pool import MeanParams, PoolParams
from ..plan import Step
from .core import EmitContext, c_int, dims4, emitter


def _size(ctx: EmitContext, i: int) -> str:
    return c_int(ctx.buffer(i).size)


def _quant(ctx: EmitContext) -> str:
    mult = ctx.array("multiplier", "int32")
    shift = ctx.array("shift", "int32")
    return ctx.struct("te_pc_quant", "quant", f"{{{mult}, {shift}}}")


def _range(lo, hi) -> str:
    return f"{{{c_int(lo)}, {c_int(hi)}}}"


# ---- multiply-accumulate --------------------------------------------------------------------

@emitter("fc_s8", sources=("te_fc_s8.c", "te_nn_mat_mult_s8.c"), header="te_kernels_mac.h")
def _fc(ctx: EmitContext, step: Step) -> list[str]:
    p = step.params
    w = np.asarray(p["weights"])
    n_out, depth = int(w.shape[0]), int(p["depth"])
    rows = int(p["rows"])
    params = ctx.struct("te_fc_params", "params",
                        f"{{{c_int(p['output_offset'])}, {_range(p['act_min'], p['act_max'])}}}")
    quant = _quant(ctx)
    in_dims = ctx.dims("in_dims", (rows, 1, 1, depth))
    f_dims = ctx.dims("filter_dims", (n_out, 1, 1, depth))
    out_dims = ctx.dims("out_dims", (rows, 1, 1, n_out))
    weights = ctx.array("weights", "int8")
    bias = ctx.array("bias", "int32")
    return [ctx.checked(f"te_fc_s8({params}, {quant}, {in_dims}, {ctx.input()}, {f_dims}, "
                        f"{weights}, {bias}, {out_dims}, {ctx.output()})")]


def _conv_fields(p: dict, depth_multiplier: bool) -> str:
    sh, sw = (int(v) for v in p["stride"])
    dh, dw = (int(v) for v in p["dilation"])
    pt, pl = (int(v) for v in p["pad"])
    dm = f"{c_int(p['depth_multiplier'])}, " if depth_multiplier else ""
    return (f"{{{c_int(p['input_offset'])}, {c_int(p['output_offset'])}, {dm}{sh}, {sw}, {dh}, {dw}, "
            f"{pt}, {pl}, {_range(p['act_min'], p['act_max'])}}}")


def _conv_call(ctx: EmitContext, step: Step, function: str, depthwise: bool) -> list[str]:
    """conv_s8 and dwconv_s8 take the same arguments but for the scratch buffer (conv only)."""
    p = step.params
    params = ctx.struct("te_dwconv_params" if depthwise else "te_conv_params", "params",
                        _conv_fields(p, depthwise))
    quant = _quant(ctx)
    in_dims = ctx.dims("in_dims", ctx.buffer(step.inputs[0]).shape)
    f_dims = ctx.dims("filter_dims", np.asarray(p["weights"]).shape)
    out_dims = ctx.dims("out_dims", ctx.buffer(step.outputs[0]).shape)
    weights = ctx.array("weights", "int8")
    bias = ctx.array("bias", "int32")
    scratch = "" if depthwise else f", {ctx.scratch()}"
    return [ctx.checked(f"{function}({params}, {quant}, {in_dims}, {ctx.input()}, {f_dims}, "
                        f"{weights}, {bias}, {out_dims}, {ctx.output()}{scratch})")]


@emitter("conv_s8", sources=("te_conv_s8.c", "te_nn_mat_mult_s8.c"), header="te_kernels_mac.h")
def _conv(ctx: EmitContext, step: Step) -> list[str]:
    return _conv_call(ctx, step, "te_conv_s8", depthwise=False)


@emitter("dwconv_s8", sources=("te_dwconv_s8.c", "te_dw_span_s8.c"), header="te_kernels_mac.h")
def _dwconv(ctx: EmitContext, step: Step) -> list[str]:
    return _conv_call(ctx, step, "te_dwconv_s8", depthwise=True)


# ---- data movement -----------------------------------------------------------------------------

@emitter("copy", sources=("te_reshape_s8.c",), header="te_kernels_misc.h")
def _copy(ctx: EmitContext, step: Step) -> list[str]:
    n = c_int(ctx.buffer(step.outputs[0]).nbytes)
    return [ctx.call(f"te_copy_s8({ctx.input(0, 'const int8_t')}, {ctx.output(0, 'int8_t')}, {n})")]


@emitter("pad_s8", sources=("te_pad_s8.c",), header="te_kernels_misc.h")
def _pad(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(PadParams, "pad")
    in_dims = ctx.dims("in_dims", ctx.buffer(step.inputs[0]).shape)
    params = ctx.params_struct("te_pad_params", "params", p)
    return [ctx.call(f"te_pad_s8({in_dims}, {ctx.input()}, {ctx.output()}, {params})")]


@emitter("concat_s8", sources=("te_concat_s8.c",), header="te_kernels_misc.h")
def _concat(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(ConcatParams, "concat")
    out_shape = ctx.buffer(step.outputs[0]).shape
    axis = int(p.axis)
    outer = int(np.prod(out_shape[:axis], dtype=np.int64))
    inner = int(np.prod(out_shape[axis + 1:], dtype=np.int64))
    sizes = [int(ctx.buffer(i).shape[axis]) for i in step.inputs]
    name = f"tep_{ctx.pos}_inputs"
    ptrs = ", ".join(ctx.tensor(i, "const int8_t") for i in step.inputs)
    ctx._out.structs.append(f"static const int8_t *const {name}[{len(step.inputs)}] = {{{ptrs}}};")
    axis_sizes = ctx.table("axis_sizes", sizes, "int32")
    return [ctx.call(f"te_concat_s8({name}, {axis_sizes}, {len(step.inputs)}, {c_int(outer)}, "
                     f"{c_int(inner)}, {ctx.output()})")]


@emitter("quantize_f32_s8", "requantize_s8", sources=("te_quantize_s8.c",), header="te_kernels_misc.h")
def _quantize(ctx: EmitContext, step: Step) -> list[str]:
    src = ctx.buffer(step.inputs[0])
    n = _size(ctx, step.outputs[0])
    if src.dtype == "float32":
        p = ctx.find_param(QuantizeParams, "quantize")
        params = ctx.params_struct("te_quantize_params", "params", p)
        return [ctx.call(f"te_quantize_f32_s8({ctx.input()}, {ctx.output()}, {n}, {params})")]
    p = ctx.find_param(RequantizeParams, "requantize")
    params = ctx.params_struct("te_requantize_params", "params", p)
    return [ctx.call(f"te_requantize_s8({ctx.input()}, {ctx.output()}, {n}, {params})")]


@emitter("dequantize_s8_f32", sources=("te_dequantize_s8.c",), header="te_kernels_misc.h")
def _dequantize(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(DequantizeParams, "dequantize")
    params = ctx.params_struct("te_dequantize_params", "params", p)
    n = _size(ctx, step.inputs[0])
    return [ctx.call(f"te_dequantize_s8_f32({ctx.input()}, {ctx.output()}, {n}, {params})")]


# ---- pooling and reductions ----------------------------------------------------------------------

@emitter("avgpool_s8", "maxpool_s8", sources=("te_avgpool_s8.c", "te_maxpool_s8.c"),
         header="te_kernels_misc.h")
def _pool(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(PoolParams, "pool")
    fn = "te_avgpool_s8" if step.kernel.startswith("avg") else "te_maxpool_s8"
    in_dims = ctx.dims("in_dims", ctx.buffer(step.inputs[0]).shape)
    params = ctx.params_struct("te_pool_params", "params", p)
    return [ctx.checked(f"{fn}({in_dims}, {ctx.input()}, {ctx.output()}, {params})")]


@emitter("mean_s8", sources=("te_mean_s8.c",), header="te_kernels_misc.h")
def _mean(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(MeanParams, "mean")
    in_shape = tuple(int(d) for d in ctx.buffer(step.inputs[0]).shape)
    out_size = ctx.buffer(step.outputs[0]).size
    axes = step.params.get("axes")
    if axes is not None:
        rank = len(in_shape)
        ax = sorted({int(a) + rank if int(a) < 0 else int(a) for a in np.ravel(axes)})
        first, last = ax[0], ax[-1]
    else:  # the adjacent axes whose product is the count and leave the output's size
        first = last = None
        for a in range(len(in_shape)):
            for b in range(a, len(in_shape)):
                if (int(np.prod(in_shape[a:b + 1])) == p.count
                        and int(np.prod(in_shape[:a])) * int(np.prod(in_shape[b + 1:])) == out_size):
                    first, last = a, b
                    break
            if first is not None:
                break
        if first is None:
            raise ctx.fail(f"cannot find the reduced axes of MEAN over {in_shape} (count {p.count})")
    outer = int(np.prod(in_shape[:first], dtype=np.int64))
    inner = int(np.prod(in_shape[last + 1:], dtype=np.int64))
    params = ctx.params_struct("te_mean_params", "params", p)
    return [ctx.call(f"te_mean_s8({ctx.input()}, {ctx.output()}, {c_int(outer)}, {c_int(inner)}, "
                     f"{params})")]


# ---- elementwise ---------------------------------------------------------------------------------

def _binary(ctx: EmitContext, step: Step, name: str, ctype: str, p) -> list[str]:
    params = ctx.params_struct(ctype, "params", p)
    a, b = (ctx.buffer(i) for i in step.inputs[:2])
    out = ctx.buffer(step.outputs[0])
    if tuple(a.shape) == tuple(out.shape) and tuple(b.shape) == tuple(out.shape):
        return [ctx.call(f"{name}_s8({ctx.input(0)}, {ctx.input(1)}, {ctx.output()}, "
                         f"{_size(ctx, step.outputs[0])}, {params})")]
    da, db, do = dims4(a.shape, ctx), dims4(b.shape, ctx), dims4(out.shape, ctx)
    if any(x not in (1, o) for d in (da, db) for x, o in zip(d, do)):
        raise ctx.fail(f"cannot broadcast {a.shape} and {b.shape} to {out.shape}")
    d1, d2, d3 = ctx.dims("dims1", da), ctx.dims("dims2", db), ctx.dims("out_dims", do)
    return [ctx.call(f"{name}_bcast_s8({d1}, {ctx.input(0)}, {d2}, {ctx.input(1)}, {d3}, "
                     f"{ctx.output()}, {params})")]


@emitter("add_s8", sources=("te_add_s8.c",), header="te_kernels_misc.h")
def _add(ctx: EmitContext, step: Step) -> list[str]:
    return _binary(ctx, step, "te_add", "te_add_params", ctx.find_param(AddParams, "add"))


@emitter("mul_s8", sources=("te_mul_s8.c",), header="te_kernels_misc.h")
def _mul(ctx: EmitContext, step: Step) -> list[str]:
    return _binary(ctx, step, "te_mul", "te_mul_params", ctx.find_param(MulParams, "mul"))


@emitter("softmax_s8", sources=("te_softmax_s8.c",), header="te_kernels_misc.h")
def _softmax(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(SoftmaxParams, "op")
    shape = ctx.buffer(step.inputs[0]).shape
    depth = int(step.params.get("depth", shape[-1] if shape else 1))
    outer = ctx.buffer(step.inputs[0]).size // max(depth, 1)
    params = ctx.params_struct("te_softmax_params", "params", p)
    return [ctx.checked(f"te_softmax_s8({ctx.input()}, {ctx.output()}, {c_int(outer)}, "
                        f"{c_int(depth)}, {params})")]


def _unary(ctx: EmitContext, step: Step, fn: str, ctype: str, p) -> list[str]:
    params = ctx.params_struct(ctype, "params", p)
    return [ctx.call(f"{fn}({ctx.input()}, {ctx.output()}, {_size(ctx, step.outputs[0])}, {params})")]


@emitter("logistic_s8", sources=("te_logistic_s8.c",), header="te_kernels_misc.h")
def _logistic(ctx: EmitContext, step: Step) -> list[str]:
    return _unary(ctx, step, "te_logistic_s8", "te_logistic_params",
                  ctx.find_param(LogisticParams, "logistic"))


@emitter("tanh_s8", sources=("te_tanh_s8.c",), header="te_kernels_misc.h")
def _tanh(ctx: EmitContext, step: Step) -> list[str]:
    return _unary(ctx, step, "te_tanh_s8", "te_tanh_params", ctx.find_param(LogisticParams, "tanh"))


@emitter("relu_s8", sources=("te_relu_s8.c",), header="te_kernels_misc.h")
def _relu(ctx: EmitContext, step: Step) -> list[str]:
    return _unary(ctx, step, "te_relu_s8", "te_relu_params", ctx.find_param(ReluParams, "relu"))


@emitter("relu6_s8", sources=("te_relu_s8.c",), header="te_kernels_misc.h")
def _relu6(ctx: EmitContext, step: Step) -> list[str]:
    return _unary(ctx, step, "te_relu6_s8", "te_relu6_params", ctx.find_param(Relu6Params, "relu6"))
