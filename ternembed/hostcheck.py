# SPDX-License-Identifier: Apache-2.0
"""Host check: the generated model.c and the firmware kernels, compiled with the host gcc into a
shared library and run from Python through ctypes, to compare with the emulator byte for byte.

The same C that goes to the chip, minus the platform layer (``-DTE_HOSTCHECK`` swaps the
arena's section attribute for a plain alignment). Both kernel paths can be checked: the
portable C (default) and the DSP path with exact C models of the SIMD instructions
(``emulate_dsp=True`` -> ``-DTE_EMULATE_DSP``).

    model = compile_host_model(plan)                # or HostModel.from_project(dir)
    outputs = model.run(inputs)                     # like emulate.run(plan, inputs)
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .emulate import check_inputs
from .errors import TernembedError
from .hostc import compile_shared
from .plan import Plan
from .resources import resource_dir


class HostCheckError(TernembedError):
    """The host-compiled model failed to run (a kernel rejected its arguments)."""


@dataclass
class _Tensor:
    nbytes: int
    dtype: np.dtype
    shape: tuple[int, ...]


class HostModel:
    """A generated model loaded as a shared library."""

    def __init__(self, lib_path: Path, inputs: list[_Tensor], outputs: list[_Tensor], plan: Plan | None,
                 emulate_dsp: bool):
        self.path = Path(lib_path)
        self.lib = ctypes.CDLL(str(lib_path))
        self.plan = plan
        self.emulate_dsp = emulate_dsp
        self._inputs, self._outputs = inputs, outputs
        for fn in ("te_model_input", "te_model_output"):
            getattr(self.lib, fn).restype = ctypes.c_void_p
            getattr(self.lib, fn).argtypes = [ctypes.c_uint32]
        for fn in ("te_model_input_bytes", "te_model_output_bytes"):
            getattr(self.lib, fn).restype = ctypes.c_uint32
            getattr(self.lib, fn).argtypes = [ctypes.c_uint32]
        self.lib.te_model_invoke.restype = ctypes.c_int
        self.lib.te_model_invoke.argtypes = []
        for k, t in enumerate(inputs):
            got = self.lib.te_model_input_bytes(k)
            if got != t.nbytes:
                raise HostCheckError(f"input {k}: the library says {got} bytes, the plan {t.nbytes}")
        self.arena_bytes = int(self.lib.te_model_arena_bytes())

    def invoke_one(self, sample_inputs: list[bytes]) -> list[bytes]:
        for k, data in enumerate(sample_inputs):
            ctypes.memmove(self.lib.te_model_input(k), data, len(data))
        rc = self.lib.te_model_invoke()
        if rc != 0:
            raise HostCheckError(f"te_model_invoke failed in layer {rc - 1}"
                                 + (f" ({self.plan.steps[rc - 1].op_type})" if self.plan else ""))
        return [ctypes.string_at(self.lib.te_model_output(k), t.nbytes)
                for k, t in enumerate(self._outputs)]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Outputs for a batch (leading sample axis), one array per model output. A streaming model
        runs the samples in order from its initial state, as emulate.run does."""
        if self.plan is not None:
            inputs = check_inputs(self.plan, inputs)
        n = len(inputs[0])
        reset = getattr(self.lib, "te_model_reset_state", None)  # absent in projects of older versions
        if reset is not None:
            reset()  # successive samples are successive invokes from the initial state
        outs: list[list[np.ndarray]] = [[] for _ in self._outputs]
        for s in range(n):
            raw = []
            for x, t in zip(inputs, self._inputs):
                b = np.ascontiguousarray(np.asarray(x[s], dtype=t.dtype)).tobytes()
                if len(b) != t.nbytes:
                    raise HostCheckError(f"sample {s}: input has {len(b)} bytes, the model takes {t.nbytes}")
                raw.append(b)
            for k, (data, t) in enumerate(zip(self.invoke_one(raw), self._outputs)):
                outs[k].append(np.frombuffer(data, dtype=t.dtype).reshape(t.shape))
        return [np.stack(o) for o in outs]


def _tensors(plan: Plan, indices: list[int]) -> list[_Tensor]:
    out = []
    for i in indices:
        b = plan.buffers[i]
        shape = tuple(b.shape[1:]) if b.shape and b.shape[0] == 1 else tuple(b.shape)
        out.append(_Tensor(int(b.nbytes), np.dtype(b.dtype), shape))
    return out


def kernel_sources(firmware: Path | None = None) -> list[Path]:
    fw = firmware or resource_dir("firmware")
    return sorted((fw / "kernels").glob("*.c"))


def compile_sources(model_c: Path, include_dirs: list[Path], kernels: list[Path],
                    emulate_dsp: bool = False, opt: str = "-O2") -> Path:
    defines = ["TE_HOSTCHECK"] + (["TE_EMULATE_DSP"] if emulate_dsp else [])
    return compile_shared([Path(model_c), *kernels], include_dirs, defines, opt)


def compile_host_model(plan: Plan, emulate_dsp: bool = False, mem=None, opt: str = "-O2") -> HostModel:
    """Generate model.c/model.h for ``plan`` (as export would) and load them as a library."""
    from .codegen import generate, render_model_sources
    from .variants import assign_variants

    plan = assign_variants(plan)  # the host stands in for a Cortex-M4: its choice of C variants
    gen = generate(plan, mem)
    files = render_model_sources(gen)
    fw = resource_dir("firmware")
    # A content-addressed source folder: the include path (part of hostc's cache key) is then
    # the same for the same model, so a rebuild of an unchanged model is a cache hit.
    digest = hashlib.sha256("".join(files[k] for k in sorted(files)).encode()).hexdigest()[:20]
    d = _cache_dir() / f"model-{digest}"
    if not (d / "model.c").is_file():
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=d.parent))
        for name, text in files.items():
            (tmp / name).write_text(text)
        try:
            os.replace(tmp, d)
        except OSError:  # a parallel run got there first
            shutil.rmtree(tmp, ignore_errors=True)
    kernels = [fw / "kernels" / name for name in gen.sources]
    lib = compile_sources(d / "model.c", [d, fw / "include"], kernels, emulate_dsp, opt)
    return HostModel(lib, _tensors(plan, plan.inputs), _tensors(plan, plan.outputs), plan, emulate_dsp)


def _cache_dir() -> Path:
    base = os.environ.get("TERNEMBED_CACHE") or Path.home() / ".cache" / "ternembed"
    return Path(base) / "hostcheck"


def load_project(project_dir: Path | str, plan: Plan, emulate_dsp: bool = False,
                 opt: str = "-O2") -> HostModel:
    """The model.c of an exported project (its own copy of the kernels) as a library."""
    d = Path(project_dir)
    lib = compile_sources(d / "src" / "model.c", [d / "src", d / "firmware" / "include"],
                          kernel_sources(d / "firmware"), emulate_dsp, opt)
    return HostModel(lib, _tensors(plan, plan.inputs), _tensors(plan, plan.outputs), plan, emulate_dsp)


def host_run(plan: Plan, inputs: list[np.ndarray], emulate_dsp: bool = False) -> list[np.ndarray]:
    """compile_host_model(plan).run(inputs): the generated C's outputs, like emulate.run."""
    return compile_host_model(plan, emulate_dsp).run(inputs)
