# SPDX-License-Identifier: Apache-2.0
"""The export pipeline as one Python call, the same one `ternembed export` makes.

    read -> calibrate (float/hybrid) -> lower -> ternarize -> export project (+ report)

>>> from ternembed.pipeline import export_model
>>> result = export_model("model.tflite", "nucleo", "out/model", calib="calib.npz", method="fgq", group=16)
>>> print(result.summary())
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import write_bytes_atomic
from .staging import check_target
from .data import load_inputs, load_samples, to_plan_inputs
from .errors import InputError
from .plan import Plan


def build_plan(model: str | Path, calib: str | Path | None = None, percentile: float | None = None
               ) -> tuple[Plan, list[np.ndarray] | None]:
    """The int8 plan of a model (float and hybrid models calibrated on `calib`), and the calibration
    inputs in the plan's input format."""
    from .calibrate import quantize_graph
    from .lower import lower
    from .tflite import read
    graph = read(model)
    samples = None
    if calib is not None:
        samples = [load_samples(calib, graph.tensors[i].shape[1:]) for i in graph.inputs[:1]]
    plan = lower(quantize_graph(graph, model, samples if graph.kind != "int8" else None, percentile))
    calib_inputs = to_plan_inputs(plan, samples) if samples is not None else None
    return plan, calib_inputs


def ternary_config(method: str | None = None, group: int | str | None = None, planes: int | None = None,
                   budget_bits: float | None = None, max_flash: str | int | None = None,
                   min_agreement: float | None = None, config: str | Path | None = None,
                   layers: list[str] | None = None, **extra: Any):
    """A TernaryConfig from a config file, overridden by the options that were given."""
    from .quantize.policy import TernaryConfig, load_config, parse_spec
    cfg = load_config(config) if config else TernaryConfig()
    given = {k: v for k, v in dict(method=method, group=group, planes=planes, budget_bits=budget_bits,
                                   max_flash=max_flash, min_agreement=min_agreement, **extra).items()
             if v is not None}
    overrides = dict(cfg.layers)
    for item in layers or []:
        if "=" not in item:
            raise InputError(f"--layer takes NAME_OR_INDEX=SPEC (e.g. 3=int8 or conv1=fgq:16), got {item!r}")
        key, spec = item.split("=", 1)
        overrides[key.strip()] = spec.strip()
    cfg = cfg.with_overrides(**given, layers=overrides) if (given or layers) else cfg
    cfg.__post_init__()
    for v in cfg.layers.values():
        parse_spec(v, cfg)
    return cfg


@dataclass
class Evaluation:
    samples: int
    accuracy_int8: float | None
    accuracy: float | None
    top1_agreement: float | None
    output_cosine: float

    def line(self) -> str:
        s = f"eval on {self.samples} samples: "
        if self.accuracy is not None:
            s += f"accuracy {self.accuracy:.4f} (int8 {self.accuracy_int8:.4f}), "
        if self.top1_agreement is not None:
            s += f"top-1 agreement with int8 {self.top1_agreement:.4f}, "
        return s + f"output cosine {self.output_cosine:.4f}"


def evaluate(int8_plan: Plan, plan: Plan, inputs: list[np.ndarray], labels: np.ndarray | None) -> Evaluation:
    """Accuracy (with labels) and agreement of `plan` against the int8 plan, in the emulator."""
    from . import emulate
    from .quantize.placement import dequantize_outputs
    ref = dequantize_outputs(int8_plan, emulate.run(int8_plan, inputs))[0].reshape(len(inputs[0]), -1)
    got = dequantize_outputs(plan, emulate.run(plan, inputs))[0].reshape(len(inputs[0]), -1)
    cos = float(np.sum(ref * got) / (np.linalg.norm(ref) * np.linalg.norm(got) + 1e-30))
    classify = ref.shape[1] > 1
    agree = float((ref.argmax(1) == got.argmax(1)).mean()) if classify else None
    acc = acc8 = None
    if labels is not None and classify:
        labels = np.asarray(labels).astype(int).reshape(-1)
        acc, acc8 = float((got.argmax(1) == labels).mean()), float((ref.argmax(1) == labels).mean())
    return Evaluation(len(inputs[0]), acc8, acc, agree, cos)


