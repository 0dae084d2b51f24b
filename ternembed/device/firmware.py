# SPDX-License-Identifier: Apache-2.0
"""Protocol firmware: an exported project whose main.c serves the serial protocol.

    result = export_protocol_project(plan, "qemu_mps2_an386", "out/kws")

The project is the one ternembed.render.export_project writes with ``firmware="protocol"``:
``src/main.c`` from templates/main_protocol.c.j2, ``src/te_protocol.c/.h`` from
firmware/protocol, the per-layer hooks header ``src/te_proto_hooks.h``, ``ternembed_plan.json``
with a ``protocol`` section (static RAM, each layer's output buffer) and the Plan itself in
``ternembed_plan.npz`` (ternembed.planfile), so validate and bench can emulate what the firmware
computes without the original model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..boards import Board
from ..memory import MemoryPlan
from ..plan import Plan
from ..planfile import PLAN_FILE, load_plan, save_plan
from ..render import ExportResult, export_project

__all__ = ["PLAN_FILE", "export_protocol_project", "load_plan", "save_plan"]


def export_protocol_project(plan: Plan, board: Board | str, out_dir: Path | str, force: bool = False,
                            mem: MemoryPlan | None = None,
                            finish: Callable[[Path, ExportResult], None] | None = None) -> ExportResult:
    """Export ``plan`` for ``board`` into ``out_dir`` with the protocol firmware as main.c."""
    return export_project(plan, board, out_dir, force=force, mem=mem, firmware="protocol", finish=finish)
