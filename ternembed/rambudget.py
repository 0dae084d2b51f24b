# SPDX-License-Identifier: Apache-2.0
"""RAM-aware kernel choice: the default ternary export never needs more arena than the int8 export.

``fit_arena(tplan, int8_plan, core)`` starts every ternary layer on its least-scratch variant, then:
1. while the arena exceeds the budget (the int8 plan's arena, or ``max_ram`` if smaller), the ternary
   layer whose int8 form lowers the arena most goes back to its int8 form (the int8 step of the same position);
   If the weights the ternary layers left save are fewer bytes than the ternary kernels' code
   (TERNARY_CODE_BYTES), the whole plan stays int8 (no more flash either).
2. each remaining layer takes its fastest variant (e.g. the table lookup) where the arena stays within
   the budget.
Before 1., a layer whose every ternary variant the cost model estimates slower than its int8 kernel
goes back to int8 (``speed_fallback``; otherwise it is only reported: a flash budget placed it).

``--optimize speed`` runs the same fit with the board's RAM (or ``--max-ram``) as the budget, which may
exceed the int8 arena, and without the flash rule; ``size|balanced``: the cost model alone picks.
:func:`export_variants` is the one call export (and benchmarks/memory.py) makes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .kernelspec import MAC_KERNELS
from .plan import Plan, Step

__all__ = ["TERNARY_CODE_BYTES", "RamFit", "board_ram", "export_variants", "fit_arena"]

#: Flash the ternary kernels add to a firmware (default variants, gcc -O3, Cortex-M4): measured by
#: benchmarks/memory.py, AD with a single small ternary FC layer left: 313,640 B vs 297,804 B int8.
TERNARY_CODE_BYTES = 16_000


@dataclass
class RamFit:
    plan: Plan
    budget: int  # arena bytes allowed
    int8_arena: int
    arena: int
    decisions: list[str] = field(default_factory=list)  # one line per layer changed, for reports


def _arena_with(plan: Plan, segments=()) -> int:
    """The arena of ``plan`` run with ``segments`` row-streamed (the int8 plan's: steps are parallel)."""
    from .memory import plan_memory
    return int(plan_memory(dataclasses.replace(plan, segments=sorted(segments))).arena_bytes)


def _has_choice(kernel: str) -> bool:
    """Does the kernel have more than one C function (a variant to choose)?"""
    return kernel in MAC_KERNELS and len(MAC_KERNELS[kernel].variants) > 1


def _with_variant(s: Step, v: str) -> Step:
    return Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs, dict(s.params, variant=v), s.macs)


def _replace(plan: Plan, i: int, step: Step) -> Plan:
    steps = list(plan.steps)
    steps[i] = step
    return Plan(plan.name, plan.buffers, steps, plan.inputs, plan.outputs, plan.source_kind)


def board_ram(board) -> int:
    """Arena bytes a board can give: its arena RAM, or its RAM less the stack reserve."""
    from .fit import STACK_RESERVE
    return int(board.arena_ram.size) if board.arena_ram is not None else int(board.ram.size) - STACK_RESERVE


def export_variants(tplan: Plan, int8_plan: Plan, board, optimize: str = "ram", max_ram: int | None = None,
                    speed_fallback: bool = True, segments: list | None = None) -> tuple[Plan, list[str]]:
    """The plan export builds, with every ternary step's variant pinned, and notes for the report.
    ``segments``: the int8 export's row-streamed segments, if the caller has them already."""
    from .variants import assign_variants
    if optimize not in ("ram", "speed"):
        return assign_variants(tplan, board.core, optimize), []
    above = optimize == "speed"
    # arenas as exported, i.e. with the int8 export's row-streamed segments (rowstream.py; speed streams
    # only when the budget needs it)
    if segments is None:
        from .rowstream import stream_plan
        segments = stream_plan(int8_plan, optimize, board_ram(board) if max_ram is None else max_ram,
                               core=board.core)[0].segments
    fit = fit_arena(tplan, int8_plan, board.core, max_ram if max_ram is not None or not above else board_ram(board),
                    above_int8=above, speed_fallback=speed_fallback, segments=segments)
    notes = [f"RAM budget {fit.budget:,} B (int8 arena {fit.int8_arena:,} B): arena {fit.arena:,} B"]
    return assign_variants(fit.plan, board.core, "speed"), notes + fit.decisions


