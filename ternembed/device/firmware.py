"""Protocol firmware: an exported project whose main.c serves the serial protocol.

    result = export_protocol_project(plan, "qemu_mps2_an386", "out/kws")

The project is the one ternembed.render.export_project writes (model.c/.h, kernels, platform,
Makefile, platformio.ini), with:

* ``src/main.c``: the protocol main (templates/main_protocol.c.j2) instead of the self-test;
* ``src/te_protocol.c``, ``src/te_protocol.h``: firmware/protocol (framing, commands, hooks);
* ``src/te_proto_hooks.h``: TE_LAYER_END(i) -> te_proto_layer_end(i, te_arena), made the
  model's hooks header by a define at the top of ``src/model.c`` (not under TE_HOSTCHECK);
* ``ternembed_plan.json``: ``"firmware": "protocol"``, no self-test vectors, the protocol's
  static RAM, and ``protocol.layers`` (each layer's output buffer and bytes, for the host);
* ``ternembed_plan.npz``: the Plan itself (save_plan/load_plan), so that validate and bench
  can emulate what the firmware computes without the original model and options.

Like export_project, it is atomic: rendered into a temporary folder, renamed into place.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .. import __version__
from ..boards import Board, get_board
from ..codegen import c_comment, generate, template_env
from ..memory import MemoryPlan, plan_memory
from ..plan import Plan
from ..render import PLAN_JSON, ExportError, ExportResult, export_project
from ..resources import resource_dir
from .protocol import DEFAULT_MAX_PAYLOAD, PROTOCOL_VERSION

HOOKS_HEADER = "te_proto_hooks.h"
HOOKS_DEFINE = (
    "/* Protocol firmware: per-layer hooks (added by ternembed.device.firmware). */\n"
    "#if !defined(TE_MODEL_HOOKS_HEADER) && !defined(TE_HOSTCHECK)\n"
    f"#define TE_MODEL_HOOKS_HEADER \"{HOOKS_HEADER}\"\n"
    "#endif\n")
PROTOCOL_SOURCES = ("te_protocol.c", "te_protocol.h")


def layer_table(plan: Plan, mem: MemoryPlan) -> list[dict]:
    """Per step: the output buffer whose bytes the firmware checksums and dumps."""
    rows = []
    for t, step in enumerate(plan.steps):
        if not step.outputs:
            rows.append(dict(index=t, buffer=None, offset=0, nbytes=0, comment="no output"))
            continue
        b = plan.buffers[step.outputs[0]]
        rows.append(dict(index=t, buffer=step.outputs[0], offset=mem.offsets[step.outputs[0]],
                         nbytes=int(b.nbytes), name=b.name, op_type=step.op_type,
                         kernel=step.kernel,
                         comment=c_comment(f"{step.op_type} {step.kernel} -> {b.name} "
                                           f"{b.dtype} {list(b.shape)}")))
    return rows


def _patch_makefile(path: Path) -> None:
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    for k, line in enumerate(lines):
        if line.startswith("SRCS :=") or line.startswith("SRCS="):
            if "te_protocol.c" in line or "wildcard src/" in line:
                return
            lines.insert(k + 1, "SRCS += src/te_protocol.c\n")
            path.write_text("".join(lines))
            return
    raise ExportError(f"{path}: no 'SRCS :=' line to add src/te_protocol.c to; the Makefile "
                      "template changed, update ternembed/device/firmware.py")


def _render_protocol(project: Path, plan: Plan, mem: MemoryPlan) -> dict:
    gen = generate(plan, mem)
    layers = layer_table(plan, mem)
    env = template_env()
    ctx = dict(m=gen, version=__version__, layers=layers, protocol_version=PROTOCOL_VERSION)
    src = project / "src"
    (src / "main.c").write_text(env.get_template("main_protocol.c.j2").render(**ctx))
    (src / HOOKS_HEADER).write_text(env.get_template("proto_hooks.h.j2").render(**ctx))
    proto = resource_dir("firmware") / "protocol"
    for name in PROTOCOL_SOURCES:
        shutil.copy2(proto / name, src / name)
    model_c = src / "model.c"
    model_c.write_text(HOOKS_DEFINE + model_c.read_text())
    _patch_makefile(project / "Makefile")

    static_ram = 2 * (2 + DEFAULT_MAX_PAYLOAD + 4) + 8 * len(plan.steps) + \
        sum(int(plan.buffers[i].nbytes) for i in plan.inputs)
    info = json.loads((project / PLAN_JSON).read_text())
    info["firmware"] = "protocol"
    info["planned"]["test_vector_bytes"] = 0
    info["test_vectors"] = {"samples": 0}
    info["protocol"] = {
        "version": PROTOCOL_VERSION, "max_payload": DEFAULT_MAX_PAYLOAD,
        "static_ram_bytes": static_ram,
        "layers": [{k: v for k, v in row.items() if k != "comment"} for row in layers],
    }
    (project / PLAN_JSON).write_text(json.dumps(info, indent=1) + "\n")

    readme = project / "README.md"
    if readme.exists():
        readme.write_text(readme.read_text() + f"""
