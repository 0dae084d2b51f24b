# SPDX-License-Identifier: Apache-2.0
"""C call emitters of the data-movement kernels and the elementwise kernels added with them
(firmware/include/te_kernels_data.h)."""
from __future__ import annotations

import numpy as np

from ..kernels.data import AxisGatherParams, GatherParams, PackParams, ReduceParams, StridedCopyParams
from ..kernels.transpose_conv import TransposeConvParams
from ..kernels.unary import PreluParams
from ..plan import Step
from .core import EmitContext, c_int, dims4, emitter


@emitter("strided_copy_s8", sources=("te_strided_copy_s8.c",), header="te_kernels_data.h")
def _strided_copy(ctx: EmitContext, step: Step) -> list[str]:
    params = ctx.params_struct("te_strided_copy_params", "params", ctx.find_param(StridedCopyParams, "copy"))
    return [ctx.call(f"te_strided_copy_s8({ctx.input()}, {ctx.output()}, {params})")]


@emitter("pack_s8", sources=("te_concat_s8.c",), header="te_kernels_misc.h")
def _pack(ctx: EmitContext, step: Step) -> list[str]:
    p = ctx.find_param(PackParams, "pack")
    name = f"tep_{ctx.pos}_inputs"
    ptrs = ", ".join(ctx.tensor(i, "const int8_t") for i in step.inputs)
    ctx._out.structs.append(f"static const int8_t *const {name}[{len(step.inputs)}] = {{{ptrs}}};")
    ones = ctx.table("axis_sizes", [1] * p.count, "int32")
    return [ctx.call(f"te_concat_s8({name}, {ones}, {p.count}, {c_int(p.outer)}, {c_int(p.inner)}, "
                     f"{ctx.output()})")]


def _binary(ctx: EmitContext, step: Step, fn: str) -> list[str]:
    """te_<fn>_s8 on equal shapes, else te_<fn>_bcast_s8 over 4-D dims; a te_add_params if the op has one."""
    p = step.params.get("op")
    params = "" if p is None else ", " + ctx.params_struct("te_add_params", "params", p)
    a, b = (ctx.buffer(i) for i in step.inputs[:2])
    out = ctx.buffer(step.outputs[0])
    if tuple(a.shape) == tuple(out.shape) and tuple(b.shape) == tuple(out.shape):
        return [ctx.call(f"te_{fn}_s8({ctx.input(0)}, {ctx.input(1)}, {ctx.output()}, {c_int(out.size)}{params})")]
    d1, d2 = ctx.dims("dims1", dims4(a.shape, ctx)), ctx.dims("dims2", dims4(b.shape, ctx))
    d3 = ctx.dims("out_dims", np.broadcast_shapes(dims4(a.shape), dims4(b.shape)))
    return [ctx.call(f"te_{fn}_bcast_s8({d1}, {ctx.input(0)}, {d2}, {ctx.input(1)}, {d3}, {ctx.output()}"
                     f"{params})")]


@emitter("sub_s8", "squared_difference_s8", sources=("te_sub_s8.c",), header="te_kernels_data.h")
def _sub(ctx: EmitContext, step: Step) -> list[str]:
    return _binary(ctx, step, step.kernel[:-3])


@emitter("maximum_s8", "minimum_s8", sources=("te_minmax_s8.c",), header="te_kernels_data.h")
def _minmax(ctx: EmitContext, step: Step) -> list[str]:
    return _binary(ctx, step, step.kernel[:-3])


@emitter("table_s8", sources=("te_table_s8.c",), header="te_kernels_data.h")
def _table(ctx: EmitContext, step: Step) -> list[str]:
    table = ctx.array("table", "int8")
    n = c_int(ctx.buffer(step.outputs[0]).size)
    return [ctx.call(f"te_table_s8({ctx.input(0, 'const int8_t')}, {ctx.output(0, 'int8_t')}, {n}, {table})")]


@emitter("prelu_s8", sources=("te_prelu_s8.c",), header="te_kernels_data.h")
def _prelu(ctx: EmitContext, step: Step) -> list[str]:
    params = ctx.params_struct("te_prelu_params", "params", ctx.find_param(PreluParams, "op"))
    x_shape, alpha_shape = step.params["shapes"]
    alpha = ctx.array("alpha", "int8") if "alpha" in step.params else ctx.input(1)
    out = ctx.buffer(step.outputs[0])
    if tuple(x_shape) == tuple(alpha_shape) == tuple(out.shape):
        return [ctx.call(f"te_prelu_s8({ctx.input()}, {alpha}, {ctx.output()}, {c_int(out.size)}, {params})")]
    d1, d2 = ctx.dims("dims1", dims4(x_shape, ctx)), ctx.dims("dims2", dims4(alpha_shape, ctx))
    d3 = ctx.dims("out_dims", dims4(out.shape, ctx))
    return [ctx.call(f"te_prelu_bcast_s8({d1}, {ctx.input()}, {d2}, {alpha}, {d3}, {ctx.output()}, {params})")]


