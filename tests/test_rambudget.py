"""The default ternary export never needs more arena than the int8 export (issue 13)."""
from __future__ import annotations

from functools import lru_cache

import pytest

from shared_data import int8_cases
from ternembed.variants import assign_variants
from ternembed.lower import lower
from ternembed.memory import plan_memory
from ternembed.quantize.plan_pass import ternarize_plan
from ternembed.quantize.policy import TernaryConfig
from ternembed.rambudget import fit_arena
from ternembed.tflite import read

CASES = {c.name: c for c in int8_cases()}


@lru_cache(maxsize=None)
def _plans(name):
    c = CASES[name]
    p = lower(read(c.model))
    t, _ = ternarize_plan(p, TernaryConfig(), [x[::2] for x in c.inputs])
    return p, t


@pytest.mark.parametrize("name", ["ad01_int8", "sww_int8", "vww_int8"])
def test_default_arena_never_above_int8(name):
    p, t = _plans(name)
    fit = fit_arena(t, p, "cortex-m4")
    arena = plan_memory(assign_variants(fit.plan, "cortex-m4", "speed")).arena_bytes
    assert arena == fit.arena <= plan_memory(p).arena_bytes
    # --optimize speed still asks for the table-lookup scratch, whatever the RAM
    if name in ("ad01_int8", "sww_int8"):
        assert plan_memory(assign_variants(t, "cortex-m4", "speed")).arena_bytes > arena


def test_lut_only_within_budget_and_ternary_kept_where_it_pays():
    p, t = _plans("vww_int8")
    fit = fit_arena(t, p, "cortex-m4")
    kept = [s for s, b in zip(fit.plan.steps, p.steps) if s is not b]
    assert len(kept) >= 10  # one layer back to int8 recovers the 712 B the ternary scratch added
    assert any(s.params.get("variant") == "lut" for s in kept)
    tight = fit_arena(t, p, "cortex-m4", max_ram=plan_memory(p).arena_bytes)
    assert tight.arena <= plan_memory(p).arena_bytes
