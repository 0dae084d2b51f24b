# SPDX-License-Identifier: Apache-2.0
"""The real TFLite interpreters, as references: TFLite Micro (the int8 bit-exactness bar)
and ai-edge-litert (the desktop runtime; also used to record float activations)."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .errors import TernembedError


ARENA = 16 << 20  # generous: TFLM reports what it really used, independent of this


def _need(module: str, pip_name: str):
    package, _, attr = module.partition(":")
    try:
        mod = __import__(package, fromlist=["_"])
        return getattr(mod, attr) if attr else mod
    except (ImportError, AttributeError):
        raise TernembedError(f"this needs the '{pip_name}' package: pip install {pip_name}") from None


def run_tflm(model: str | Path | bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run TFLite Micro's reference kernels on each sample. inputs[k]: [samples, ...] for input k.

    Returns one array per model output with a leading sample axis."""
    runtime = _need("tflite_micro:runtime", "tflite-micro")
    with _quiet_stdout():
        interp = (runtime.Interpreter.from_bytes(bytes(model), arena_size=ARENA)
                  if isinstance(model, (bytes, bytearray))
                  else runtime.Interpreter.from_file(str(model), arena_size=ARENA))
    from .tflite import parse, read
    graph = parse(bytes(model)) if isinstance(model, (bytes, bytearray)) else read(model)
    outs: list[list[np.ndarray]] = []
    for s in range(len(inputs[0])):
        for k, x in enumerate(inputs):
            detail = interp.get_input_details(k)
            interp.set_input(np.asarray(x[s], dtype=detail["dtype"]).reshape(detail["shape"]), k)
        interp.invoke()  # set_input before every invoke: TFLM reuses the input buffer
        outs.append([np.array(interp.get_output(k)) for k in range(len(graph.outputs))])
    return [np.stack([r[k] for r in outs]).reshape(len(outs), *_sample_shape(outs[0][k].shape))
            for k in range(len(outs[0]))]


def _sample_shape(shape) -> tuple[int, ...]:
    """As Buffer.sample_shape: without a leading batch axis of 1."""
    return tuple(shape[1:]) if len(shape) and shape[0] == 1 else tuple(shape)


def tflm_arena_bytes(model: str | Path) -> int:
    """TFLite Micro's own figure for the arena this model needs (head + tail)."""
    runtime = _need("tflite_micro:runtime", "tflite-micro")
    with _captured_stderr() as text:
        interp = runtime.Interpreter.from_file(str(model), arena_size=ARENA)
        interp.print_allocations()
    match = re.search(r"Arena allocation total (\d+) bytes", text())
    if not match:
        raise TernembedError("tflite-micro did not report its arena size")
    return int(match.group(1))


def litert_interpreter(model: str | Path, preserve_all: bool = False):
    """An allocated ai-edge-litert Interpreter (XNNPACK off, so results are the reference kernels')."""
    mod = _need("ai_edge_litert.interpreter", "ai-edge-litert")
    with warnings.catch_warnings(), _quiet_stderr():
        warnings.simplefilter("ignore")
        kwargs = dict(model_path=str(model), experimental_preserve_all_tensors=preserve_all)
        try:
            interp = mod.Interpreter(**kwargs, experimental_op_resolver_type=mod.OpResolverType.BUILTIN_REF)
        except (AttributeError, TypeError):
            interp = mod.Interpreter(**kwargs)
        interp.allocate_tensors()
    return interp


def run_litert(model: str | Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run ai-edge-litert on each sample; same conventions as run_tflm."""
    interp = litert_interpreter(model)
    in_d, out_d = interp.get_input_details(), interp.get_output_details()
    outs = [[] for _ in out_d]
    for s in range(len(inputs[0])):
        for k, x in enumerate(inputs):
            interp.set_tensor(in_d[k]["index"], np.asarray(x[s], in_d[k]["dtype"]).reshape(in_d[k]["shape"]))
        interp.invoke()
        for k, d in enumerate(out_d):
            outs[k].append(interp.get_tensor(d["index"]).copy())
    return [np.stack(o).reshape(len(o), *o[0].shape[1:]) for o in outs]


def _flush_c_stdio() -> None:
    import ctypes
    ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _redirect_fd(fd: int, target):
    saved = os.dup(fd)
    try:
        _flush_c_stdio()
        os.dup2(target.fileno(), fd)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.contextmanager
def _quiet_stdout():
    with open(os.devnull, "w") as null, _redirect_fd(1, null):
        yield


@contextlib.contextmanager
def _quiet_stderr():
    with open(os.devnull, "w") as null, _redirect_fd(2, null):
        yield


@contextlib.contextmanager
def _captured_stderr():
    """Capture what C code prints on fd 2 (print_allocations writes there, not to sys.stderr)."""
    with tempfile.TemporaryFile(mode="w+") as tmp:
        result = {"text": ""}
        import sys
        sys.stderr.flush()
        with _redirect_fd(2, tmp):
            yield lambda: result["text"]
        tmp.seek(0)
        result["text"] = tmp.read()