@dataclass
class ExportSummary:
    out_dir: Path
    board: str
    firmware: str
    int8_weight_bytes: int
    weight_bytes: int
    arena_bytes: int
    model_hash: str
    report: Any = None  # TernaryReport, or None for an int8 export
    evaluation: Evaluation | None = None
    notes: list[str] = field(default_factory=list)
    overflow: dict[str, int] = field(default_factory=dict)  # regions over the board's memory, bytes

    @property
    def fits(self) -> bool:
        return not self.overflow

    def summary(self) -> str:
        lines = []
        if self.report is not None:
            lines.append(self.report.table())
        if self.evaluation is not None:
            lines.append(self.evaluation.line())
        lines.append(f"exported {self.firmware} firmware for {self.board} to {self.out_dir}: weights "
                     f"{self.weight_bytes:,} B (int8 {self.int8_weight_bytes:,} B, "
                     f"{self.weight_bytes / max(self.int8_weight_bytes, 1):.3f}x), arena {self.arena_bytes:,} B")
        if self.fits:
            lines.append(f"next: ternembed build {self.out_dir}")
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def to_dict(self) -> dict:
        return dict(out_dir=str(self.out_dir), board=self.board, firmware=self.firmware,
                    int8_weight_bytes=self.int8_weight_bytes, weight_bytes=self.weight_bytes,
                    arena_bytes=self.arena_bytes, model_hash=self.model_hash,
                    quantization=None if self.report is None else self.report.to_dict(),
                    evaluation=None if self.evaluation is None else vars(self.evaluation), notes=self.notes,
                    fits=self.fits, overflow=self.overflow)


def default_project_dir(model: str | Path, board: str) -> Path:
    """Where `export` writes when no folder is given: ./MODEL-BOARD in the current folder."""
    from .boards import get_board
    return Path(f"{Path(model).stem}-{get_board(board).name}")


