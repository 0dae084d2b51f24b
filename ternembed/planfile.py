# SPDX-License-Identifier: Apache-2.0
"""A Plan saved inside a project (ternembed_plan.npz), so validate and bench can emulate exactly
what the firmware computes without the original model and options.

Every array under its own key, the structure as JSON: no pickle, so loading a project never runs
code. Dataclass parameters are rebuilt only from ternembed's own modules, and load_plan() checks
that the rebuilt Plan has the hash the firmware was generated with.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import zipfile
from pathlib import Path

import numpy as np

from .atomic import write_atomic
from .codegen.hashing import plan_hash
from .errors import TernembedError
from .plan import Buffer, Plan, Step


class PlanFileError(TernembedError):
    """A project's plan file is missing, damaged or from another export."""


PLAN_FILE = "ternembed_plan.npz"


def _enc(v, arrays: dict):
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
    module, _, name = path.partition(":")
    if not (module == "ternembed" or module.startswith("ternembed.")):
        raise PlanFileError(f"plan file names a parameter type outside ternembed: {path}")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise PlanFileError(f"plan file names {path}, which is not a parameter dataclass")
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
        raise PlanFileError(f"plan file: unknown entry {sorted(v)}")
    return v


def save_plan(plan: Plan, path: Path | str) -> None:
    """Write ``plan`` to an .npz (arrays + JSON structure), atomically."""

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
        "segments": [list(x) for x in plan.segments],
    }
    write_atomic(path, lambda fh: np.savez_compressed(
        fh, __plan__=np.frombuffer(json.dumps(doc).encode(), np.uint8), **arrays))


def load_plan(path: Path | str, expected_hash: str | None = None) -> Plan:
    """Read a Plan written by save_plan; check its hash (and ``expected_hash`` if given)."""

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(bytes(z["__plan__"]).decode())
            arrays = {k: z[k] for k in z.files if k != "__plan__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeError) as exc:
        raise PlanFileError(f"{path}: not a readable ternembed plan file ({exc})") from None
    try:  # a damaged structure: one line, never a KeyError from deep inside
        buffers = {b["index"]: Buffer(b["index"], b["name"], tuple(b["shape"]), b["dtype"],
                                      float.fromhex(b["scale"]), b["zero_point"]) for b in doc["buffers"]}
        steps = [Step(s["op_index"], s["op_type"], s["kernel"], list(s["inputs"]), list(s["outputs"]),
                      _dec(s["params"], arrays), s["macs"]) for s in doc["steps"]]
        plan = Plan(doc["name"], buffers, steps, list(doc["inputs"]), list(doc["outputs"]),
                    doc.get("source_kind", "int8"), [tuple(x) for x in doc.get("segments", [])])
        got = plan_hash(plan)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ImportError) as exc:
        raise PlanFileError(f"{path}: damaged ternembed plan file ({type(exc).__name__}: {exc}); "
                            "re-export the project") from None
    if got != doc.get("hash"):
        raise PlanFileError(f"{path}: the stored plan does not reproduce its hash ({got[:16]} != "
                          f"{str(doc.get('hash'))[:16]}); re-export the project")
    if expected_hash is not None and got != expected_hash:
        raise PlanFileError(f"{path}: plan hash {got[:16]} differs from the project's "
                          f"{expected_hash[:16]}; re-export the project")
    return plan
