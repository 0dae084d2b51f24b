# SPDX-License-Identifier: Apache-2.0
"""Plan -> C: the emission context, the emitter registry and the model generator.

Every kernel family has one small emitter function (see emitters.py) that turns one Step
into C statements, asking the context for what the call needs:

* ``ctx.array(key)`` puts a constant array of the step's params in flash
  (``static const <type> tec_<step>_<key>[] TE_CONST_ALIGN``) and returns its name;
  every array of the model's weights goes through here, so the sum of the ``tec_`` symbols in
  the ELF is the planned weight bytes;
* ``ctx.struct(ctype, key, initializer)`` / ``ctx.dims(key, shape)`` / ``ctx.table(...)``
  put small parameter constants in flash (``tep_`` prefix) and return an expression;
* ``ctx.tensor(i)`` is the arena pointer of buffer i, ``ctx.scratch()`` the step's scratch;
* ``ctx.call(expr)`` / ``ctx.checked(expr)`` wrap a void / te_status kernel call.

Adding a kernel = writing one emitter with ``@emitter("kernel_name")`` (and, if it needs
scratch memory, one ``@scratch_size`` function in ternembed/memory.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import UnsupportedOpError
from ..memory import MemoryPlan, plan_memory
from ..plan import Plan, Step
from ..segments import WINDOW_KERNELS, accumulates, reaches, row_bytes, rows_per_call, schedule, segment_of
from .hashing import plan_hash
from .names import c_comment, c_identifier, c_string

C_TYPES = {
    "int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
    "int32": "int32_t", "uint32": "uint32_t", "float32": "float",
}
DTYPE_CODES = {"int8": 0, "float32": 1, "int16": 2, "int32": 3, "uint8": 4}
VALUES_PER_LINE = 24

Emitter = Callable[["EmitContext", Step], list[str]]
EMITTERS: dict[str, Emitter] = {}
# What each kernel needs from firmware/: C files of firmware/kernels and its header in
# firmware/include. A kernel without an entry gets every kernel source and header (safe,
# slower to build); a project gets only the sources its kernels need.
KERNEL_SOURCES: dict[str, tuple[str, ...]] = {}
KERNEL_HEADERS: dict[str, str] = {}


def emitter(*kernels: str, sources: tuple[str, ...] = (), header: str | None = None):
    """Register a function ``(ctx, step) -> list of C statements`` for kernel names, with the
    firmware/kernels C files (``sources``) and the firmware/include ``header`` it calls into."""
    def register(fn: Emitter) -> Emitter:
        for k in kernels:
            EMITTERS[k] = fn
            if sources:
                KERNEL_SOURCES[k] = tuple(sources)
            if header:
                KERNEL_HEADERS[k] = header
        return fn
    return register


# ---- C literals ------------------------------------------------------------------------------

def c_int(v) -> str:
    v = int(v)
    if v == -(2**31):
        return "(-2147483647 - 1)"
    if not -(2**31) <= v < 2**32:
        raise ValueError(f"integer {v} does not fit a 32-bit C constant")
    return str(v) + ("u" if v >= 2**31 else "")


def c_float(v) -> str:
    f = float(np.float32(v))
    if not np.isfinite(f):
        raise ValueError(f"non-finite float {v!r} cannot be a C constant")
    return f"{f.hex()}f"


def c_values(a: np.ndarray) -> str:
    """The elements of an array, comma-separated, VALUES_PER_LINE per line, indented."""
    flat = np.ascontiguousarray(a).reshape(-1)
    if flat.dtype == np.float32:
        items = [c_float(x) for x in flat.tolist()]
    elif flat.dtype == np.int32:
        items = [c_int(x) if x == -(2**31) else str(x) for x in flat.tolist()]
    else:
        items = [str(x) for x in flat.tolist()]
    lines = []
    for k in range(0, len(items), VALUES_PER_LINE):
        lines.append("    " + ", ".join(items[k:k + VALUES_PER_LINE]) + ",")
    return "\n".join(lines)


def c_struct_value(v) -> str:
    """A Python value (dataclass, tuple, int, float) as a C initializer."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return "{" + ", ".join(f".{f.name} = {c_struct_value(getattr(v, f.name))}"
                               for f in dataclasses.fields(v)) + "}"
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(c_struct_value(x) for x in v) + "}"
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        return c_int(v)
    if isinstance(v, (float, np.floating)):
        return c_float(v)
    raise TypeError(f"cannot express {v!r} in C")


