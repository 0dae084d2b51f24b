# SPDX-License-Identifier: Apache-2.0
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


def test_speed_takes_lut_up_to_an_explicit_budget_above_int8():
    """--optimize speed --max-ram N: the table-lookup scratch where the arena stays <= N, even above int8."""
    from ternembed.boards import get_board
    from ternembed.rambudget import board_ram, export_variants
    p, t = _plans("sww_int8")
    board = get_board("qemu_mps2_an386")
    lut = lambda plan: [s.op_index for s in plan.steps if s.params.get("variant") == "lut"]  # noqa: E731
    free, _ = export_variants(t, p, board, "speed", board_ram(board))
    assert lut(free) and plan_memory(free).arena_bytes > plan_memory(p).arena_bytes
    between = (plan_memory(p).arena_bytes + plan_memory(free).arena_bytes) // 2
    some, notes = export_variants(t, p, board, "speed", between)
    assert plan_memory(some).arena_bytes <= between and notes[0].startswith(f"RAM budget {between:,} B")


def test_a_layer_estimated_slower_than_int8_goes_back_or_is_reported(monkeypatch):
    import ternembed.costmodel as cm
    p, t = _plans("vww_int8")
    real = cm.estimate

    def slow_ternary(step, core, variant="default", table=None):
        c = real(step, core, variant, table)
        return c if step.kernel.endswith("_s8") and "_t2_" not in step.kernel else cm.VariantCost(
            c.variant, c.function, c.instructions * 100, c.instructions_per_mac * 100, c.scratch_bytes, c.basis)
    monkeypatch.setattr(cm, "estimate", slow_ternary)
    fit = fit_arena(t, p, "cortex-m4")
    assert all(s is b for s, b in zip(fit.plan.steps, p.steps)) and any("> int8" in d for d in fit.decisions)
    kept = fit_arena(t, p, "cortex-m4", speed_fallback=False, max_ram=10**6, above_int8=True)
    assert any(s is not b for s, b in zip(kept.plan.steps, p.steps))
    assert any("kept ternary" in d for d in kept.decisions)


def test_export_report_names_the_layers_kept_int8(tmp_path):
    """A layer sent back to int8 for RAM is int8 in the report too (not listed as ternary)."""
    from pathlib import Path

    from ternembed.pipeline import export_model
    digits = Path(__file__).resolve().parents[1] / "examples" / "digits" / "digits_int8.tflite"
    res = export_model(digits, "qemu_mps2_an386", tmp_path / "p")
    assert res.weight_bytes == res.int8_weight_bytes  # the ternary FC's scratch would double the 128 B arena
    assert all(r["method"] == "int8" for r in res.report.to_dict()["layers"]), res.report.table()