@emitter("resize_nearest_s8", sources=("te_resize_nearest_s8.c",), header="te_kernels_data.h")
@emitter("resize_bilinear_s8", sources=("te_resize_bilinear_s8.c",), header="te_kernels_data.h")
def _resize(ctx: EmitContext, step: Step) -> list[str]:
    """Index (nearest) or tap (bilinear) tables per output row and column, computed at export."""
    in_dims = ctx.dims("in_dims", step.params["in_shape"])
    rows, cols = ctx.array("rows", "int32"), ctx.array("cols", "int32")
    n_rows, n_cols = len(step.params["rows"]), len(step.params["cols"])
    return [ctx.call(f"te_{step.kernel}({in_dims}, {ctx.input()}, {n_rows}, {n_cols}, {rows}, {cols}, "
                     f"{ctx.output()})")]


@emitter("transpose_conv_s8", sources=("te_transpose_conv_s8.c",), header="te_kernels_data.h")
def _transpose_conv(ctx: EmitContext, step: Step) -> list[str]:
    params = ctx.params_struct("te_transpose_conv_params", "params", ctx.find_param(TransposeConvParams, "op"))
    mult, shift = ctx.array("multiplier", "int32"), ctx.array("shift", "int32")
    quant = ctx.struct("te_pc_quant", "quant", f"{{{mult}, {shift}}}")
    in_dims = ctx.dims("in_dims", ctx.buffer(step.inputs[0]).shape)
    f_dims = ctx.dims("filter_dims", np.asarray(step.params["weights"]).shape)
    out_dims = ctx.dims("out_dims", ctx.buffer(step.outputs[0]).shape)
    weights, bias = ctx.array("weights", "int8"), ctx.array("bias", "int32")
    return [ctx.call(f"te_transpose_conv_s8({params}, {quant}, {in_dims}, {ctx.input()}, {f_dims}, {weights}, "
                     f"{bias}, {out_dims}, {ctx.output()})")]


@emitter("read_variable", "assign_variable", sources=("te_reshape_s8.c",), header="te_kernels_misc.h")
def _variable(ctx: EmitContext, step: Step) -> list[str]:
    """A copy between an activation and the variable's persistent buffer (te_state[])."""
    moved = ctx.buffer(step.outputs[0] if step.outputs else step.inputs[0])
    state = ctx.state(step.params["variable"], moved.nbytes)
    if "initial" in step.params:
        ctx._out.state_variable(step.params["variable"], moved.nbytes).initial = ctx.array("initial", "int8")
    if step.kernel == "read_variable":
        return [ctx.call(f"te_copy_s8({state}, {ctx.output(0, 'int8_t')}, {c_int(moved.nbytes)})")]
    return [ctx.call(f"te_copy_s8({ctx.input(0, 'const int8_t')}, {state}, {c_int(moved.nbytes)})")]


@emitter("constant_s8", sources=("te_reshape_s8.c",), header="te_kernels_misc.h")
def _constant(ctx: EmitContext, step: Step) -> list[str]:
    """A constant operand (e.g. a batch-norm scale for MUL) copied from flash into the arena."""
    data = ctx.array("data", "int8")
    return [ctx.call(f"te_copy_s8({data}, {ctx.output(0, 'int8_t')}, {c_int(ctx.buffer(step.outputs[0]).nbytes)})")]


@emitter("gather_s8", sources=("te_gather_s8.c",), header="te_kernels_data.h")
def _gather(ctx: EmitContext, step: Step) -> list[str]:
    params = ctx.params_struct("te_gather_params", "params", ctx.find_param(GatherParams, "gather"))
    indices = ctx.array("indices", "int32")
    count = len(step.params["indices"])
    return [ctx.call(f"te_gather_s8({ctx.input()}, {ctx.output()}, {indices}, {count}, {params})")]


@emitter("axis_gather_s8", sources=("te_axis_gather_s8.c",), header="te_kernels_data.h")
def _axis_gather(ctx: EmitContext, step: Step) -> list[str]:
    params = ctx.params_struct("te_axis_gather_params", "params", ctx.find_param(AxisGatherParams, "gather"))
    return [ctx.call(f"te_axis_gather_s8({ctx.input()}, {ctx.output()}, {ctx.array('offsets', 'int32')}, {params})")]


@emitter("reduce_minmax_s8", sources=("te_reduce_minmax_s8.c",), header="te_kernels_data.h")
def _reduce_minmax(ctx: EmitContext, step: Step) -> list[str]:
    params = ctx.params_struct("te_reduce_minmax_params", "params", ctx.find_param(ReduceParams, "reduce"))
    return [ctx.call(f"te_reduce_minmax_s8({ctx.input()}, {ctx.output()}, {params})")]
