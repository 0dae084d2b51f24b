# SPDX-License-Identifier: Apache-2.0
"""The streaming pass: which runs of steps execute row by row (segments.py says how).

Decided by measurement of the arena (memory.plan_memory), not by rule: in every maximal run of
steps that may stream, the sub-range (one row per call) that lowers the arena most is kept (ties:
the shorter; a long chain of wide windows can cost more than it saves), then the pieces of the run
beside it are searched the same way. One row per call (more only for MAC rows of few pixels,
segments.MIN_CALL_PIXELS): more rows a call are not faster where rows are wide (the 84x84
conv-pool-conv-pool model on the M4: unstreamed 15.71 M instructions, 1 row a call 15.52 M,
4 rows 15.83 M, 16 rows 15.81 M) and need larger windows.
``--optimize speed`` (and size, balanced) stream only when the arena exceeds the RAM budget;
``ram`` (the default) streams wherever the arena falls, but (given the core) only within
MAX_SLOWDOWN of the model's estimated instructions unless the unstreamed arena exceeds the budget:
every call beyond the first costs its kernel's per-call terms of the fitted cost model
(``costmodel.call_cost``; KWS's depthwise rows: ~13 K instructions a call for 64 channels).
"""
from __future__ import annotations

import copy
import dataclasses

from .memory import plan_memory
from .plan import Plan
from .segments import schedule, valid_segment


# A segment must save at least this share of the arena: row calls cost instructions (segments.py,
# MIN_CALL_PIXELS), which a few hundred bytes do not pay for (SWW: 6,656 -> 6,240 B).
MIN_SAVING = 0.1
# Issue 13: streaming may not slow a model by more than this unless the board needs the RAM.
MAX_SLOWDOWN = 0.05
OTHER_CALL_COST = 100  # instructions per extra call of a kernel without a fit (pool, elementwise): a call and dims


def _extra_calls_cost(plan: Plan, seg: tuple[int, int, int], core: str) -> float:
    from .costmodel import call_cost
    from .kernelspec import MAC_KERNELS
    order = schedule(plan, *seg).order
    total = 0.0
    for t in range(seg[0], seg[1] + 1):
        s = plan.steps[t]
        per = call_cost(s, core) if s.kernel in MAC_KERNELS else OTHER_CALL_COST
        total += per * max(order.count(t) - 1, 0)
    return total


def _model_cost(plan: Plan, core: str) -> float:
    """The MAC steps' estimated instructions (the rest is small; leaving it out is conservative)."""
    from .costmodel import estimate
    from .kernelspec import MAC_KERNELS
    total = 0.0
    for s in plan.steps:
        if s.kernel in MAC_KERNELS:
            try:
                total += estimate(s, core, s.params.get("variant", "default")).instructions
            except (KeyError, FileNotFoundError):
                pass
    return total


def _arena(plan: Plan, segments: list[tuple[int, int, int]]) -> int:
    return plan_memory(dataclasses.replace(plan, segments=sorted(segments))).arena_bytes


def _runs(plan: Plan) -> list[tuple[int, int]]:
    """Maximal (first, last) ranges that are valid segments, left to right."""
    runs, t, n = [], 0, len(plan.steps)
    while t < n - 1:
        b = t
        for e in range(t + 1, n):  # the longest valid range from t (a shorter one may be invalid)
            if valid_segment(plan, t, e) is None:
                b = e
        if b > t:
            runs.append((t, b))
            t = b + 1
        else:
            t += 1
    return runs


def _with(plan: Plan, segments: list[tuple[int, int, int]]) -> Plan:
    out = copy.copy(plan)  # keeps attributes set on the plan by passes (e.g. act4_buffers)
    out.segments = sorted(segments)
    return out


def stream_plan(plan: Plan, optimize: str = "ram", max_ram: int | None = None,
                prefer: list[tuple[int, int, int]] | None = None, core: str | None = None
                ) -> tuple[Plan, list[str]]:
    """The plan with its segments chosen, and one note per segment kept. ``prefer``: segments to keep
    if the search finds no smaller arena (a ternary plan takes its int8 plan's, which its kernel
    variants were fitted against: the greedy search alone may land elsewhere)."""
    base = plan_memory(dataclasses.replace(plan, segments=[])).arena_bytes
    if optimize != "ram" and (max_ram is None or base <= max_ram):
        return _with(plan, []), []
    chosen: list[tuple[int, int, int]] = []
    best = base
    saving = MIN_SAVING if optimize == "ram" else 0.0  # the other modes stream only to fit: any byte counts
    # the speed rule: only when the board has the RAM without streaming
    allowance = (MAX_SLOWDOWN * _model_cost(plan, core) if core and max_ram is not None and base <= max_ram
                 else None)
    spent = 0.0
    known: dict[tuple[int, int, int], float] = {}

    def extra(seg: tuple[int, int, int]) -> float:  # a segment's extra-call instructions, simulated once
        if seg not in known:
            known[seg] = _extra_calls_cost(plan, seg, core) if core else 0.0
        return known[seg]

    runs = _runs(plan)
    pending = list(runs)
    while pending:  # in each run, the sub-range that lowers the arena most; then the pieces beside it
        a, b = pending.pop(0)
        top, before = None, best
        for a2 in range(a, b):
            for b2 in range(a2 + 1, b + 1):
                if valid_segment(plan, a2, b2) is None:
                    if allowance is not None and spent + extra((a2, b2, 1)) > allowance:
                        continue
                    arena = _arena(plan, chosen + [(a2, b2, 1)])
                    if arena < best or (arena == best and top and b2 - a2 < top[1] - top[0]):
                        top, best = (a2, b2), arena
        if top is None or best > (1 - saving) * before:
            best = before
            continue
        chosen.append(top + (1,))
        spent += extra(top + (1,))
        pending += [r for r in ((a, top[0] - 1), (top[1] + 1, b)) if r[1] > r[0]]
    if prefer and all(valid_segment(plan, a, b) is None for a, b, _ in prefer) and (
            allowance is None or sum(map(extra, prefer)) <= allowance):
        arena = _arena(plan, list(prefer))
        if arena < best:
            chosen, best, spent = list(prefer), arena, sum(map(extra, prefer))
    out = _with(plan, chosen)
    notes = []
    if chosen:
        segs = ", ".join(f"{a}..{b}" for a, b, _ in sorted(chosen))
        notes.append(f"row streaming: steps {segs} run row by row; arena {base:,} -> {best:,} B"
                     + (f" (~{spent:,.0f} more instructions)" if spent else ""))
    elif allowance is not None and runs:
        notes.append(f"no row streaming: the arena fits the {max_ram:,} B budget, and streaming would cost more "
                     f"than {MAX_SLOWDOWN:.0%} of the instructions (a smaller --max-ram makes it stream)")
    return out, notes
