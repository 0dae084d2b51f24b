"""RAM-aware kernel choice: the default ternary export never needs more arena than the int8 export.

``fit_arena(tplan, int8_plan, core)`` starts every ternary layer on its least-scratch variant, then:
1. while the arena exceeds the budget (the int8 plan's arena, or ``max_ram`` if smaller), the ternary
   layer whose int8 form lowers the arena most goes back to its int8 form (the int8 step of the same position);
   If the weights the ternary layers left save are fewer bytes than the ternary kernels' code
   (TERNARY_CODE_BYTES), the whole plan stays int8 (no more flash either).
2. each remaining layer takes its fastest variant (e.g. the table lookup) where the arena stays within
   the budget.
``--optimize speed|size|balanced`` bypass this (the cost model alone picks, whatever the RAM).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .kernelspec import MAC_KERNELS
from .plan import Plan, Step

__all__ = ["RamFit", "fit_arena", "TERNARY_CODE_BYTES"]

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


def _arena(plan: Plan) -> int:
    from .memory import plan_memory
    return int(plan_memory(plan).arena_bytes)


def _has_choice(kernel: str) -> bool:
    """Does the kernel have more than one C function (a variant to choose)?"""
    return kernel in MAC_KERNELS and len(MAC_KERNELS[kernel].variants) > 1


def _with_variant(s: Step, v: str) -> Step:
    return Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs, dict(s.params, variant=v), s.macs)


def _replace(plan: Plan, i: int, step: Step) -> Plan:
    steps = list(plan.steps)
    steps[i] = step
    return Plan(plan.name, plan.buffers, steps, plan.inputs, plan.outputs, plan.source_kind)


def fit_arena(tplan: Plan, int8_plan: Plan, core: str, max_ram: int | None = None) -> RamFit:
    """``tplan`` (the ternary pass's output, step for step parallel to ``int8_plan``) with kernel
    variants chosen so that its arena is at most the int8 arena (and ``max_ram``)."""
    from .costmodel import candidates, choose_variant, estimate
    from .memory import step_scratch_bytes

    base = _arena(int8_plan)
    budget = base if max_ram is None else min(base, int(max_ram))
    tern = [i for i, (a, b) in enumerate(zip(tplan.steps, int8_plan.steps)) if a is not b]
    plan = tplan
    for i in tern:  # least scratch first
        s = plan.steps[i]
        if _has_choice(s.kernel) and "variant" not in s.params:
            plan = _replace(plan, i, _with_variant(s, choose_variant(s, core, "size")))
    notes: list[str] = []
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
    if tern and saved < TERNARY_CODE_BYTES:  # the ternary kernels' code would outweigh the weights saved
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
