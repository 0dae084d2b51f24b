"""C call emitters of the data-movement kernels and the elementwise kernels added with them
(firmware/include/te_kernels_data.h)."""
from __future__ import annotations

from ..kernels.data import PackParams, StridedCopyParams
from ..plan import Step
from .core import EmitContext, c_int, emitter


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
