# SPDX-License-Identifier: Apache-2.0
"""Row-streamed segments: the facts of line-buffered execution (which steps may stream, which
rows each needs, in which order rows are made, how many rows each window holds).

A segment is a run of consecutive Plan steps ``plan.segments`` names as ``(first, last, rows)``. Its
stages run interleaved, one output row at a time, so a tensor made and used only inside the
segment (an *intermediate*) never exists whole: it lives in a window of its newest rows, which
slides (memmove) when a new row comes. Tensors read from before the segment, and the one tensor
the last step writes, are whole. Output row r of a stage reads rows
``[r*stride - pad, r*stride - pad + extent)`` of an input (clipped to the tensor; rows outside
are padding to the kernel), so one row of any stage is the unchanged C kernel called with
``in.h`` = the rows it may see, ``pad_top`` = the padding rows above them and ``out.h`` = 1.
A conv/depthwise/pool stage may make ``rows`` output rows per call (``out.h`` = rows): fewer calls
(each has a set-up cost) for larger windows; elementwise stages always make one.

The order of rows is pull order, simulated here once: to make row r of a stage, first make the
rows of its inputs it needs. The same simulation gives every window's size (the most rows any
consumer needed at once, counting rows made ahead for another consumer), so the C code
(codegen/stream.py) replays ``order`` and memory.py sizes the windows; neither recomputes it.
The numpy emulator is not involved: streaming changes no integer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kernelspec import TERNARY_KERNELS, spec
from .plan import Plan, Step

# Kernels whose one output row is one call with (in.h, pad_top, out.h) changed.
WINDOW_KERNELS = {"conv_s8", "dwconv_s8", "maxpool_s8", "avgpool_s8"} | {
    k for k in TERNARY_KERNELS if spec(k).family in ("conv", "dwconv")}
# Elementwise kernels (same shape in and out): one output row reads the same row of each input.
ROW_KERNELS = {"relu_s8", "relu6_s8", "logistic_s8", "tanh_s8", "requantize_s8", "quantize_f32_s8",
               "add_s8", "mul_s8"}


@dataclass(frozen=True)
class Reach:
    """Output row r reads input rows [r*stride - pad, r*stride - pad + extent)."""

    extent: int
    stride: int
    pad: int

    def rows(self, r: int, h: int) -> tuple[int, int]:
        y0 = r * self.stride - self.pad
        return max(y0, 0), min(y0 + self.extent, h)


ROW = Reach(1, 1, 0)


def _nhwc(plan: Plan, i: int) -> bool:
    b = plan.buffers[i]
    return len(b.shape) == 4 and b.shape[0] == 1 and b.dtype in ("int8", "float32")


def reaches(plan: Plan, step: Step) -> list[Reach] | None:
    """How each input of the step is read by one output row; None if the step cannot stream."""
    if len(step.outputs) != 1 or not step.inputs or not all(_nhwc(plan, i) for i in step.inputs + step.outputs):
        return None
    if plan.buffers[step.outputs[0]].dtype != "int8":
        return None
    p = step.params
    if step.kernel in ROW_KERNELS:
        out = plan.buffers[step.outputs[0]].shape
        if any(tuple(plan.buffers[i].shape) != tuple(out) for i in step.inputs):
            return None  # broadcasting: not row by row
        if step.kernel != "quantize_f32_s8" and any(plan.buffers[i].dtype != "int8" for i in step.inputs):
            return None
        return [ROW] * len(step.inputs)
    if step.kernel not in WINDOW_KERNELS or len(step.inputs) != 1:
        return None
    if plan.buffers[step.inputs[0]].dtype != "int8":
        return None
    if accumulates(plan, step):
        return [ROW]  # one input row per call, summed into the accumulator
    if "pool" in p:
        pp = p["pool"]
        return [Reach(int(pp.filter_h), int(pp.stride_h), int(pp.pad_top))]
    kh = int(p["kernel_hw"][0]) if "kernel_hw" in p else int(np.asarray(p["weights"]).shape[1])
    dh, sh, pt = int(p["dilation"][0]), int(p["stride"][0]), int(p["pad"][0])
    return [Reach((kh - 1) * dh + 1, sh, pt)]


def accumulates(plan: Plan, step: Step) -> bool:
    """A global average pool (one output pixel per channel over every input pixel): streamed, it
    sums each input row into int32 accumulators as the row comes (te_rows_gap_add) and writes
    its output after the last row, so its input never needs more than one row."""
    if step.kernel != "avgpool_s8" or "pool" not in step.params:
        return False
    pp = step.params["pool"]
    _, h, w, _ = plan.buffers[step.inputs[0]].shape
    return (pp.out_h, pp.out_w, pp.pad_top, pp.pad_left) == (1, 1, 0, 0) and pp.filter_h >= h and pp.filter_w >= w


def accumulator_bytes(plan: Plan, step: Step) -> int:
    """int32 per channel, live for the whole segment."""
    return 4 * int(plan.buffers[step.inputs[0]].shape[3])


def row_bytes(plan: Plan, i: int) -> int:
    b = plan.buffers[i]
    return int(b.nbytes) // int(b.shape[1])


@dataclass(frozen=True)
class Schedule:
    """The replayable order of one segment and the window of every buffer it touches."""

    first: int
    last: int
    rows: int  # output rows per call of a WINDOW_KERNELS stage
    order: tuple[int, ...]  # step position of every call, in order
    windows: dict[int, int]  # every buffer a stage reads or writes -> rows held (H when whole)
    intermediates: frozenset[int]  # the windowed buffers (never whole)

    def window_bytes(self, plan: Plan, i: int) -> int:
        return self.windows[i] * row_bytes(plan, i)


def valid_segment(plan: Plan, first: int, last: int) -> str | None:
    """Why steps first..last cannot be one segment (None if they can)."""
    if not 0 <= first < last < len(plan.steps):
        return f"steps {first}..{last} are not a range of at least two steps"
    if last - first > 255:
        return f"steps {first}..{last}: more than 256 steps (the C order table holds a byte a call)"
    for t in range(first, last + 1):
        if reaches(plan, plan.steps[t]) is None:
            return f"step {t} ({plan.steps[t].kernel}) cannot stream row by row"
    readers: dict[int, set[int]] = {}
    for t, s in enumerate(plan.steps):
        for i in s.inputs:
            readers.setdefault(i, set()).add(t)
    for t in range(first, last):
        i = plan.steps[t].outputs[0]
        r = readers.get(i, set())
        if not r or not r <= set(range(t + 1, last + 1)) or i in plan.outputs:
            return f"the output of step {t} is read outside the segment"
    return None


# Output pixels one call of a conv/depthwise stage makes at least: every call has a set-up (the
# DSP depthwise kernel's per-4-channel tables: ~210 instructions per channel a call on the M4; the
# matrix product's lone last pixel), which rows of a few pixels do not pay back (SWW's 1-pixel rows:
# +46% instructions; KWS's 5-pixel rows: +37% with 1 row a call, +18% with 2). Pools are plain loops.
MIN_CALL_PIXELS = 8


def rows_per_call(plan: Plan, step: Step, rows: int) -> int:
    """Output rows one call of the step makes, at most (an accumulating pool: input rows): the
    segment's rows, or for a MAC stage more when its rows have fewer than MIN_CALL_PIXELS pixels."""
    if step.kernel not in WINDOW_KERNELS or accumulates(plan, step):
        return 1
    if "pool" in step.params:
        return rows
    return max(rows, -(-MIN_CALL_PIXELS // int(plan.buffers[step.outputs[0]].shape[2])))


def schedule(plan: Plan, first: int, last: int, rows: int = 1) -> Schedule:
    """Pull-order simulation of steps first..last (see the module docstring)."""
    why = valid_segment(plan, first, last)
    if why:
        raise ValueError(f"{plan.name}: {why}")
    if rows < 1:
        raise ValueError(f"{plan.name}: rows per call must be >= 1, got {rows}")
    steps = plan.steps
    producer = {steps[t].outputs[0]: t for t in range(first, last + 1)}
    inter = frozenset(steps[t].outputs[0] for t in range(first, last))
    made = {i: 0 for i in producer}
    span = {i: 1 for i in inter}
    order: list[int] = []

    calls = {t: 0 for t in range(first, last + 1)}

    def make(t: int) -> None:
        s = steps[t]
        r = calls[t]  # the first output row (an accumulating stage: input row) of this call
        o = s.outputs[0]
        n = 1 if accumulates(plan, s) else min(rows_per_call(plan, s, rows), int(plan.buffers[o].shape[1]) - r)
        for i, reach in zip(s.inputs, reaches(plan, s)):
            if i not in producer:
                continue
            h = int(plan.buffers[i].shape[1])
            lo, hi = reach.rows(r, h)[0], reach.rows(r + n - 1, h)[1]
            while made[i] < hi:
                make(producer[i])
            if i in inter:
                span[i] = max(span[i], made[i] - lo)
        order.append(t)
        if accumulates(plan, s):
            calls[t] += 1
            made[o] += calls[t] == plan.buffers[s.inputs[0]].shape[1]
        else:
            calls[t] += n
            made[o] += n
            if o in inter:
                span[o] = max(span[o], n)  # room for the rows the call writes

    out = steps[last].outputs[0]
    while made[out] < plan.buffers[out].shape[1]:
        make(last)
    windows = {i: int(plan.buffers[i].shape[1]) for t in range(first, last + 1)
               for i in steps[t].inputs + steps[t].outputs}
    windows.update(span)
    return Schedule(first, last, rows, tuple(order), windows, inter)


def schedules(plan: Plan) -> list[Schedule]:
    return [schedule(plan, *seg) for seg in plan.segments]


def windowed(plan: Plan) -> dict[int, int]:
    """Every intermediate buffer of the plan's segments -> its window bytes."""
    out: dict[int, int] = {}
    for s in schedules(plan):
        for i in s.intermediates:
            out[i] = s.window_bytes(plan, i)
    return out


def segment_of(plan: Plan, t: int) -> tuple[int, int, int] | None:
    return next((seg for seg in plan.segments if seg[0] <= t <= seg[1]), None)
