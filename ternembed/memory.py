# SPDX-License-Identifier: Apache-2.0
"""The static arena: where every activation tensor and scratch buffer of a Plan lives.

The firmware has one byte array, the arena; every Buffer of the Plan (model inputs and
outputs included: the caller writes inputs into it and reads outputs from it) and every
step's scratch buffer gets an offset in it. Offsets are fixed at export time.

Algorithm (the shape of TFLite Micro's GreedyMemoryPlanner, plus aliasing):

1. Lifetimes. Step t of the Plan runs at time t. A buffer is live from the step that writes
   it (time 0 for model inputs) to the last step that reads it; model outputs stay live to
   the end. A step's scratch buffer is live during that step only.
2. Aliasing. Buffers that may share bytes are merged into one block whose lifetime is the
   union of theirs:
   - a `copy` step (RESHAPE, SQUEEZE, EXPAND_DIMS) aliases its output to its input: the
     bytes are the same and neither is written again, so this is always safe (the copy
     kernel is a no-op when both pointers are equal);
   - an elementwise kernel whose C code reads element i before it writes element i
     (`INPLACE_KERNELS`) writes over its input when that input is read by no later step and
     is not a model output (in place).
3. Placement. Blocks are sorted (by size, largest first) and each is put at the lowest
   aligned offset where it overlaps no already placed block that is live at the same time.
   Several sort orders, with and without in-place merging, are tried; the smallest arena
   wins. Every result is checked: no two blocks that are live together share a byte.

Row-streamed segments (segments.py): every buffer a segment's steps read or write is live for
the whole segment (its steps run interleaved), and its intermediates take only their window's
bytes. No step of a segment works in place.

Model inputs are not preserved by an invocation (TFLM behaves the same); write them before
every te_model_invoke().
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from .errors import TernembedError
from .kernelspec import TERNARY_KERNELS, scratch_bytes, spec
from .plan import Buffer, Plan, Step
from .segments import accumulates, accumulator_bytes, windowed
from .variants import step_variant

DEFAULT_ALIGNMENT = 8  # bytes: enough for float32 and for LDRD/word access by every kernel

# Kernels whose output may be the same memory as their first input (see the C sources:
# each reads element i, or a whole row, before writing it). Same size in bytes only.
INPLACE_KERNELS: set[str] = {
    "relu_s8", "relu6_s8", "logistic_s8", "tanh_s8", "requantize_s8", "softmax_s8",
    "add_s8", "mul_s8", "sub_s8", "squared_difference_s8", "maximum_s8", "minimum_s8", "prelu_s8",
    "table_s8",
}
# Kernels whose output is byte-for-byte their input (aliased, never copied).
ALIAS_KERNELS: set[str] = {"copy"}


class MemoryPlanError(TernembedError):
    """The arena plan is inconsistent (a bug) or impossible."""


# ---- scratch sizes, one small function per kernel that needs scratch -----------------------

ScratchFn = Callable[[Plan, Step], int]
SCRATCH: dict[str, ScratchFn] = {}


def scratch_size(*kernels: str):
    def register(fn: ScratchFn) -> ScratchFn:
        for k in kernels:
            SCRATCH[k] = fn
        return fn
    return register


def conv_direct(plan: Plan, step: Step) -> bool:
    """te_conv_s8's im2col-free path: 1x1, stride 1, no padding, OW == W, OH <= H."""
    p = step.params
    x = plan.buffers[step.inputs[0]].shape
    kh, kw = p["weights"].shape[1:3]
    oh, ow = p["out_hw"]
    return (kh == 1 and kw == 1 and tuple(p["stride"]) == (1, 1) and tuple(p["pad"]) == (0, 0)
            and ow == x[2] and oh <= x[1])