# ---- generated pieces --------------------------------------------------------------------------

@dataclass
class ConstArray:
    name: str
    ctype: str
    length: int
    nbytes: int
    body: str
    comment: str
    weight: bool  # True: a Plan constant (counted as weight bytes); False: a derived table


@dataclass
class Layer:
    index: int
    name: str  # C string literal of the layer's name (escaped)
    op: str  # C string literal of the op type
    kernel: str  # C string literal of the kernel name
    comment: str  # comment-safe description
    lines: list[str]


@dataclass
class TensorInfo:
    buffer: int
    offset: int
    nbytes: int
    dtype: str
    dtype_code: int
    scale: float
    zero_point: int
    shape: tuple[int, ...]
    name_literal: str
    comment: str

    @property
    def scale_literal(self) -> str:
        return c_float(self.scale)


@dataclass
class GeneratedModel:
    plan: Plan
    memory: MemoryPlan
    model_hash: str
    name_literal: str
    name_comment: str
    arrays: list[ConstArray]
    structs: list[str]
    layers: list[Layer]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    kernels: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # firmware/include/te_kernels_*.h to include
    sources: list[str] = field(default_factory=list)  # firmware/kernels/*.c to compile
    state: list["StateVariable"] = field(default_factory=list)  # persistent buffers (resource variables)

    @property
    def state_bytes(self) -> int:
        """Bytes of te_state[], the persistent region (not part of the reused arena)."""
        return max((v.offset + v.nbytes for v in self.state), default=0)

    @property
    def arena_bytes(self) -> int:
        return self.memory.arena_bytes

    @property
    def weight_bytes(self) -> int:
        """Bytes of the Plan's constant arrays (symbols tec_*), as the ELF must show them."""
        return sum(a.nbytes for a in self.arrays if a.weight)

    @property
    def table_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays if not a.weight)


@dataclass
class StateVariable:
    """A resource variable in te_state[]: where it lives and the flash array it starts from."""

    name: str
    offset: int
    nbytes: int
    initial: str = "NULL"  # the C name of its initial value (set by the step that carries it)


# ---- the context -----------------------------------------------------------------------------