## This project is the protocol firmware

`src/main.c` here is not the self-test: it serves the ternembed serial protocol (version
{PROTOCOL_VERSION}, docs/protocol.md in ternembed) on the UART. `src/te_protocol.c` holds the
framing and the commands; `src/te_proto_hooks.h` records per-layer cycles and checksums
through the model's `TE_LAYER_END(i)` hook. From the host:

- `ternembed run .` (emulated boards): build, start QEMU, print the serial port;
- `ternembed validate . --port PORT --data FILE`: bit-exact comparison with the emulator;
- `ternembed bench . --port PORT`: per-layer and total cycles;
- `ternembed flash .` (real boards): `pio run -t upload`.

The protocol needs about {static_ram} bytes of RAM besides the arena (frame buffers, a copy
of the inputs, two words per layer).
""")
    return info


def export_protocol_project(plan: Plan, board: Board | str, out_dir: Path | str,
                            force: bool = False, mem: MemoryPlan | None = None) -> ExportResult:
    """Export ``plan`` for ``board`` into ``out_dir`` with the protocol firmware as main.c."""
    board = get_board(board) if isinstance(board, str) else board
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder; choose another output folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportError(f"{out} is not empty; use --force (force=True) to replace its contents, "
                          "or choose an empty folder")
    mem = mem or plan_memory(plan)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.proto-", dir=out.parent))
    try:
        result = export_project(plan, board, staging / "project", mem=mem,
                                test_inputs=_one_zero_sample(plan))
        _render_protocol(staging / "project", plan, mem)
        save_plan(plan, staging / "project" / PLAN_FILE)
        old = None
        if out.exists():
            old = staging / "old"
            os.replace(out, old)
        try:
            os.replace(staging / "project", out)
        except BaseException:
            if old is not None and not out.exists():
                os.replace(old, out)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return ExportResult(out, board, result.model_hash, result.weight_bytes, result.arena_bytes,
                        0, 0, result.memory, files)


def _one_zero_sample(plan: Plan):
    """The self-test vectors are discarded: give export_project the cheapest input to emulate."""
    import numpy as np

    out = []
    for i in plan.inputs:
        b = plan.buffers[i]
        shape = tuple(b.shape[1:]) if b.shape and b.shape[0] == 1 else tuple(b.shape)
        out.append(np.zeros((1,) + shape, dtype=b.dtype))
    return out


# ---- the Plan inside the project ---------------------------------------------------------------
# validate/bench need the Plan to emulate what the firmware computes. It is stored beside the
# project as an .npz: every array under its own key, the structure as JSON (no pickle: loading a
# project must not run code). Dataclass parameters are rebuilt only from ternembed's own modules.
# load_plan() checks that the rebuilt Plan has the hash the firmware was generated with.

PLAN_FILE = "ternembed_plan.npz"


def _enc(v, arrays: dict):
    import dataclasses

    import numpy as np

    if isinstance(v, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = v
        return {"$a": key}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        cls = type(v)
        return {"$d": f"{cls.__module__}:{cls.__qualname__}",
                "f": {f.name: _enc(getattr(v, f.name), arrays) for f in dataclasses.fields(v)}}
    if isinstance(v, tuple):
        return {"$t": [_enc(x, arrays) for x in v]}
    if isinstance(v, list):
        return [_enc(x, arrays) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            return {"$m": [[_enc(k, arrays), _enc(x, arrays)] for k, x in v.items()]}
        return {"$o": {k: _enc(x, arrays) for k, x in v.items()}}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return {"$f": float(v).hex()}
    if v is None or isinstance(v, str):
        return v
    raise TypeError(f"cannot store a plan parameter of type {type(v).__name__}")


def _dataclass_type(path: str):
    import dataclasses
    import importlib

    module, _, name = path.partition(":")
    if not (module == "ternembed" or module.startswith("ternembed.")):
        raise ExportError(f"plan file names a parameter type outside ternembed: {path}")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ExportError(f"plan file names {path}, which is not a parameter dataclass")
    return obj


def _dec(v, arrays):
    if isinstance(v, list):
        return [_dec(x, arrays) for x in v]
    if isinstance(v, dict):
        if "$a" in v:
            return arrays[v["$a"]]
        if "$d" in v:
            return _dataclass_type(v["$d"])(**{k: _dec(x, arrays) for k, x in v["f"].items()})
        if "$t" in v:
            return tuple(_dec(x, arrays) for x in v["$t"])
        if "$o" in v:
            return {k: _dec(x, arrays) for k, x in v["$o"].items()}
        if "$m" in v:
            return {_dec(k, arrays): _dec(x, arrays) for k, x in v["$m"]}
        if "$f" in v:
            return float.fromhex(v["$f"])
        raise ExportError(f"plan file: unknown entry {sorted(v)}")
    return v


def save_plan(plan: Plan, path: Path | str) -> None:
    """Write ``plan`` to an .npz (arrays + JSON structure), atomically."""
    import numpy as np

    from ..codegen import plan_hash

    arrays: dict = {}
    doc = {
        "format": 1, "name": plan.name, "source_kind": plan.source_kind,
        "hash": plan_hash(plan), "inputs": list(plan.inputs), "outputs": list(plan.outputs),
        "buffers": [{"index": b.index, "name": b.name, "shape": list(b.shape), "dtype": b.dtype,
                     "scale": float(b.scale).hex(), "zero_point": int(b.zero_point)}
                    for b in (plan.buffers[i] for i in sorted(plan.buffers))],
        "steps": [{"op_index": s.op_index, "op_type": s.op_type, "kernel": s.kernel,
                   "inputs": list(s.inputs), "outputs": list(s.outputs), "macs": int(s.macs),
                   "params": _enc(s.params, arrays)} for s in plan.steps],
    }
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, __plan__=np.frombuffer(json.dumps(doc).encode(), np.uint8),
                                **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_plan(path: Path | str, expected_hash: str | None = None) -> Plan:
    """Read a Plan written by save_plan; check its hash (and ``expected_hash`` if given)."""
    import numpy as np

    from ..codegen import plan_hash
    from ..plan import Buffer, Step

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(bytes(z["__plan__"]).decode())
            arrays = {k: z[k] for k in z.files if k != "__plan__"}
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{path}: not a readable ternembed plan file ({exc})") from None
    buffers = {b["index"]: Buffer(b["index"], b["name"], tuple(b["shape"]), b["dtype"],
                                  float.fromhex(b["scale"]), b["zero_point"]) for b in doc["buffers"]}
    steps = [Step(s["op_index"], s["op_type"], s["kernel"], list(s["inputs"]), list(s["outputs"]),
                  _dec(s["params"], arrays), s["macs"]) for s in doc["steps"]]
    plan = Plan(doc["name"], buffers, steps, list(doc["inputs"]), list(doc["outputs"]),
                doc.get("source_kind", "int8"))
    got = plan_hash(plan)
    if got != doc["hash"]:
        raise ExportError(f"{path}: the stored plan does not reproduce its hash ({got[:16]} != "
                          f"{doc['hash'][:16]}); re-export the project")
    if expected_hash is not None and got != expected_hash:
        raise ExportError(f"{path}: plan hash {got[:16]} differs from the project's "
                          f"{expected_hash[:16]}; re-export the project")
    return plan