@scratch_size("conv_s8")
def _conv_scratch(plan: Plan, step: Step) -> int:
    """te_conv_s8_get_buffer_size(): 2 * KH * KW * C int8 (two im2col rows); none on the direct path."""
    if conv_direct(plan, step):
        return 0
    _, kh, kw, cin = step.params["weights"].shape
    return 2 * int(kh) * int(kw) * int(cin)


# Ternary kernels (te_kernels_ternary.h): te_*_t2/to/p2_s8_get_buffer_size() and, for the
# table-lookup variants, te_fc_t2_lut_s8/te_conv_t2_lut_s8_get_buffer_size(). The Python mirror of
# those C functions is kernelspec.scratch_bytes (also used by the cost model), one copy to keep in
# step with the C; tests/test_codegen_ternary.py compares both with the C functions through ctypes.

@scratch_size(*TERNARY_KERNELS)
def _ternary_scratch(plan: Plan, step: Step) -> int:
    """The scratch of the C function the emitter calls for this step (its variant): FC input
    dims {rows, 1, 1, K}; conv/depthwise K = KH*KW*C (depthwise KH*KW per channel)."""
    p = step.params
    fam = spec(step.kernel).family
    if fam == "fc":
        in_shape: tuple[int, ...] = (int(p.get("rows", 1)), int(p["depth"]))
    else:
        in_shape = tuple(int(d) for d in plan.buffers[step.inputs[0]].shape)
    return int(scratch_bytes(step.kernel, p, in_shape, step_variant(step)))


def step_scratch_bytes(plan: Plan, step: Step) -> int:
    fn = SCRATCH.get(step.kernel)
    return int(fn(plan, step)) if fn else 0


# ---- the plan --------------------------------------------------------------------------------

@dataclass
class Block:
    """A region of the arena: one or more aliased buffers, or one step's scratch."""

    name: str
    kind: str  # "tensor" or "scratch"
    buffers: tuple[int, ...]  # Buffer indices sharing these bytes (empty for scratch)
    step: int | None  # position in plan.steps of the scratch's step
    size: int  # bytes actually used (largest member)
    first: int  # first step (time) it is live
    last: int  # last step it is live
    offset: int = -1

    @property
    def end(self) -> int:
        return self.offset + self.size

    def live_with(self, other: "Block") -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    arena_bytes: int
    alignment: int
    offsets: dict[int, int]  # Buffer index -> byte offset in the arena
    scratch: dict[int, tuple[int, int]]  # step position -> (offset, bytes)
    blocks: list[Block]
    strategy: str = ""
    lower_bound: int = 0  # max over time of the live bytes: no plan can be smaller
    buffer_bytes: dict[int, int] = field(default_factory=dict)

    def pointer(self, buffer: int) -> int:
        return self.offsets[buffer]

    def table(self, plan: Plan | None = None) -> str:
        """A readable table of the arena, one line per block, by offset."""
        rows = [("offset", "bytes", "live", "kind", "what")]
        for b in sorted(self.blocks, key=lambda b: (b.offset, -b.size)):
            if b.kind == "scratch":
                what = f"scratch of step {b.step}"
                if plan is not None:
                    st = plan.steps[b.step]
                    what += f" ({st.op_type} op {st.op_index}, {st.kernel})"
            else:
                names = []
                for i in b.buffers:
                    nm = plan.buffers[i].name if plan is not None else ""
                    names.append(f"#{i} {nm!r}" if nm else f"#{i}")
                what = " = ".join(names)
            rows.append((str(b.offset), str(b.size), f"{b.first}..{b.last}", b.kind, what))
        w = [max(len(r[k]) for r in rows) for k in range(4)]
        lines = [f"{r[0]:>{w[0]}}  {r[1]:>{w[1]}}  {r[2]:<{w[2]}}  {r[3]:<{w[3]}}  {r[4]}" for r in rows]
        lines.append(f"arena: {self.arena_bytes} bytes (alignment {self.alignment}; "
                     f"peak live bytes {self.lower_bound}; {self.strategy})")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "arena_bytes": self.arena_bytes,
            "alignment": self.alignment,
            "peak_live_bytes": self.lower_bound,
            "strategy": self.strategy,
            "buffers": {str(i): {"offset": o, "bytes": self.buffer_bytes.get(i, 0)}
                        for i, o in sorted(self.offsets.items())},
            "scratch": {str(s): {"offset": o, "bytes": n} for s, (o, n) in sorted(self.scratch.items())},
        }


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def lifetimes(plan: Plan) -> dict[int, tuple[int, int]]:
    """Buffer index -> (first, last) step during which it must hold its value."""
    n = len(plan.steps)
    end = max(n - 1, 0)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in plan.inputs:
        first[i] = 0
        last[i] = 0
    for t, step in enumerate(plan.steps):
        for i in step.inputs:
            if i not in first:
                raise MemoryPlanError(f"{plan.name}: step {t} ({step.op_type} op {step.op_index}) reads "
                                      f"buffer #{i} before any step writes it")
            last[i] = max(last[i], t)
        for i in step.outputs:
            if i in first and i not in plan.inputs:
                raise MemoryPlanError(f"{plan.name}: buffer #{i} is written by two steps")
            first.setdefault(i, t)
            last[i] = max(last.get(i, t), t)
    for i in plan.outputs:
        if i not in first:
            raise MemoryPlanError(f"{plan.name}: model output #{i} is never written")
        last[i] = end
    for a, b, _ in plan.segments:
        for step in plan.steps[a:b + 1]:
            for i in step.inputs + step.outputs:
                first[i], last[i] = min(first[i], a), max(last[i], b)
    return {i: (first[i], last[i]) for i in first}