class EmitContext:
    """What an emitter may ask for while turning one Step into C (see the module docstring)."""

    def __init__(self, plan: Plan, mem: MemoryPlan, out: "_Collector", pos: int, step: Step,
                 row: "RowMode | None" = None):
        self.plan, self.mem, self._out, self.pos, self.step = plan, mem, out, pos, step
        self.prefix = f"{pos}"
        self.uses_status = False
        self.row = row

    # -- errors
    def fail(self, why: str) -> UnsupportedOpError:
        s = self.step
        return UnsupportedOpError(f"{self.plan.name}: step {self.pos} (op {s.op_index} {s.op_type}, "
                                  f"kernel {s.kernel}): {why}")

    def param(self, key: str):
        if key not in self.step.params:
            raise self.fail(f"missing parameter {key!r} (have {', '.join(sorted(self.step.params))})")
        return self.step.params[key]

    def find_param(self, cls: type, key: str | None = None):
        """The step's parameter ``key``, or else its only parameter of dataclass type ``cls``."""
        if key is not None and isinstance(self.step.params.get(key), cls):
            return self.step.params[key]
        found = [v for v in self.step.params.values() if isinstance(v, cls)]
        if len(found) != 1:
            raise self.fail(f"expected one {cls.__name__} parameter, found {len(found)}")
        return found[0]

    # -- constants in flash
    def array(self, key: str, dtype: str | None = None) -> str:
        """The step's array parameter ``key`` as a flash constant; its name (NULL if empty)."""
        a = np.asarray(self.param(key))
        if dtype is not None and a.dtype != np.dtype(dtype):
            raise self.fail(f"parameter {key!r} is {a.dtype}, the kernel needs {dtype}")
        return self._out.array(f"tec_{self.prefix}_{c_identifier(key, '')}", a, True,
                               f"step {self.pos} {key}")

    def table(self, key: str, values, dtype: str) -> str:
        """A derived constant array (not a Plan weight), e.g. the sizes for a concatenation."""
        a = np.asarray(values, dtype=dtype)
        return self._out.array(f"tep_{self.prefix}_{c_identifier(key, '')}", a, False,
                               f"step {self.pos} {key}")

    def struct(self, ctype: str, key: str, initializer: str) -> str:
        """``static const ctype tep_<step>_<key> = initializer;`` -> ``&tep_<step>_<key>``."""
        name = f"tep_{self.prefix}_{c_identifier(key, '')}"
        self._out.structs.append(f"static const {ctype} {name} = {initializer};")
        if self.row is not None and key in ("params", "in_dims", "out_dims"):
            return self.row.local(ctype, key, name)
        return f"&{name}"

    def params_struct(self, ctype: str, key: str, value) -> str:
        """A param dataclass (field names = the C struct's) as a flash constant."""
        return self.struct(ctype, key, c_struct_value(value))

    def dims(self, key: str, shape) -> str:
        """A te_dims constant from a shape (padded with 1s in front to 4 dims)."""
        n, h, w, c = dims4(shape, self)
        return self.struct("te_dims", key, f"{{{c_int(n)}, {c_int(h)}, {c_int(w)}, {c_int(c)}}}")

    # -- the arena
    def buffer(self, i: int):
        b = self.plan.buffers[i]
        if self.row is not None and i in self.row.pointers:  # one row of it
            return dataclasses.replace(b, shape=(1, 1) + tuple(b.shape[2:]))
        return b

    def tensor(self, i: int, ctype: str | None = None) -> str:
        buf = self.plan.buffers[i]
        ctype = ctype or C_TYPES[buf.dtype]
        if self.row is not None and i in self.row.pointers:
            return f"(({ctype} *){self.row.pointers[i]})"
        return f"TE_T({ctype}, {self.mem.offsets[i]})"

    def input(self, k: int = 0, ctype: str | None = None) -> str:
        return self.tensor(self.step.inputs[k], ctype)

    def output(self, k: int = 0, ctype: str | None = None) -> str:
        return self.tensor(self.step.outputs[k], ctype)

    def state(self, name: str, nbytes: int) -> str:
        """The persistent buffer of resource variable `name` (te_state[], kept across invokes)."""
        return f"TE_S(int8_t, {self._out.state_variable(name, nbytes).offset})"

    def scratch(self) -> str:
        if self.pos in self.mem.scratch:
            off, _ = self.mem.scratch[self.pos]
            return f"TE_T(void, {off})"
        return "NULL"

    # -- calls
    def checked(self, expr: str) -> str:
        return f"TE_CHECK({self.pos}, {expr});"

    def call(self, expr: str) -> str:
        return f"{expr};"


@dataclass
class RowMode:
    """Emitting one output row of a streamed step (codegen/stream.py): the step's buffers are
    row pointers, and its params / in_dims / out_dims are local copies of the flash constants
    with the fields of one row set (``pad_top``, ``out_h``; ``h``)."""

    pointers: dict[int, str]  # buffer -> C pointer expression of the row(s) the call reads/writes
    in_h: str  # C expression: input rows the call may see
    pad: str  # C expression: padding rows above them
    out_h: str  # C expression: output rows the call makes
    pre: list[str] = field(default_factory=list)

    def local(self, ctype: str, key: str, const: str) -> str:
        name = f"te_row_{key}"
        self.pre.append(f"{ctype} {name} = {const};")
        if key == "in_dims":
            self.pre.append(f"{name}.h = {self.in_h};")
        elif key == "out_dims":
            self.pre.append(f"{name}.h = {self.out_h};")
        elif ctype in ("te_conv_params", "te_dwconv_params", "te_pool_params"):
            self.pre.append(f"{name}.pad_top = {self.pad};")
            if ctype == "te_pool_params":
                self.pre.append(f"{name}.out_h = {self.out_h};")
        return f"&{name}"


def dims4(shape, ctx: EmitContext | None = None) -> tuple[int, int, int, int]:
    shape = tuple(int(d) for d in shape)
    if len(shape) > 4:
        if ctx is not None:
            raise ctx.fail(f"tensors of rank {len(shape)} > 4 are not supported")
        raise ValueError(f"rank {len(shape)} > 4")
    return (1,) * (4 - len(shape)) + shape  # type: ignore[return-value]


