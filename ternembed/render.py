# SPDX-License-Identifier: Apache-2.0
"""Export: a Plan -> a complete firmware project (PlatformIO + Makefile), written atomically.

    result = export_project(plan, "nucleo_f446re", "out/kws", test_inputs=[x])

Layout of the project::

    platformio.ini  Makefile  README.md  ternembed_plan.json  tools/ternembed_pio.py
    src/model.c  src/model.h  src/main.c          (generated)
    firmware/include  firmware/kernels  firmware/platform (+ ld/<board>.ld for every board)

The project is rendered into a temporary folder next to ``out_dir`` and renamed into place
at the end, so a failed export leaves nothing behind; a non-empty ``out_dir`` is refused
unless ``force`` (then the old folder is replaced only after the new one is complete).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import numpy as np

from . import __version__
from .boards import Board, get_board, linker_script, list_boards
from .codegen import GeneratedModel, c_comment, generate, render_model_sources, template_env
from .device.protocol import DEFAULT_MAX_PAYLOAD, PROTOCOL_VERSION
from .memory import MemoryPlan, plan_memory, step_scratch_bytes
from .plan import Plan
from .planfile import PLAN_FILE, save_plan
from .resources import resource_dir
from .atomic import cannot_write
from .segments import schedules, windowed
from .staging import ExportError, check_target, clean_leftovers, new_staging, publish
from .toolchain import BASE_CFLAGS, LINK_FLAGS, WARN_FLAGS
from .variants import assign_variants

PLAN_JSON = "ternembed_plan.json"
PROTOCOL_HOOKS = "te_proto_hooks.h"  # TE_LAYER_END(i) of the protocol firmware: cycles, checksums, dumps
PROTOCOL_SOURCES = ("te_protocol.c", "te_protocol.h")  # firmware/protocol, copied into src/
OPT = "-O3"
INCLUDE_DIRS = ("src", "firmware/include", "firmware/platform")
VECTOR_BUDGET = 64 * 1024  # bytes of self-test vectors at most (and at most 1/8 of the flash)
DEFAULT_SAMPLES = 2


@dataclass
class ExportResult:
    out_dir: Path
    board: Board
    model_hash: str
    weight_bytes: int
    arena_bytes: int
    test_samples: int
    vector_bytes: int
    memory: MemoryPlan
    files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"exported {self.out_dir} for {self.board.name}: {len(self.files)} files, "
                f"weights {self.weight_bytes} B, arena {self.arena_bytes} B, "
                f"{self.test_samples} self-test sample(s), model hash {self.model_hash[:16]}")


def common_cflags() -> list[str]:
    """C flags shared by every board (besides the CPU flags, the optimisation and the board define)."""
    return [*BASE_CFLAGS, *WARN_FLAGS, *(f"-I{d}" for d in INCLUDE_DIRS)]


def link_flags() -> list[str]:
    return list(LINK_FLAGS)


def board_cflags(board: Board, opt: str = OPT) -> list[str]:
    return [*board.cpu_flags, opt, *common_cflags(), f"-D{board.define}"]


# ---- test vectors ------------------------------------------------------------------------------

@dataclass
class _Vector:
    nbytes: int
    body: str
    comment: str


@dataclass
class _Vectors:
    samples: int
    inputs: list[_Vector]
    outputs: list[_Vector]

    @property
    def nbytes(self) -> int:
        return self.samples * sum(v.nbytes for v in self.inputs + self.outputs)


def default_test_inputs(plan: Plan, n: int = DEFAULT_SAMPLES, seed: int = 0) -> list[np.ndarray]:
    """Deterministic random inputs: uniform int8, or standard normal floats."""
    rng = np.random.default_rng(seed)
    out = []
    for i in plan.inputs:
        b = plan.buffers[i]
        shape = (n,) + (tuple(b.shape[1:]) if b.shape and b.shape[0] == 1 else tuple(b.shape))
        if b.dtype == "float32":
            out.append(rng.normal(0.0, 1.0, shape).astype(np.float32))
        else:
            info = np.iinfo(np.dtype(b.dtype))
            out.append(rng.integers(info.min, info.max + 1, shape).astype(b.dtype))
    return out


def _bytes_body(rows: np.ndarray) -> str:
    """[samples, nbytes] uint8 -> a C initializer body of nested braces."""
    lines = []
    for row in rows:
        vals = row.tolist()
        lines.append("    {")
        for k in range(0, len(vals), 24):
            lines.append("        " + ", ".join(str(v) for v in vals[k:k + 24]) + ",")
        lines.append("    },")
    return "\n".join(lines)


def _as_bytes(x: np.ndarray, dtype: str, n: int) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(x[:n], dtype=np.dtype(dtype).newbyteorder("<")))
    return a.view(np.uint8).reshape(n, -1)


def make_vectors(plan: Plan, board: Board, test_inputs: list[np.ndarray] | None) -> _Vectors:
    from .emulate import check_inputs, run

    inputs = check_inputs(plan, test_inputs if test_inputs is not None else default_test_inputs(plan))
    per_sample = sum(plan.buffers[i].nbytes for i in plan.inputs + plan.outputs)
    budget = min(VECTOR_BUDGET, board.flash.size // 8)
    n = max(1, min(len(inputs[0]), budget // max(per_sample, 1)))
    inputs = [x[:n] for x in inputs]
    outputs = run(plan, inputs)
    vin = [_Vector(plan.buffers[i].nbytes, _bytes_body(_as_bytes(x, plan.buffers[i].dtype, n)),
                   c_comment(f"{plan.buffers[i].dtype} {list(plan.buffers[i].shape)} "
                             f"{plan.buffers[i].name}"))
           for x, i in zip(inputs, plan.inputs)]
    vout = [_Vector(plan.buffers[i].nbytes, _bytes_body(_as_bytes(y, plan.buffers[i].dtype, n)),
                    c_comment(f"{plan.buffers[i].dtype} {list(plan.buffers[i].shape)} "
                              f"{plan.buffers[i].name}"))
            for y, i in zip(outputs, plan.outputs)]
    return _Vectors(n, vin, vout)


# ---- the plan summary ------------------------------------------------------------------------

def plan_summary(plan: Plan, gen: GeneratedModel, board: Board, vectors: _Vectors) -> dict:
    mem = gen.memory

    def buf(i: int) -> dict:
        b = plan.buffers[i]
        return {"index": i, "name": b.name, "shape": list(b.shape), "dtype": b.dtype,
                "scale": float(b.scale), "zero_point": int(b.zero_point), "bytes": int(b.nbytes),
                "offset": mem.offsets.get(i)}

    return {
        "format": 1,
        "ternembed": __version__,
        "model": plan.name,
        "model_hash": gen.model_hash,
        "source_kind": plan.source_kind,
        "board": board.name,
        "pio_envs": [b.name for b in list_boards() if b.platformio is not None],
        "planned": {
            "weight_bytes": gen.weight_bytes,
            "table_bytes": gen.table_bytes,
            "arena_bytes": gen.arena_bytes,
            "state_bytes": gen.state_bytes,  # te_state[]: streaming models' variables, in .bss
            "test_vector_bytes": vectors.nbytes,
            "plan_weight_bytes": int(plan.weight_bytes),
        },
        "test_vectors": {"samples": vectors.samples},
        "macs": int(plan.macs),
        "memory": mem.to_dict(),
        "segments": [{"steps": [sc.first, sc.last], "window_rows": {str(i): sc.windows[i] for i in sorted(sc.intermediates)}}
                     for sc in schedules(plan)],
        "inputs": [buf(i) for i in plan.inputs],
        "outputs": [buf(i) for i in plan.outputs],
        "buffers": [buf(i) for i in sorted(plan.buffers)],
        "steps": [{"index": t, "op_index": s.op_index, "op_type": s.op_type, "kernel": s.kernel,
                   "inputs": list(s.inputs), "outputs": list(s.outputs), "macs": int(s.macs),
                   "weight_bytes": int(s.weight_bytes), "scratch_bytes": step_scratch_bytes(plan, s),
                   "variant": s.params.get("variant", "default")}
                  for t, s in enumerate(plan.steps)],
        "build": {"opt": OPT, "common_cflags": common_cflags(), "link_flags": link_flags(),
                  "sources": ["src/*.c", "firmware/kernels/*.c", "firmware/platform/*.c"]},
    }


# ---- export ------------------------------------------------------------------------------------

def _copy_firmware(dst: Path, kernel_sources: list[str]) -> None:
    """firmware/include (all headers), the kernel C files the model needs (+ private kernel
    headers), the platform layer, and a linker script for every board."""
    fw = resource_dir("firmware")
    for sub, patterns in (("include", ("*.h",)), ("kernels", ("*.h",)),
                          ("platform", ("*.c", "*.h", "README.md"))):
        (dst / "firmware" / sub).mkdir(parents=True, exist_ok=True)
        for pat in patterns:
            for f in sorted((fw / sub).glob(pat)):
                shutil.copy2(f, dst / "firmware" / sub / f.name)
    for name in kernel_sources:
        shutil.copy2(fw / "kernels" / name, dst / "firmware" / "kernels" / name)
    ld = dst / "firmware" / "platform" / "ld"
    ld.mkdir(parents=True, exist_ok=True)
    for b in list_boards():
        (ld / f"{b.name}.ld").write_text(linker_script(b))


def protocol_layers(plan: Plan, mem: MemoryPlan) -> list[dict]:
    """Per step: the output buffer whose bytes the protocol firmware checksums and dumps."""
    rows = []
    streamed = windowed(plan)  # never whole: nothing to checksum (validate expects 0)
    for t, step in enumerate(plan.steps):
        if not step.outputs:
            rows.append(dict(index=t, buffer=None, offset=0, nbytes=0, comment="no output"))
            continue
        b = plan.buffers[step.outputs[0]]
        nbytes = 0 if step.outputs[0] in streamed else int(b.nbytes)
        rows.append(dict(index=t, buffer=step.outputs[0], offset=mem.offsets[step.outputs[0]],
                         nbytes=nbytes, name=b.name, op_type=step.op_type, kernel=step.kernel,
                         comment=c_comment(f"{step.op_type} {step.kernel} -> {b.name} {b.dtype} {list(b.shape)}")))
    return rows


def _protocol_info(plan: Plan, mem: MemoryPlan) -> dict:
    """What the host needs to know of the protocol firmware (ternembed_plan.json "protocol")."""
    layers = protocol_layers(plan, mem)
    # frame buffers in and out, two words per layer, a copy of the inputs
    static_ram = 2 * (2 + DEFAULT_MAX_PAYLOAD + 4) + 8 * len(plan.steps) + \
        sum(int(plan.buffers[i].nbytes) for i in plan.inputs)
    return {"version": PROTOCOL_VERSION, "max_payload": DEFAULT_MAX_PAYLOAD, "static_ram_bytes": static_ram,
            "layers": layers}


def _render_into(tmp: Path, plan: Plan, board: Board, test_inputs, mem: MemoryPlan, firmware: str):
    gen = generate(plan, mem)
    protocol = firmware == "protocol"
    vectors = make_vectors(plan, board, test_inputs) if not protocol else _Vectors(0, [], [])
    proto = _protocol_info(plan, mem) if protocol else None
    boards = list_boards()
    pio_boards = [b for b in boards if b.platformio is not None]
    ctx = dict(m=gen, version=__version__, board=board, vectors=vectors, all_boards=boards,
               pio_boards=pio_boards, opt=OPT, common_cflags=common_cflags(),
               pio_cflags=[OPT, *common_cflags()], link_flags=link_flags(),
               default_env=board.name if board.platformio is not None else "",
               has_pio_env=board.platformio is not None, title=c_comment(plan.name),
               firmware=firmware, protocol=proto, layers=proto["layers"] if proto else [],
               protocol_version=PROTOCOL_VERSION, extra_sources=PROTOCOL_SOURCES if protocol else ())
    env = template_env()
    files = {
        "src/main.c": env.get_template(f"main_{firmware}.c.j2").render(**ctx),
        "platformio.ini": env.get_template("platformio.ini.j2").render(**ctx),
        "Makefile": env.get_template("Makefile.j2").render(**ctx),
        "README.md": env.get_template("README.md.j2").render(**ctx),
        "tools/ternembed_pio.py": env.get_template("ternembed_pio.py.j2").render(**ctx),
        **render_model_sources(gen, hooks_header=PROTOCOL_HOOKS if protocol else None, prefix="src/"),
    }
    if protocol:
        files[f"src/{PROTOCOL_HOOKS}"] = env.get_template("proto_hooks.h.j2").render(**ctx)
    for rel, text in files.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _copy_firmware(tmp, gen.sources)
    summary = plan_summary(plan, gen, board, vectors)
    if protocol:
        for name in PROTOCOL_SOURCES:
            shutil.copy2(resource_dir("firmware") / "protocol" / name, tmp / "src" / name)
        summary["firmware"] = "protocol"
        summary["protocol"] = {**proto, "layers": [{k: v for k, v in row.items() if k != "comment"}
                                                   for row in proto["layers"]]}
        save_plan(plan, tmp / PLAN_FILE)
    (tmp / PLAN_JSON).write_text(json.dumps(summary, indent=1) + "\n")
    return gen, vectors


def export_project(plan: Plan, board: Board | str, out_dir: Path | str, force: bool = False,
                   test_inputs: list[np.ndarray] | None = None, mem: MemoryPlan | None = None,
                   firmware: str = "selftest", finish: Callable[[Path, ExportResult], None] | None = None
                   ) -> ExportResult:
    """Write the firmware project for ``plan`` on ``board`` into ``out_dir`` (see module doc).

    ``firmware``: "selftest" (main.c checks embedded test vectors) or "protocol" (main.c serves
    the serial protocol validate and bench speak; the Plan is saved beside it). ``test_inputs``:
    self-test inputs with a leading sample axis (default: two deterministic random samples); at
    most VECTOR_BUDGET bytes of them (and of their expected outputs) are embedded. ``finish(dir,
    result)`` may add files (a report) before the project is published. Every file is written
    into a staging folder first, which replaces ``out_dir`` in one step (staging.py): an existing
    non-empty ``out_dir`` needs ``force`` and must be an earlier export.
    """
    if firmware not in ("selftest", "protocol"):
        raise ExportError(f"firmware must be 'selftest' or 'protocol', got {firmware!r}")
    board = get_board(board) if isinstance(board, str) else board
    plan = assign_variants(plan, board.core)  # steps that name no C variant get the cost model's, for this core
    mem = mem or plan_memory(plan)
    out = Path(out_dir).expanduser().absolute()
    check_target(out, force)
    clean_leftovers(out)
    created = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    tmp = new_staging(out)
    try:
        gen, vectors = _render_into(tmp, plan, board, test_inputs, mem, firmware)
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        result = ExportResult(out, board, gen.model_hash, gen.weight_bytes, gen.arena_bytes,
                              vectors.samples, vectors.nbytes, gen.memory, files)
        if finish is not None:
            finish(tmp, result)
            result.files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        publish(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in created:  # folders made only for this export
            try:
                d.rmdir()
            except OSError:
                pass
        if isinstance(exc, OSError):  # a full disk, a quota: one line, the old project untouched
            raise cannot_write(out, exc) from None
        raise
    return result
