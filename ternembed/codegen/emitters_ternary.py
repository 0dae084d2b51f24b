# SPDX-License-Identifier: Apache-2.0
"""C call emitters for the ternary MAC kernels (fc/conv/dwconv x t2/to/p2).

The Step params are the integer contract of :mod:`ternembed.quantize.plan_pass` (module
docstring); the C API is ``firmware/include/te_kernels_ternary.h``; names, files and variants
come from :mod:`ternembed.kernelspec`. Every step gets:

* its flash arrays through ``ctx.array`` (so the ELF's ``tec_`` symbols are exactly the Plan's
  constants): packed ``codes``, group ``scales`` (uint8 or uint16), ``plane_shift`` (t2 with
  more than one plane), ``offset`` (to), ``bias`` (all rows: with switchable planes the bias
  is [P, O] and the call passes row ``active_planes - 1``), ``multiplier`` and ``shift``;
* one ``static const te_tern_weights`` pointing at them;
* the call of the C function of the step's variant, which the variant pass
  (:mod:`ternembed.variants`) chose before code generation.
"""
from __future__ import annotations

import numpy as np

from ..kernelspec import TERNARY_KERNELS, spec
from ..plan import Step
from ..variants import step_variant
from .core import EmitContext, c_int, emitter
from .emitters import _conv_fields, _quant, _range

__all__ = ["TERNARY_EMITTED"]

TERNARY_EMITTED = TERNARY_KERNELS


# ---- the flash side ----------------------------------------------------------------------------

def _weights(ctx: EmitContext, step: Step, kind: str) -> tuple[str, str]:
    """The te_tern_weights constant (-> its address) and the bias row expression."""
    p = step.params
    fmt = "int4" if kind == "p2" else "2bit"
    if p.get("format") != fmt:
        raise ctx.fail(f"codes must be in the {fmt!r} format, got {p.get('format')!r}")
    O = int(ctx.param("out_channels"))
    planes = int(p.get("planes", 1)) if kind == "t2" else 1
    active = int(p.get("active_planes", planes)) if kind == "t2" else 1
    if not 1 <= active <= planes:
        raise ctx.fail(f"active_planes {active} is not in 1..{planes}")
    scales = np.asarray(ctx.param("scales"))
    if scales.dtype not in (np.uint8, np.uint16):
        raise ctx.fail(f"scales are {scales.dtype}, the kernel takes uint8 or uint16")
    codes = ctx.array("codes", "uint8")
    scales_name = ctx.array("scales", str(scales.dtype))
    pshift = ctx.array("plane_shift", "uint8") if (kind == "t2" and "plane_shift" in p) else "NULL"
    offset = ctx.array("offset", "int32") if kind == "to" else "NULL"
    levels = int(ctx.param("levels")) if kind == "p2" else 0
    bias_arr = np.asarray(ctx.param("bias"))
    bias = ctx.array("bias", "int32")
    if bias_arr.ndim == 2:  # switchable planes: one folded bias row per plane count
        if bias_arr.shape != (planes, O):
            raise ctx.fail(f"bias rows {bias_arr.shape}, expected ({planes}, {O})")
        if active > 1:
            bias = f"{bias} + {c_int((active - 1) * O)}"
    else:
        if bias_arr.size != O:
            raise ctx.fail(f"bias has {bias_arr.size} values for {O} output channels")
        if active != planes:
            raise ctx.fail(f"active_planes {active} < planes {planes} needs switchable planes "
                           "(one bias row per plane count); re-export with switchable=True")
    init = (f"{{.codes = {codes}, .scales = {scales_name}, .scale_bytes = {scales.dtype.itemsize}, "
            f".plane_shift = {pshift}, .offset = {offset}, .planes = {c_int(planes)}, "
            f".active_planes = {c_int(active)}, .group = {c_int(ctx.param('group'))}, "
            f".levels = {c_int(levels)}}}")
    return ctx.struct("te_tern_weights", "weights", init), bias


def _call(ctx: EmitContext, step: Step, params: str, in_dims: str, f_dims: str, out_dims: str,
          weights: str, bias: str, quant: str) -> list[str]:
    variant = step_variant(step)
    fn = spec(step.kernel).c_function(variant)
    lines = [] if variant == "default" else [f"/* variant {variant} */"]
    lines.append(ctx.checked(f"{fn}({params}, {quant}, {in_dims}, {ctx.input()}, {f_dims}, {weights}, "
                             f"{bias}, {out_dims}, {ctx.output()}, {ctx.scratch()})"))
    return lines


# ---- the emitters --------------------------------------------------------------------------------

def _fc(ctx: EmitContext, step: Step) -> list[str]:
    p = step.params
    kind = spec(step.kernel).weights
    O, K, rows = int(ctx.param("out_channels")), int(ctx.param("depth")), int(p.get("rows", 1))
    n_in = ctx.buffer(step.inputs[0]).size
    if rows * K != n_in:
        raise ctx.fail(f"input has {n_in} values, not rows {rows} x depth {K}")
    params = ctx.struct("te_fc_params", "params",
                        f"{{{c_int(p['output_offset'])}, {_range(p['act_min'], p['act_max'])}}}")
    quant = _quant(ctx)
    in_dims = ctx.dims("in_dims", (rows, 1, 1, K))
    f_dims = ctx.dims("filter_dims", (O, 1, 1, K))
    out_dims = ctx.dims("out_dims", (rows, 1, 1, O))
    weights, bias = _weights(ctx, step, kind)
    return _call(ctx, step, params, in_dims, f_dims, out_dims, weights, bias, quant)


def _conv(ctx: EmitContext, step: Step) -> list[str]:
    p = step.params
    kind = spec(step.kernel).weights
    dw = step.kernel.startswith("dwconv")
    x = tuple(int(d) for d in ctx.buffer(step.inputs[0]).shape)
    if len(x) != 4:
        raise ctx.fail(f"input of rank {len(x)}, expected [N, H, W, C]")
    kh, kw = (int(v) for v in ctx.param("kernel_hw"))
    O = int(ctx.param("out_channels"))
    C = x[3]
    if dw:
        if O != C * int(ctx.param("depth_multiplier")):
            raise ctx.fail(f"{O} output channels != {C} input channels x depth multiplier")
        f_shape = (1, kh, kw, O)
    else:
        f_shape = (O, kh, kw, C)
    if int(ctx.param("depth")) != (kh * kw if dw else kh * kw * C):
        raise ctx.fail(f"depth {p['depth']} does not match the {kh}x{kw} window over {C} channels")
    ctype = "te_dwconv_params" if dw else "te_conv_params"
    params = ctx.struct(ctype, "params", _conv_fields(p, dw))
    quant = _quant(ctx)
    in_dims = ctx.dims("in_dims", x)
    f_dims = ctx.dims("filter_dims", f_shape)
    out_dims = ctx.dims("out_dims", ctx.buffer(step.outputs[0]).shape)
    weights, bias = _weights(ctx, step, kind)
    return _call(ctx, step, params, in_dims, f_dims, out_dims, weights, bias, quant)


for _kernel in TERNARY_KERNELS:
    emitter(_kernel, sources=spec(_kernel).sources(), header=spec(_kernel).header)(
        _fc if spec(_kernel).family == "fc" else _conv)
del _kernel
