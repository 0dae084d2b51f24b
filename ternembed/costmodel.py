# SPDX-License-Identifier: Apache-2.0
"""Kernel cost model: measured instructions per MAC of every kernel variant, and the variant choice.

The numbers come from ``benchmarks/kernels.py --write`` (QEMU ``-icount``, gcc -O3, one firmware
per core and build), stored in ``ternembed/kernel_costs.json``: for each C function, configuration
(int8, t2, t2 g=K, t2 2 planes, t2 lut, to, p2 L=2), benchmark shape, core (cortex-m4, cortex-m7)
and build (dsp, portable) the instructions per MAC and the scratch bytes.

A call is estimated by a fitted per-variant formula, :func:`fit_features` (MACs, MACs with K rounded
up to a 16-tap code word, K*V, O*V, V and 1, with K taps per output, O outputs per vector and V
vectors = FC rows or output pixels) times non-negative coefficients fitted per C function,
configuration, shape class, core and build on a grid of benchmark shapes (``fits`` in the JSON;
``benchmarks/results/kernels.md`` shows its error on held-out layers of the shared models). Where no
fit exists, the measured shape nearest in (K, O) within the Step's *shape class* (:func:`shape_class`:
``fc_wide``, ``fc_narrow``, ``conv_1x1``, ``conv_kxk``, ``dwconv``) gives instructions per MAC. Cores
without the DSP extension (Cortex-M0/M0+/M3/M23) use the portable-build measurements; other cores
without measurements of their own use the Cortex-M4 ones.

Variants (the C function the exporter calls for a ternary Step, see ``firmware/include/
te_kernels_ternary.h``): ``default`` (``te_<kernel>``, SMLAD decode on DSP cores) for every
kernel, and ``lut`` (``te_fc_t2_lut_s8`` / ``te_conv_t2_lut_s8``, table lookup) for ``fc_t2_s8``
and ``conv_t2_s8`` with at least :data:`LUT_MIN_DEPTH` taps. All variants of a kernel take the
same packed weights and compute the same bytes; they differ in speed and scratch RAM.

``choose_variant(step, core, optimize)``: ``"speed"`` = fewest estimated instructions; ``"size"`` =
least scratch RAM (then fewest instructions); ``"balanced"`` = fewest instructions among the
variants whose scratch is at most twice the smallest plus 1 KiB.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .kernelspec import MAC_KERNELS, spec
from .kernelspec import scratch_bytes as _tern_scratch

__all__ = ["COSTS_PATH", "OPTIMIZE", "VariantCost", "shape_class", "variants", "candidates", "estimate", "call_cost", "find_fit",
           "choose_variant", "lut_applies", "scratch_bytes", "costs", "summary", "NO_DSP_CORES"]

COSTS_PATH = Path(__file__).with_name("kernel_costs.json")
OPTIMIZE = ("speed", "size", "balanced")
#: Where the table-lookup variant is considered at all. Its row pass handles 8 tables of 4 taps
#: at once (shorter rows run a C loop), and its tables are built per input vector and shared by
#: the rows: measured on Cortex-M4 it wins from 64 rows on (pw 64->64: 0.70x int8, FC 640->128:
#: 0.85x) and loses with few rows (FC 256->10: 2.3x) or a single output pixel (SWW's last
#: pointwise layer, 128->32 on one pixel: 1.7x). The nearest measured shape alone cannot tell.
LUT_MIN_DEPTH = 32
LUT_MIN_ROWS = 64


def lut_applies(step) -> bool:
    """Whether the table-lookup variant is a candidate for this step (see LUT_MIN_ROWS)."""
    K, O, _ = _geometry(step)
    p = step.params
    rows = O * int(p.get("active_planes", p.get("planes", 1)))
    if K < LUT_MIN_DEPTH or rows < LUT_MIN_ROWS:
        return False
    if _family(step.kernel) == "conv":
        oh, ow = p.get("out_hw", (1, 1))
        return int(oh) * int(ow) >= 2
    return True
NO_DSP_CORES = {"cortex-m0", "cortex-m0plus", "cortex-m0+", "cortex-m1", "cortex-m3", "cortex-m23"}


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: kernel cost table missing; run `python benchmarks/kernels.py --write`")
    return json.loads(p.read_text())


def costs(path: Path | str | None = None) -> dict:
    """The measured table (``entries``: list of dicts) and its calibration."""
    return _load(str(path or COSTS_PATH))


@dataclass(frozen=True)
class VariantCost:
    variant: str
    function: str  # C function
    instructions: float  # estimate for the whole call
    instructions_per_mac: float
    scratch_bytes: int
    basis: str  # which measurement it came from


def _family(kernel: str) -> str:
    return spec(kernel).family


def _geometry(step) -> tuple[int, int, tuple[int, int]]:
    """(K, O, kernel_hw) of a MAC step (int8 or ternary)."""
    p = step.params
    fam = _family(step.kernel)
    if spec(step.kernel).ternary:  # (int8 FC steps have a "depth" too)
        K, O = int(p["depth"]), int(p["out_channels"])
        khw = tuple(int(v) for v in p.get("kernel_hw", (1, 1)))
        return K, O, khw
    w = np.asarray(p["weights"])
    if fam == "fc":
        return int(np.prod(w.shape[1:])), int(w.shape[0]), (1, 1)
    if fam == "conv":
        return int(np.prod(w.shape[1:])), int(w.shape[0]), (int(w.shape[1]), int(w.shape[2]))
    return int(w.shape[1] * w.shape[2]), int(w.shape[3]), (int(w.shape[1]), int(w.shape[2]))


def shape_class(step) -> str:
    """fc_wide (O >= 32) | fc_narrow | conv_1x1 | conv_kxk | dwconv."""
    fam = _family(step.kernel)
    K, O, khw = _geometry(step)
    if fam == "fc":
        return "fc_wide" if O >= 32 else "fc_narrow"
    if fam == "conv":
        return "conv_1x1" if khw == (1, 1) else "conv_kxk"
    return "dwconv"


#: The terms of the fitted formula, in the order of the coefficients in kernel_costs.json.
FIT_FEATURES = ("macs", "k16*o*v", "k*v", "o*v", "v", "1", "gathered k*v", "o")


def gathers_taps(kernel_hw, in_channels: int) -> bool:
    """A KxK conv whose kernel rows are not whole 16-tap code words (KW*C % 16): the ternary kernels
    gather its patches tap by tap instead of widening input rows in place (te_conv_t2_s8.c)."""
    kh, kw = (int(v) for v in kernel_hw)
    return kh * kw > 1 and (kw * int(in_channels)) % 16 != 0


def fit_features(K: int, O: int, V: int, gathered: bool = False) -> list[float]:
    """FIT_FEATURES of one call: K taps per output, O outputs per vector, V vectors."""
    return [K * O * V, -(-K // 16) * 16 * O * V, K * V, O * V, V, 1, K * V if gathered else 0, O]


def fit_class(sclass: str) -> str:
    """The fits pool fc_wide and fc_narrow (the formula has O in it)."""
    return "fc" if sclass.startswith("fc") else sclass


def _gathers(step) -> bool:
    if _family(step.kernel) != "conv":
        return False
    p = step.params
    if spec(step.kernel).ternary:
        return gathers_taps(p.get("kernel_hw", (1, 1)), int(p.get("in_channels", 1)))
    w = np.asarray(p["weights"])
    return gathers_taps(w.shape[1:3], int(w.shape[3]))


def _measured_as(step, variant: str) -> tuple[str, str]:
    """(C function, benchmark configuration) under which the step's kernel was measured."""
    kind = spec(step.kernel).weights
    function = f"{_family(step.kernel)}_s8" if kind == "s8" else spec(step.kernel).c_function(variant)
    return function, _config_of(step, variant)


