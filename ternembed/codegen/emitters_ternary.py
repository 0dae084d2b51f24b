"""C call emitters for the ternary MAC kernels (fc/conv/dwconv x t2/to/p2).

The Step params are the integer contract of :mod:`ternembed.quantize.plan_pass` (module
docstring); the C API is ``firmware/include/te_kernels_ternary.h``. Every step gets:

* its flash arrays through ``ctx.array`` (so the ELF's ``tec_`` symbols are exactly the Plan's
  constants): packed ``codes``, group ``scales`` (uint8 or uint16), ``plane_shift`` (t2 with
  more than one plane), ``offset`` (to), ``bias`` (all rows: with switchable planes the bias
  is [P, O] and the call passes row ``active_planes - 1``), ``multiplier`` and ``shift``;
* one ``static const te_tern_weights`` pointing at them;
* the call of the C function of the step's *variant*: ``params["variant"]`` when the step
  names one, else ``ternembed.costmodel.choose_variant`` for :data:`DEFAULT_CORE` when that
  module provides it, else the kernel's default function (see :func:`step_variant`). The
  variant also decides the scratch size (ternembed/memory.py asks :func:`step_variant` too).
  model.c does not know its board, so an exporter that does should pin the variants for the
  board's core first: ``assign_variants(plan, board.core)``.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..errors import UnsupportedOpError
from ..kernels.ternary_cases import CORE_FILES, VARIANTS, variant_files
from ..plan import Plan, Step
from .core import EmitContext, c_int, emitter
from .emitters import _conv_fields, _quant, _range

__all__ = ["TERNARY_EMITTED", "VARIANT_FUNCTIONS", "DEFAULT_CORE", "step_variant", "assign_variants",
           "c_function"]

_FAMILIES = ("fc", "conv", "dwconv")
_KINDS = ("t2", "to", "p2")
TERNARY_EMITTED = tuple(f"{f}_{k}_s8" for k in _KINDS for f in _FAMILIES)

#: Variants other than "default" with their own C function (te_<fam>_<kind>_<variant>_s8).
VARIANT_FUNCTIONS: dict[str, tuple[str, ...]] = {
    k: tuple(v for v in vs if v != "default") for k, vs in VARIANTS.items() if len(vs) > 1}
_DEFAULT_NAMES = (None, "", "default", "dsp", "portable")
#: The core the cost model is asked about when a step names no variant: model.c does not know
#: the board (one export builds for several cores), so the exporter that does should pin the
#: variants first (:func:`assign_variants`).
DEFAULT_CORE = "cortex-m4"

_HEADER = "te_kernels_ternary.h"


def _sources(fam: str, kind: str) -> tuple[str, ...]:
    """The C files of a kernel: its own, the family driver (te_<fam>_t2_s8.c), the shared core
    and its other variants (unused functions are dropped by --gc-sections)."""
    files = [f"te_{fam}_{kind}_s8.c", f"te_{fam}_t2_s8.c", *CORE_FILES,
             *variant_files(f"{fam}_{kind}_s8")]
    if fam == "dwconv":
        files.append("te_dw_span_s8.c")  # the depthwise machinery shared with te_dwconv_s8.c
    return tuple(dict.fromkeys(files))


# ---- the variant -------------------------------------------------------------------------------

def _normalize(kernel: str, v: Any, origin: str) -> str:
    """A variant name from the step or the cost model; ValueError when there is no such C function."""
    if v is not None and not isinstance(v, str):  # e.g. a cost-model result object
        for attr in ("variant", "name"):
            if isinstance(getattr(v, attr, None), str):
                v = getattr(v, attr)
                break
        else:
            raise ValueError(f"{kernel}: {origin} gave variant {v!r}, expected a name")
    if v in _DEFAULT_NAMES:
        return "default"
    v = str(v).lower()
    if v not in VARIANT_FUNCTIONS.get(kernel, ()):
        known = ", ".join(("default",) + VARIANT_FUNCTIONS.get(kernel, ()))
        raise ValueError(f"{kernel}: {origin} asks for variant {v!r}, which has no C function; "
                         f"known: {known}")
    return v


def _costmodel_choice(step: Step, plan: Plan | None):
    try:
        from .. import costmodel  # type: ignore[attr-defined]
    except ImportError:
        return None
    fn = getattr(costmodel, "choose_variant", None)
    if fn is None:
        return None
    try:
        names = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = set()
    kw: dict[str, Any] = {}
    if "core" in names:
        kw["core"] = DEFAULT_CORE
    if "plan" in names and plan is not None:
        kw["plan"] = plan
    try:
        return fn(step, **kw)
    except FileNotFoundError:  # no measured cost table installed: the default function
        return None


def step_variant(step: Step, plan: Plan | None = None) -> str:
    """The C variant of a ternary step: "default" or e.g. "lut" (see the module docstring)."""
    if step.kernel not in TERNARY_EMITTED:
        raise ValueError(f"{step.kernel} is not a ternary kernel")
    try:
        if "variant" in step.params:
            return _normalize(step.kernel, step.params["variant"], "the step")
        if not VARIANT_FUNCTIONS.get(step.kernel):
            return "default"
        return _normalize(step.kernel, _costmodel_choice(step, plan), "ternembed.costmodel.choose_variant")
    except ValueError as exc:
        where = f"{plan.name}: " if plan is not None else ""
        raise UnsupportedOpError(f"{where}op {step.op_index} ({step.op_type}): {exc}") from None


def assign_variants(plan: Plan, core: str, optimize: str = "speed") -> Plan:
    """A copy of ``plan`` whose ternary steps with a choice of C functions carry
    ``params["variant"]`` = ``ternembed.costmodel.choose_variant(step, core, optimize)``
    (steps that already name a variant keep it)."""
    from ..costmodel import choose_variant

    steps = []
    for s in plan.steps:
        if s.kernel in VARIANT_FUNCTIONS and "variant" not in s.params:
            v = _normalize(s.kernel, choose_variant(s, core, optimize), "ternembed.costmodel.choose_variant")
            s = Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs, dict(s.params, variant=v), s.macs)
        steps.append(s)
    return Plan(plan.name, plan.buffers, steps, plan.inputs, plan.outputs, plan.source_kind)


def c_function(kernel: str, variant: str = "default") -> str:
    """te_fc_t2_s8, te_fc_t2_lut_s8, ..."""
    if variant == "default":
        return f"te_{kernel}"
    fam, kind, _ = kernel.split("_")
    return f"te_{fam}_{kind}_{variant}_s8"


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
    variant = step_variant(step, ctx.plan)
    fn = c_function(step.kernel, variant)
    lines = [] if variant == "default" else [f"/* variant {variant} */"]
    lines.append(ctx.checked(f"{fn}({params}, {quant}, {in_dims}, {ctx.input()}, {f_dims}, {weights}, "
                             f"{bias}, {out_dims}, {ctx.output()}, {ctx.scratch()})"))
    return lines


# ---- the emitters --------------------------------------------------------------------------------

def _fc(ctx: EmitContext, step: Step) -> list[str]:
    p = step.params
    kind = step.kernel.split("_")[1]
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
    kind = step.kernel.split("_")[1]
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


for _fam in _FAMILIES:
    for _kind in _KINDS:
        emitter(f"{_fam}_{_kind}_s8", sources=_sources(_fam, _kind), header=_HEADER)(
            _fc if _fam == "fc" else _conv)
del _fam, _kind
