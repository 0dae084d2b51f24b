# SPDX-License-Identifier: Apache-2.0
"""The variant pass: which C function each ternary step calls, chosen once, before code generation.

Some kernels have more than one C function (``kernelspec``: fc_t2_s8 and conv_t2_s8 have a
table-lookup "lut" variant besides the default DSP/portable one). The pass asks the measured
cost model (``costmodel.choose_variant``) for the board's core and writes the answer into
``step.params["variant"]``; memory planning (scratch size) and the emitters (function name) then
read that one value, and never decide for themselves.

    plan = assign_variants(plan, board.core, optimize="speed")
"""
from __future__ import annotations

import copy
from typing import Any

from .errors import InputError, UnsupportedOpError
from .kernelspec import MAC_KERNELS
from .plan import Plan, Step

__all__ = ["DEFAULT_CORE", "assign_variants", "has_variants", "step_variant"]

#: The core assumed where no board is known (host builds of the generated C, hostcheck).
DEFAULT_CORE = "cortex-m4"
_DEFAULT_NAMES = (None, "", "default", "dsp", "portable")


def _choices(kernel: str) -> tuple[str, ...]:
    s = MAC_KERNELS.get(kernel)
    return s.variants if s is not None else ("default",)


def _normalize(kernel: str, v: Any, origin: str) -> str:
    """A variant name from the step or the cost model; ValueError when there is no such C function."""
    if v is not None and not isinstance(v, str):  # a cost-model result object
        v = getattr(v, "variant", getattr(v, "name", v))
        if not isinstance(v, str):
            raise ValueError(f"{kernel}: {origin} gave variant {v!r}, expected a name")
    if v in _DEFAULT_NAMES:
        return "default"
    v = str(v).lower()
    if v not in _choices(kernel):
        raise ValueError(f"{kernel}: {origin} asks for variant {v!r}, which has no C function; "
                         f"known: {', '.join(_choices(kernel))}")
    return v


def has_variants(plan: Plan) -> bool:
    """Has every step with a choice of C functions been given one?"""
    return all("variant" in s.params for s in plan.steps if len(_choices(s.kernel)) > 1)


def assign_variants(plan: Plan, core: str = DEFAULT_CORE, optimize: str = "speed") -> Plan:
    """A copy of ``plan`` whose steps with a choice of C functions carry ``params["variant"]`` =
    ``costmodel.choose_variant(step, core, optimize)``; steps that already name one keep it."""
    from .costmodel import choose_variant

    if optimize not in ("speed", "size", "balanced"):
        raise InputError(f"optimize must be speed, size or balanced, got {optimize!r}")
    steps = []
    for s in plan.steps:
        if len(_choices(s.kernel)) > 1 and "variant" not in s.params:
            try:
                v = _normalize(s.kernel, choose_variant(s, core, optimize), "ternembed.costmodel.choose_variant")
            except FileNotFoundError:  # no measured cost table installed: the default function
                v = "default"
            except ValueError as exc:
                raise UnsupportedOpError(f"{plan.name}: op {s.op_index} ({s.op_type}): {exc}") from None
            s = Step(s.op_index, s.op_type, s.kernel, s.inputs, s.outputs, dict(s.params, variant=v), s.macs)
        steps.append(s)
    new = copy.copy(plan)  # keeps what other passes attached (4-bit buffers, state)
    new.steps = steps
    return new


def step_variant(step: Step) -> str:
    """The variant the pass chose for a step ("default" for kernels with a single C function)."""
    try:
        if "variant" in step.params:
            return _normalize(step.kernel, step.params["variant"], "the step")
        if len(_choices(step.kernel)) == 1:
            return "default"
        raise ValueError("no variant chosen: run ternembed.variants.assign_variants(plan, core) first")
    except ValueError as exc:
        raise UnsupportedOpError(f"op {step.op_index} ({step.op_type}): {exc}") from None