class _Groups:
    """Union-find over buffer indices."""

    def __init__(self, items: Iterable[int]):
        self.parent = {i: i for i in items}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _nbytes(buf: Buffer) -> int:
    return int(buf.nbytes)


def buffer_bytes(plan: Plan) -> dict[int, int]:
    """Bytes each buffer takes in the arena: its size, or its window's in a streamed segment."""
    sizes = {i: _nbytes(b) for i, b in plan.buffers.items()}
    sizes.update(windowed(plan))
    return sizes


def _blocks(plan: Plan, life: dict[int, tuple[int, int]], inplace: bool) -> list[Block]:
    groups = _Groups(life)
    sizes = buffer_bytes(plan)
    streamed = {t for a, b, _ in plan.segments for t in range(a, b + 1)}
    span = dict(life)

    def group_span(root: int) -> tuple[int, int]:
        members = [i for i in life if groups.find(i) == root]
        return min(span[i][0] for i in members), max(span[i][1] for i in members)

    outputs = set(plan.outputs)
    for t, step in enumerate(plan.steps):
        if not step.inputs or not step.outputs:
            continue
        src, dst = step.inputs[0], step.outputs[0]
        bs, bd = plan.buffers[src], plan.buffers[dst]
        if sizes[src] != sizes[dst] or t in streamed:
            continue
        if step.kernel in ALIAS_KERNELS:
            groups.union(src, dst)
        elif inplace and step.kernel in INPLACE_KERNELS and bs.dtype == bd.dtype:
            root = groups.find(src)
            _, g_last = group_span(root)
            members = {i for i in life if groups.find(i) == root}
            # The input's bytes must be dead after this step, and not be a model output;
            # the other inputs of the step must not live in the same block.
            if g_last == t and not (members & outputs) and \
                    all(groups.find(j) != root for j in step.inputs[1:]):
                groups.union(src, dst)

    by_root: dict[int, list[int]] = {}
    for i in life:
        by_root.setdefault(groups.find(i), []).append(i)
    blocks = []
    for root, members in sorted(by_root.items()):
        members.sort()
        first = min(life[i][0] for i in members)
        last = max(life[i][1] for i in members)
        size = max(sizes[i] for i in members)
        blocks.append(Block(f"t{root}", "tensor", tuple(members), None, size, first, last))
    for t, step in enumerate(plan.steps):
        n = step_scratch_bytes(plan, step)
        if n > 0:
            blocks.append(Block(f"s{t}", "scratch", (), t, n, t, t))
    for a, b, _ in plan.segments:  # a streamed global pool's sums: kept across the segment's rows
        for t in range(a, b + 1):
            if accumulates(plan, plan.steps[t]):
                blocks.append(Block(f"s{t}", "scratch", (), t, accumulator_bytes(plan, plan.steps[t]), a, b))
    return blocks