def fit_arena(tplan: Plan, int8_plan: Plan, core: str, max_ram: int | None = None, above_int8: bool = False,
              speed_fallback: bool = True, segments=()) -> RamFit:
    """``tplan`` (the ternary pass's output, step for step parallel to ``int8_plan``) with kernel
    variants chosen so that its arena is at most the int8 arena (and ``max_ram``); with
    ``above_int8`` at most ``max_ram`` alone, and no flash rule. Arenas are measured with
    ``segments`` row-streamed (the int8 export's segments), both sides."""
    from .costmodel import candidates, choose_variant, estimate
    from .memory import step_scratch_bytes

    def _arena(plan: Plan) -> int:
        return _arena_with(plan, segments)

    base = _arena(int8_plan)
    budget = base if max_ram is None else int(max_ram) if above_int8 else min(base, int(max_ram))
    tern = [i for i, (a, b) in enumerate(zip(tplan.steps, int8_plan.steps)) if a is not b]
    plan = tplan
    notes: list[str] = []
    for i in list(tern):  # never slower than int8 (the cost model's estimates)
        s, b = tplan.steps[i], int8_plan.steps[i]
        t8, ts = _instructions(estimate, b, core, "default"), [_instructions(estimate, s, core, v)
                                                              for v in candidates(s)]
        if t8 is None or None in ts or min(ts) <= t8:
            continue
        what = f"op {s.op_index} {s.op_type}: ternary estimated {min(ts):,.0f} instructions > int8 {t8:,.0f}"
        if speed_fallback:
            tern.remove(i)
            plan = _replace(plan, i, b)
            notes.append(what + ": int8")
        else:
            notes.append(what + " (kept ternary: a flash budget placed it)")
    for i in tern:  # least scratch first
        s = plan.steps[i]
        if _has_choice(s.kernel) and "variant" not in s.params:
            plan = _replace(plan, i, _with_variant(s, choose_variant(s, core, "size")))
    arena = _arena(plan)
    while arena > budget and tern:
        # the layer whose int8 form lowers the arena most (ties: the larger scratch)
        trials = {k: _arena(_replace(plan, k, int8_plan.steps[k])) for k in tern}
        i = min(tern, key=lambda k: (trials[k], -step_scratch_bytes(plan, plan.steps[k])))
        tern.remove(i)
        s = plan.steps[i]
        plan = _replace(plan, i, int8_plan.steps[i])
        new = trials[i]
        notes.append(f"op {s.op_index} {s.op_type}: int8 (ternary scratch {step_scratch_bytes(tplan, s):,} B "
                     f"raised the arena to {arena:,} B > {budget:,} B)")
        arena = new
    saved = int(int8_plan.weight_bytes) - int(plan.weight_bytes)
    if tern and saved < TERNARY_CODE_BYTES and not above_int8:  # the ternary kernels' code would outweigh the weights saved
        notes.append(f"every layer int8: the {len(tern)} ternary layer(s) left would save {saved:,} B of weights, "
                     f"less than the ~{TERNARY_CODE_BYTES:,} B of ternary kernel code")
        return RamFit(int8_plan, budget, base, base, notes)
    for i in tern:  # faster variants where the RAM allows
        s = plan.steps[i]
        if not _has_choice(s.kernel) or "variant" in tplan.steps[i].params:
            continue
        ests = []
        for v in candidates(s):
            try:
                ests.append(estimate(s, core, v))
            except KeyError:
                pass
        cur = s.params["variant"]
        for c in sorted(ests, key=lambda c: c.instructions):
            if c.variant == cur:
                break
            trial = _replace(plan, i, _with_variant(s, c.variant))
            a = _arena(trial)
            if a <= budget:
                plan, arena = trial, a
                notes.append(f"op {s.op_index} {s.op_type}: variant {c.variant} (fits the arena budget)")
                break
    return RamFit(plan, budget, base, arena, notes)


def _instructions(estimate, step: Step, core: str, variant: str) -> float | None:
    try:
        return estimate(step, core, variant).instructions
    except (KeyError, FileNotFoundError):
        return None