def find_fit(t: dict, function: str, config: str, sclass: str, core: str, build: str) -> dict | None:
    """The fitted formula of a C function, configuration, shape class, core and build in table ``t``."""
    key = (function, config, fit_class(sclass), core, build)
    for f in t.get("fits", ()):
        if (f["function"], f["config"], f["shape_class"], f["core"], f["build"]) == key:
            return f
    return None


def _macs(step) -> int:
    if step.macs:
        return int(step.macs)
    p = step.params
    K, O, _ = _geometry(step)
    if _family(step.kernel) == "fc":
        return K * O * int(p.get("rows", 1))
    oh, ow = p["out_hw"]
    return K * O * int(oh) * int(ow)


def _config_of(step, variant: str) -> str:
    """The benchmark configuration label that best matches a step."""
    kind = spec(step.kernel).weights
    if kind == "s8":
        return "int8"
    if kind == "to":
        return "to"
    if kind == "p2":
        return "p2 L=2"
    p = step.params
    base = "t2 lut" if variant == "lut" else "t2"
    if int(p.get("active_planes", p.get("planes", 1))) > 1:
        return base + " 2 planes"
    whole = int(p.get("group", 0)) >= int(p.get("depth", 0))
    return base + " g=K" if whole else base


def _core_key(core: str) -> tuple[str, str]:
    c = core.lower().replace("_", "-")
    if c in NO_DSP_CORES:
        return "cortex-m4", "portable"
    if c in ("cortex-m4", "cortex-m7"):
        return c, "dsp"
    return "cortex-m4", "dsp"  # M33/M35P/M55 with DSP: nearest measured


def _pick(entries, function: str, config: str, sclass: str, core: str, build: str, K: int, O: int):
    cands = [e for e in entries if e["function"] == function and e["config"] == config and e["core"] == core
             and e["build"] == build]
    if not cands:
        cands = [e for e in entries if e["function"] == function and e["core"] == core and e["build"] == build
                 and e["config"].split()[0] == config.split()[0]]
    if not cands:
        return None
    same = [e for e in cands if e["shape_class"] == sclass] or cands

    def dist(e):
        k, o = _shape_ko(e)
        return abs(math.log(max(k, 1) / max(K, 1))) + abs(math.log(max(o, 1) / max(O, 1)))
    return min(same, key=dist)