class _Collector:
    def __init__(self) -> None:
        self.arrays: list[ConstArray] = []
        self.structs: list[str] = []
        self._names: set[str] = set()
        self.state: dict[str, StateVariable] = {}

    def state_variable(self, name: str, nbytes: int) -> StateVariable:
        if name not in self.state:
            end = max((v.offset + v.nbytes for v in self.state.values()), default=0)
            self.state[name] = StateVariable(name, (end + 7) // 8 * 8, int(nbytes))
        return self.state[name]

    def array(self, name: str, a: np.ndarray, weight: bool, comment: str) -> str:
        if a.size == 0:
            return "NULL"
        dt = str(a.dtype)
        if dt not in C_TYPES:
            raise UnsupportedOpError(f"constant {comment}: dtype {dt} has no C type here")
        base, k = name, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        self.arrays.append(ConstArray(name, C_TYPES[dt], int(a.size), int(a.nbytes), c_values(a),
                                      c_comment(f"{comment}: {dt} {list(a.shape)}"), weight))
        return name


def _tensor_info(plan: Plan, mem: MemoryPlan, i: int) -> TensorInfo:
    b = plan.buffers[i]
    if b.dtype not in DTYPE_CODES:
        raise UnsupportedOpError(f"{plan.name}: model input/output '{b.name}' has dtype {b.dtype}")
    return TensorInfo(i, mem.offsets[i], int(b.nbytes), b.dtype, DTYPE_CODES[b.dtype],
                      float(b.scale), int(b.zero_point), tuple(b.shape), c_string(b.name),
                      c_comment(b.name))


def generate(plan: Plan, mem: MemoryPlan | None = None) -> GeneratedModel:
    """Everything model.c / model.h need, from a Plan (and its memory plan). The emitters are
    registered by the package (ternembed/codegen/__init__.py imports every emitter module)."""
    mem = mem or plan_memory(plan)
    out = _Collector()
    layers: list[Layer] = []
    for pos, step in enumerate(plan.steps):
        seg = segment_of(plan, pos)
        if seg is not None:
            lines = (segment_lines(plan, mem, out, *seg) if pos == seg[1] else
                     [f"/* streamed row by row with steps {seg[0]}..{seg[1]} (in layer {seg[1]}) */"])
        else:
            lines = emitter_of(plan, pos)(EmitContext(plan, mem, out, pos, step), step)
        out_name = plan.buffers[step.outputs[0]].name if step.outputs else ""
        layers.append(Layer(pos, c_string(out_name), c_string(step.op_type), c_string(step.kernel),
                            c_comment(f"{step.op_type} (op {step.op_index}, {step.kernel}) -> "
                                      f"{out_name!r}"), lines))
    return GeneratedModel(
        plan=plan, memory=mem, model_hash=plan_hash(plan), name_literal=c_string(plan.name),
        name_comment=c_comment(plan.name), arrays=out.arrays, structs=out.structs, layers=layers,
        inputs=[_tensor_info(plan, mem, i) for i in plan.inputs],
        outputs=[_tensor_info(plan, mem, i) for i in plan.outputs],
        kernels=sorted({s.kernel for s in plan.steps}), headers=kernel_headers(plan),
        sources=kernel_sources(plan), state=list(out.state.values()))


def segment_lines(plan: Plan, mem: MemoryPlan, out: _Collector, first: int, last: int, rows: int) -> list[str]:
    """The C of one row-streamed segment: a window per buffer (te_rowstream.h), then the calls in the
    order segments.schedule simulated, each one call of the step's own emitter in row mode."""
    sch = schedule(plan, first, last, rows)
    made_before = {i for i in sch.windows if i not in {s.outputs[0] for s in plan.steps[first:last + 1]}}
    lines = [f"/* steps {first}..{last} streamed, up to {rows} row(s) a call; windows (rows): "
             + ", ".join(f"#{i} {n}" for i, n in sorted(sch.windows.items()) if i in sch.intermediates) + " */",
             "{"]
    for i in sorted(sch.windows):
        h = int(plan.buffers[i].shape[1])
        lines.append(f"    te_window w{i} = {{TE_T(uint8_t, {mem.offsets[i]}), {row_bytes(plan, i)}, "
                     f"{sch.windows[i]}, 0, {h if i in made_before else 0}}};")
    order = out.array(f"tep_seg{first}_order", np.asarray([t - first for t in sch.order], np.uint8), False,
                      f"steps {first}..{last}: the step of every call, in order")
    pools = [t for t in range(first, last + 1) if accumulates(plan, plan.steps[t])]
    lines += [f"    int32_t te_n{t} = 0; /* input rows summed by step {t} */" for t in pools]
    lines += [f"    for (uint32_t te_e = 0; te_e < {len(sch.order)}u; ++te_e) {{",
              f"        switch ({order}[te_e]) {{"]
    for t in range(first, last + 1):
        step = plan.steps[t]
        o = step.outputs[0]
        lines.append(f"        case {t - first}: {{ /* step {t}: {c_comment(step.op_type)} {step.kernel} */")
        if t in pools:
            lines += [" " * 12 + x for x in _pool_row(plan, mem, t)] + ["            break;", "        }"]
            continue
        body = [f"const int32_t te_r = w{o}.made;"]
        window = step.kernel in WINDOW_KERNELS
        n = rows_per_call(plan, step, rows)
        if window:
            rc, h = reaches(plan, step)[0], int(plan.buffers[step.inputs[0]].shape[1])
            oh = int(plan.buffers[o].shape[1])
            body += [f"const int32_t te_n = te_r + {n} <= {oh} ? {n} : {oh} - te_r;",
                     f"const int32_t te_y0 = te_r * {rc.stride} - {rc.pad};",
                     f"const int32_t te_y1 = (te_r + te_n - 1) * {rc.stride} - {rc.pad} + {rc.extent};",
                     "const int32_t te_lo = te_y0 > 0 ? te_y0 : 0;",
                     f"const int32_t te_hi = te_y1 < {h} ? te_y1 : {h};"]
        ptrs = {}
        for k, i in enumerate(step.inputs):
            body.append(f"uint8_t *te_x{k} = te_window_row(&w{i}, {'te_lo' if window else 'te_r'});")
            ptrs[i] = f"te_x{k}"
        body.append(f"uint8_t *te_y = te_window_put(&w{o}, {'te_n' if window else '1'});")
        ptrs[o] = "te_y"
        row = RowMode(ptrs, "te_hi - te_lo" if window else "1", "te_lo - te_y0" if window else "0",
                      "te_n" if window else "1")
        call = emitter_of(plan, t)(EmitContext(plan, mem, out, t, step, row), step)
        lines += [" " * 12 + x for x in body + row.pre + call]
        lines.append("            break;")
        lines.append("        }")
    lines += ["        default:", "            break;", "        }", "    }", "}"]
    return lines


def _pool_row(plan: Plan, mem: MemoryPlan, t: int) -> list[str]:
    """One input row of a streamed global average pool (segments.accumulates)."""
    step = plan.steps[t]
    i, o = step.inputs[0], step.outputs[0]
    _, h, w, c = (int(d) for d in plan.buffers[i].shape)
    act = step.params["pool"].act
    acc = f"TE_T(int32_t, {mem.scratch[t][0]})"
    return [f"te_rows_gap_add({acc}, (const int8_t *)te_window_row(&w{i}, te_n{t}), {w}, {c}, te_n{t} == 0);",
            f"if (++te_n{t} == {h}) {{",
            f"    te_rows_gap_end({acc}, (int8_t *)te_window_put(&w{o}, 1), {c}, {h * w}, {c_int(act.min)}, "
            f"{c_int(act.max)});",
            "}"]


def emitter_of(plan: Plan, pos: int) -> Emitter:
    step = plan.steps[pos]
    fn = EMITTERS.get(step.kernel)
    if fn is None:
        raise UnsupportedOpError(
            f"{plan.name}: step {pos} (op {step.op_index} {step.op_type}) uses kernel "
            f"{step.kernel!r}, which has no C emitter yet; kernels with C code: "
            f"{', '.join(sorted(EMITTERS))}")
    return fn


def _firmware():
    from ..resources import resource_dir

    return resource_dir("firmware")


def kernel_headers(plan: Plan | None = None) -> list[str]:
    """The kernel family headers model.c includes (all of them for an undeclared kernel)."""
    kernels = {s.kernel for s in plan.steps} if plan is not None else set()
    extra = ["te_rowstream.h"] if plan is not None and plan.segments else []
    if plan is not None and kernels <= set(KERNEL_HEADERS):
        return sorted({KERNEL_HEADERS[k] for k in kernels}) + extra
    return sorted(p.name for p in (_firmware() / "include").glob("te_kernels_*.h")) + extra


def kernel_sources(plan: Plan | None = None) -> list[str]:
    """The firmware/kernels C files a plan needs (all of them for an undeclared kernel)."""
    kernels = {s.kernel for s in plan.steps} if plan is not None else set()
    if plan is not None and kernels <= set(KERNEL_SOURCES):
        return sorted({f for k in kernels for f in KERNEL_SOURCES[k]})
    return sorted(p.name for p in (_firmware() / "kernels").glob("*.c"))