def _place(blocks: list[Block], order: list[int], align: int) -> int:
    placed: list[Block] = []
    for k in order:
        b = blocks[k]
        busy = sorted((p for p in placed if p.live_with(b)), key=lambda p: p.offset)
        offset = 0
        for p in busy:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.end, align))
        b.offset = offset
        placed.append(b)
    return _align(max((b.end for b in blocks), default=0), align)


_ORDERS: dict[str, Callable[[Block], tuple]] = {
    "size": lambda b: (-b.size, b.first, b.last),
    "size*lifetime": lambda b: (-b.size * (b.last - b.first + 1), -b.size, b.first),
    "lifetime": lambda b: (-(b.last - b.first), -b.size, b.first),
    "first use": lambda b: (b.first, -b.size),
}


def check(mem: MemoryPlan, plan: Plan) -> None:
    """Raise MemoryPlanError if two blocks live at the same time share a byte, or a buffer
    or scratch region falls outside the arena or is misaligned."""
    blocks = mem.blocks
    for a_i, a in enumerate(blocks):
        if a.offset < 0 or a.end > mem.arena_bytes or a.offset % mem.alignment:
            raise MemoryPlanError(f"{plan.name}: block {a.name} at {a.offset}+{a.size} is outside "
                                  f"the {mem.arena_bytes}-byte arena or misaligned")
        for b in blocks[a_i + 1:]:
            if a.live_with(b) and a.offset < b.end and b.offset < a.end:
                raise MemoryPlanError(f"{plan.name}: blocks {a.name} and {b.name} overlap while "
                                      "both are live")
    for i, off in mem.offsets.items():
        if off + mem.buffer_bytes.get(i, _nbytes(plan.buffers[i])) > mem.arena_bytes:
            raise MemoryPlanError(f"{plan.name}: buffer #{i} ends past the arena")


def plan_memory(plan: Plan, alignment: int = DEFAULT_ALIGNMENT, inplace: bool = True) -> MemoryPlan:
    """The smallest arena found over a few greedy orders (with and without in-place reuse)."""
    if alignment < 1 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment}")
    life = lifetimes(plan)
    best: tuple[int, str, list[Block]] | None = None
    for use_inplace in ((True, False) if inplace else (False,)):
        for name, key in _ORDERS.items():
            blocks = _blocks(plan, life, use_inplace)
            order = sorted(range(len(blocks)), key=lambda k: key(blocks[k]))
            total = _place(blocks, order, alignment)
            label = f"greedy by {name}" + (", in place" if use_inplace else "")
            if best is None or total < best[0]:
                best = (total, label, blocks)
    total, label, blocks = best
    offsets: dict[int, int] = {}
    scratch: dict[int, tuple[int, int]] = {}
    for b in blocks:
        if b.kind == "scratch":
            scratch[b.step] = (b.offset, b.size)
        for i in b.buffers:
            offsets[i] = b.offset
    n = max(len(plan.steps), 1)
    live = np.zeros(n, dtype=np.int64)
    for b in blocks:
        live[b.first:b.last + 1] += b.size
    sizes = buffer_bytes(plan)
    mem = MemoryPlan(total, alignment, offsets, scratch, blocks, label, int(live.max(initial=0)),
                     {i: sizes[i] for i in offsets})
    check(mem, plan)
    return mem