def _shape_ko(e) -> tuple[int, int]:
    """(K, O) of a measurement: its K and O fields, or (older tables) parsed from the shape label, e.g.
    'fc 640->128', 'pw 64->64 25x5', 'dw3x3 64ch 25x5'."""
    if "K" in e and "O" in e:
        return int(e["K"]), int(e["O"])
    s = e["shape"]
    try:
        if s.startswith("dw"):
            c = int(s.split()[1].rstrip("ch"))
            kh = int(s[2])
            return kh * kh, c
        a, b = s.split()[1].split("->")
        k = int(a)
        if s.startswith("conv") and "x" in s.split()[0]:
            kh = int(s.split()[0][4])
            k *= kh * kh
        return k, int(b)
    except (ValueError, IndexError):
        return 1, 1


def variants(kernel: str) -> tuple[str, ...]:
    """The C variants of a kernel name (int8 kernels: just 'default')."""
    return MAC_KERNELS[kernel].variants if kernel in MAC_KERNELS else ("default",)


def candidates(step) -> tuple[str, ...]:
    """The variants worth estimating for this step (the table lookup only where it can win)."""
    return tuple(v for v in variants(step.kernel) if v != "lut" or lut_applies(step))


def scratch_bytes(step, variant: str = "default") -> int:
    """Scratch RAM of the C kernel for this step and variant (ternary kernels; int8: conv im2col)."""
    if not spec(step.kernel).ternary:
        if _family(step.kernel) == "conv":
            K, _, _ = _geometry(step)
            return 2 * K
        return 0
    p = step.params
    return int(_tern_scratch(step.kernel, p, (), variant))


def estimate(step, core: str, variant: str = "default", table: dict | None = None) -> VariantCost:
    """Estimated instructions of one call of ``step`` on ``core`` with ``variant``."""
    t = table or costs()
    ckey, build = _core_key(core)
    kind = spec(step.kernel).weights
    function, config = _measured_as(step, variant)
    K, O, _ = _geometry(step)
    macs = _macs(step)
    sclass = shape_class(step)
    f = find_fit(t, function, config, sclass, ckey, build)
    if f is not None:
        V = max(macs // max(K * O, 1), 1)
        ipm = float(np.dot(f["coef"], fit_features(K, O, V, _gathers(step)))) / max(macs, 1)
        basis = f"fit {f['function']} {f['config']} {f['shape_class']} {f['core']}/{f['build']}"
        fit_config = f["config"]
    else:
        e = _pick(t["entries"], function, config, sclass, ckey, build, K, O)
        if e is None:
            raise KeyError(f"no measurement for {function} ({config}) on {ckey}/{build}")
        ipm = float(e["instructions_per_mac"])
        basis = f"{e['function']} {e['config']} {e['shape']} {e['core']}/{e['build']}"
        fit_config = e["config"]
    planes = int(step.params.get("active_planes", step.params.get("planes", 1))) if kind == "t2" else 1
    if planes > 1:  # residual planes cost about one pass each (measured: 2 planes ~ 1.9-2x)
        ipm *= planes / 2 if "2 planes" in fit_config else planes
    return VariantCost(variant, function, ipm * macs, ipm, scratch_bytes(step, variant), basis)


def call_cost(step, core: str, variant: str | None = None, table: dict | None = None) -> float:
    """Instructions one more call of the step costs when its output is made in several calls (row
    streaming): the per-call terms ("1", "o") of its fitted formula. 0 without a fit."""
    f = find_fit(table or costs(), *_measured_as(step, variant or step.params.get("variant", "default")),
                 shape_class(step), *_core_key(core))
    if f is None:
        return 0.0
    _, O, _ = _geometry(step)
    coef = dict(zip(FIT_FEATURES, f["coef"]))
    return float(coef["1"] + coef["o"] * O)


def choose_variant(step, core: str, optimize: str = "speed", table: dict | None = None) -> str:
    """The variant to export for ``step`` on ``core`` ('default' or e.g. 'lut')."""
    if optimize not in OPTIMIZE:
        raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE)} (got {optimize!r})")
    opts = candidates(step)
    if len(opts) == 1:
        return opts[0]
    ests = []
    for v in opts:
        try:
            ests.append(estimate(step, core, v, table))
        except KeyError:
            continue
    if not ests:
        return "default"
    if optimize == "speed":
        return min(ests, key=lambda c: (c.instructions, c.scratch_bytes)).variant
    if optimize == "size":
        return min(ests, key=lambda c: (c.scratch_bytes, c.instructions)).variant
    smallest = min(c.scratch_bytes for c in ests)
    ok = [c for c in ests if c.scratch_bytes <= 2 * smallest + 1024]
    return min(ok, key=lambda c: c.instructions).variant


def summary(step, core: str, table: dict | None = None) -> list[dict[str, Any]]:
    """Every candidate variant's estimate, for reports."""
    out = []
    for v in candidates(step):
        try:
            c = estimate(step, core, v, table)
        except KeyError:
            continue
        out.append(dict(variant=c.variant, function=c.function, instructions=round(c.instructions),
                        instructions_per_mac=round(c.instructions_per_mac, 3), scratch_bytes=c.scratch_bytes,
                        basis=c.basis))
    return out