def export_model(model: str | Path, board: str, out_dir: str | Path | None = None, *, calib: str | Path | None = None,
                 percentile: float | None = None, ternary: bool = True, eval_data: str | Path | None = None,
                 firmware: str = "protocol", force: bool = False, optimize: str = "ram",
                 act_bits: int = 8, max_ram: str | int | None = None,
                 finetune: str | Path | None = None, finetune_options: dict[str, Any] | None = None,
                 **config_options: Any) -> ExportSummary:
    """Read, quantize and export a model as a firmware project (default folder: ./MODEL-BOARD).
    config_options go to ternary_config. optimize="ram" (default): never more arena than the int8
    export (nor ``max_ram``), see ternembed.rambudget; speed/size/balanced: the cost model alone.
    ``finetune``: data (.npz/.npy, labels optional) to fine-tune the ternary layers on after
    post-training quantization (needs the [train] extra); ``finetune_options`` go to
    ternembed.finetune.finetune_plan (epochs, seconds, lr, ...; ``labels=False`` ignores the labels)."""
    from .boards import get_board
    board_obj = get_board(board)  # unknown boards fail before any work
    if out_dir is None:
        out_dir = default_project_dir(model, board_obj.name)
    if firmware not in ("protocol", "selftest"):
        raise InputError(f"firmware must be 'protocol' or 'selftest', got {firmware!r}")
    out = Path(out_dir)
    check_target(out.absolute(), force)  # before any work: never after minutes of quantization
    if optimize not in ("ram", "speed", "size", "balanced"):
        raise InputError(f"optimize must be ram, speed, size or balanced, got {optimize!r}")
    if act_bits not in (8, 4):
        raise InputError(f"--act-bits must be 8 or 4, got {act_bits}")
    if finetune is not None and not ternary:
        raise InputError("--finetune trains ternary layers: not with --method int8")
    from .quantize.policy import parse_size
    max_ram = parse_size(max_ram)
    int8_plan, calib_inputs = build_plan(model, calib, percentile)
    if act_bits == 4 and calib_inputs is None:
        raise InputError("--act-bits 4 calibrates the 4-bit activation ranges: give --calib FILE")
    eval_xy = None if eval_data is None else load_inputs(eval_data, int8_plan)  # bad data: before the work
    plan, report, notes = int8_plan, None, []
    from .rambudget import board_ram
    from .rowstream import stream_plan
    budget = max_ram or board_ram(board_obj)
    # the int8 export's row streaming: its arena is the ternary export's RAM budget (rambudget.py)
    int8_streamed, int8_stream_notes = stream_plan(int8_plan, optimize, budget, core=board_obj.core)
    if ternary:
        from .quantize.plan_pass import ternarize_plan
        cfg = ternary_config(**config_options)
        if cfg.budgeted and calib_inputs is None:
            raise InputError("a budget (--budget-bits, --max-flash, --min-agreement) places layers by "
                             "measured sensitivity: give calibration data with --calib FILE")
        if finetune is not None:
            from .finetune import finetune as tune, require_jax
            require_jax()
            ft_opts = dict(finetune_options or {})
            xs, y = load_inputs(finetune, int8_plan)
            plan, ft = tune(int8_plan, cfg, xs, y if ft_opts.pop("labels", True) else None,
                            calib_inputs=calib_inputs, **ft_opts)
            report = ft.ptq
            notes.append(f"fine-tuned {ft.epochs} epoch(s) on {finetune}: held-out {ft.metric} "
                         f"{ft.history[0][ft.metric]:.4f} -> {ft.best[ft.metric]:.4f} (epoch {ft.best_epoch} kept)")
        else:
            plan, report = ternarize_plan(int8_plan, cfg, calib_inputs)
        from .rambudget import export_variants
        args = (board_obj, optimize, max_ram, not cfg.budgeted, int8_streamed.segments)
        tplan = plan
        plan, ram_notes = export_variants(tplan, int8_plan, *args)
        back = [str(t.op_index) for t, e, b in zip(tplan.steps, plan.steps, int8_plan.steps) if t is not b and e is b]
        if back:  # ternarize again with those layers int8, so the report says what is exported
            cfg = cfg.with_overrides(layers={**cfg.layers, **dict.fromkeys(back, "int8")})
            if finetune is None:
                plan, report = ternarize_plan(int8_plan, cfg, calib_inputs)
                plan = export_variants(plan, int8_plan, *args)[0]
            else:  # keep the tuned layers (export_variants put the int8 ones back); report as post-training
                report = ternarize_plan(int8_plan, cfg, calib_inputs)[1]
        if finetune is not None:  # the GTC levels learned for the exported layers
            from .finetune.forms import levels_note
            notes += [n for n in [levels_note(report, plan)] if n]
    notes += list(ram_notes) if ternary else []
    if ternary and calib_inputs is None and any(s is not b for s, b in zip(plan.steps, int8_plan.steps)):
        notes.append("no --calib: the ternary layers' quality was not measured (give --calib FILE, and "
                     "--eval FILE with labels for accuracy)")
    if act_bits == 4:
        # Same kernels, new requantization constants: values are still stored one per byte on the device.
        from .quantize.act4 import int4_activations
        plan, act_report = int4_activations(plan, calib_inputs)
        notes.append(f"{len(plan.act4_buffers)} activation buffer(s) on a 4-bit grid (MAC-to-MAC only); "
                     "stored one value per byte in this firmware")
    evaluation = None if eval_xy is None else evaluate(int8_plan, plan, *eval_xy)
    if plan is int8_plan:
        plan, stream_notes = int8_streamed, int8_stream_notes
    else:  # keeps the int8 export's segments, which the ternary variants were fitted against, unless better
        plan, stream_notes = stream_plan(plan, optimize, budget, int8_streamed.segments, board_obj.core)
    notes += stream_notes
    from .render import export_project
    from .report import to_json
    summary = None

    def finish(staged: Path, result) -> None:  # report.json goes in with the project, in one rename
        nonlocal summary
        overflow = _check_fit(staged, board_obj, notes)
        summary = ExportSummary(out, board_obj.name, firmware, int8_plan.weight_bytes, plan.weight_bytes,
                                result.arena_bytes, result.model_hash, report, evaluation, notes, overflow)
        write_bytes_atomic(staged / "report.json", to_json(summary.to_dict()).encode())

    export_project(plan, board_obj, out, force=force, firmware=firmware, finish=finish)
    return summary


def _check_fit(project: Path, board, notes: list[str]) -> dict[str, int]:
    """Before any build: the regions the project overflows on its board at least (code not counted)."""
    from .fit import Need, advice, describe, project_traits
    info = json.loads((project / "ternembed_plan.json").read_text())
    need = Need.of_project(info, board)
    overflow = need.overflow(board)
    if overflow:
        notes.append(f"does not fit {board.name} even before code is added: {describe(overflow)} "
                     f"(needs >= {need.flash:,} B flash, {need.ram + (need.arena if board.arena_ram else 0):,} B "
                     f"RAM){advice(board, need, overflow, *project_traits(info))}")
    return overflow
