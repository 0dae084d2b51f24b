# SPDX-License-Identifier: Apache-2.0
"""Layer policy for the ternary pass: which method each MAC layer gets, budgets, overrides.

A *method spec* says how one layer is quantized: ``MethodSpec(method, group, planes, levels,
scale_bits)``. As a string (CLI, config files): ``"int8"``, ``"fgq"``, ``"fgq:group=16"``,
``"trn:group=64,planes=2"``, ``"pow2:levels=3,group=32"``, ``"offset"``; ``group=channel`` (or 0)
means one group per output channel.

Methods (see docs/methods.md):

* ``twn``    TWN threshold 0.7*mean|w|, per output channel unless a group is given;
* ``exact``  exact L2 ternary fit, per output channel unless a group is given;
* ``fgq``    exact fit per group of N along the reduction axis (default N = config.group);
* ``trn``    ``fgq`` with residual planes (default 2 planes);
* ``hefan``  He-Fan threshold delta*max|w| (delta 0.05), per group;
* ``tga``    truncated-Gaussian threshold 0.6 sigma, per group;
* ``pow2``   signed powers of two {0, +-a*2^-k, k < levels} per group (GTC analogue);
* ``offset`` RTN-style w = gamma*t + beta: group scales plus a per-channel offset;
* ``int8``   leave the layer as it is.
Every ternary solver accepts ``planes`` (residual planes, each fitting what the earlier ones left).

Config file (TOML), all keys optional::

    method = "fgq"          # default method for ternary layers
    group = 64              # N; "channel" for one group per output channel
    planes = 1              # default 2 for trn
    levels = 2              # pow2 only
    scale_bits = 8          # width of the integer group scales (<= 16)
    first_last = "auto"     # "int8" | "ternary" | "auto" (int8 unless a budget places them)
    depthwise = "int8"      # "int8" | "ternary" | "place" (let the budget placement decide)
    switchable = false      # store one bias row per plane so planes can be switched off at run time
    budget_bits = 3.0       # average bits/weight over MAC layers: codes + group scales (int8 = 8;
                            # FGQ N=64 = 2.125); biases and requantization are not counted here
    max_flash = "64k"       # total constant bytes of the plan
    min_agreement = 0.99    # top-1 agreement (classifiers) or output cosine, on calibration data
    max_planes = 3          # placement candidates: 1..max_planes planes at `group`, and int8
    candidates = ["fgq:group=16", "trn:group=64,planes=2"]   # or an explicit candidate list
    task = "auto"           # "classify" | "regress" | "auto"
    sensitivity = "model"   # "model" (rerun the rest of the network) | "layer" (layer output proxy)
    bias_correction = "layer"  # with calibration inputs: keep each layer's mean accumulator on the
                            # int8 network's inputs; "sequential": on the inputs the layer sees in the
                            # partly ternarized network (helped IC, hurt SWW in our measurements);
                            # "off"; true/false = layer/off
    detect_lossless = true  # pack already-ternary layers losslessly
    fit = "auto"            # "plain" weight-L2 fits | "feedback" error-feedback fits on calibration
                            # statistics (see calibfit) | "auto": feedback when calibration inputs exist

    [layers]                # per-layer overrides: op index or buffer name -> spec
    0 = "int8"
    "dense_2" = "trn:planes=3"
    [layers.conv1]          # or a table
    method = "pow2"
    levels = 3
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from ..cliargs import GROUP_MAX, GROUP_MIN
from ..errors import InputError

__all__ = ["MethodSpec", "TernaryConfig", "parse_spec", "parse_size", "load_config", "config_from_dict",
           "SOLVER_OF", "TERNARY_METHODS"]

#: method name -> solver of ternembed.quantize.ternary (pow2/offset have their own fitting)
SOLVER_OF = {"twn": "twn", "exact": "exact", "fgq": "exact", "trn": "exact", "hefan": "hefan",
             "tga": "tga", "pow2": "exact", "offset": "exact"}
TERNARY_METHODS = tuple(SOLVER_OF)
_PER_CHANNEL_DEFAULT = {"twn", "exact"}  # TWN and plain exact fit are per channel unless told


@dataclass(frozen=True)
class MethodSpec:
    """How one layer is quantized. ``group`` None = one group per output channel."""

    method: str = "fgq"
    group: int | None = 64
    planes: int = 1
    levels: int = 2
    scale_bits: int = 8

    def __post_init__(self) -> None:
        if self.method != "int8" and self.method not in TERNARY_METHODS:
            raise InputError(f"unknown method {self.method!r}; choose one of int8, {', '.join(TERNARY_METHODS)}")
        if self.group is not None and self.group < 1:
            raise InputError(f"group size must be >= 1 (got {self.group})")
        if not 1 <= self.planes <= 8:
            raise InputError(f"planes must be in 1..8 (got {self.planes})")
        if not 1 <= self.levels <= 7:
            raise InputError(f"pow2 levels must be in 1..7 (got {self.levels})")
        if not 1 <= self.scale_bits <= 16:
            raise InputError(f"scale_bits must be in 1..16 (got {self.scale_bits})")
        if self.method in ("pow2", "offset") and self.planes != 1:
            raise InputError(f"{self.method} takes a single plane (got planes={self.planes})")

    @property
    def is_int8(self) -> bool:
        return self.method == "int8"

    def label(self) -> str:
        """Short human form, e.g. ``fgq/N64x2``, ``pow2/N32 L3``, ``twn/ch``."""
        if self.is_int8:
            return "int8"
        g = "ch" if self.group is None else f"N{self.group}"
        s = f"{self.method}/{g}"
        if self.planes > 1:
            s += f"x{self.planes}"
        if self.method == "pow2":
            s += f" L{self.levels}"
        return s

    def to_string(self) -> str:
        if self.is_int8:
            return "int8"
        g = "channel" if self.group is None else str(self.group)
        s = f"{self.method}:group={g},planes={self.planes},scale_bits={self.scale_bits}"
        if self.method == "pow2":
            s += f",levels={self.levels}"
        return s


def _parse_group(v: Any) -> int | None:
    if v is None or (isinstance(v, str) and v.lower() in ("channel", "ch", "none", "row")):
        return None
    try:
        g = int(v)
    except (TypeError, ValueError):
        raise InputError(f"group must be a positive integer or 'channel' (got {v!r})") from None
    if g != 0 and not GROUP_MIN <= g <= GROUP_MAX:
        raise InputError(f"group must be {GROUP_MIN}..{GROUP_MAX} or 'channel' (got {v!r})")
    return None if g == 0 else g


def parse_spec(spec: str | Mapping[str, Any] | MethodSpec, base: "TernaryConfig | None" = None) -> MethodSpec:
    """A MethodSpec from a string ``method[:key=value,...]``, a mapping, or a MethodSpec.

    Missing fields come from ``base`` (the config's defaults): group, levels, scale_bits; the
    planes default is 2 for ``trn`` and 1 otherwise; ``twn``/``exact`` default to per channel.
    """
    if isinstance(spec, MethodSpec):
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        name, _, rest = text.partition(":")
        kv: dict[str, Any] = {"method": name.strip().lower()}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            k, eq, v = part.partition("=")
            if not eq:
                raise InputError(f"bad method spec {spec!r}: expected key=value after ':' (e.g. fgq:group=16)")
            kv[k.strip().lower()] = v.strip()
    elif isinstance(spec, Mapping):
        kv = {str(k).lower(): v for k, v in spec.items()}
    else:
        raise InputError(f"a method spec must be a string or a table (got {type(spec).__name__})")
    known = {"method", "group", "planes", "levels", "scale_bits"}
    bad = set(kv) - known
    if bad:
        raise InputError(f"unknown key(s) {', '.join(sorted(bad))} in method spec {spec!r}; known: {', '.join(sorted(known))}")
    method = str(kv.get("method", base.method if base else "fgq")).lower()
    if method == "int8":
        return MethodSpec(method="int8")
    if method not in TERNARY_METHODS:
        raise InputError(f"unknown method {method!r}; choose one of int8, {', '.join(TERNARY_METHODS)}")
    if "group" in kv:
        group = _parse_group(kv["group"])
    elif method in _PER_CHANNEL_DEFAULT:
        group = None
    else:
        group = base.group if base else 64
    try:
        dflt_planes = 2 if method == "trn" else 1
        if base is not None and base.planes is not None and method not in ("pow2", "offset"):
            dflt_planes = base.planes
        planes = int(kv.get("planes", dflt_planes))
        levels = int(kv.get("levels", base.levels if base else 2))
        sbits = int(kv.get("scale_bits", base.scale_bits if base else 8))
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad number in method spec {spec!r}: {exc}") from None
    return MethodSpec(method=method, group=group, planes=planes, levels=levels, scale_bits=sbits)


def parse_size(v: Any) -> int | None:
    """Bytes from 65536, "64k", "64KB", "1.5M" (k = 1024)."""
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        value = float(v)
    else:
        m = re.fullmatch(r"\s*([0-9]+\.?[0-9]*|\.[0-9]+)\s*([kKmM]?)[iI]?[bB]?\s*", str(v))
        value = float(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()] if m else math.nan
    if not (math.isfinite(value) and value >= 0):  # also NaN, inf and negatives from a config file
        raise InputError(f"bad size {v!r}: use bytes or a k/M suffix, e.g. 64k")
    return int(value)


@dataclass
class TernaryConfig:
    """Everything the ternary pass needs to decide. See the module docstring for the fields."""

    method: str = "fgq"
    group: int | None = 64
    planes: int | None = None  # None: 2 for trn, 1 otherwise
    levels: int = 2
    scale_bits: int = 8
    first_last: str = "auto"
    depthwise: str = "int8"
    switchable: bool = False
    budget_bits: float | None = None
    max_flash: int | None = None
    min_agreement: float | None = None
    max_planes: int = 3
    candidates: list[str] | None = None
    task: str = "auto"
    sensitivity: str = "model"
    detect_lossless: bool = True
    bias_correction: str = "layer"
    fit: str = "auto"
    layers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.max_flash = parse_size(self.max_flash)
        if self.first_last not in ("auto", "int8", "ternary"):
            raise InputError(f"first_last must be auto, int8 or ternary (got {self.first_last!r})")
        if self.depthwise not in ("int8", "ternary", "place"):
            raise InputError(f"depthwise must be int8, ternary or place (got {self.depthwise!r})")
        if self.task not in ("auto", "classify", "regress"):
            raise InputError(f"task must be auto, classify or regress (got {self.task!r})")
        if self.bias_correction is True:
            self.bias_correction = "layer"
        elif self.bias_correction is False:
            self.bias_correction = "off"
        if self.bias_correction not in ("sequential", "layer", "off"):
            raise InputError(f"bias_correction must be sequential, layer or off (got {self.bias_correction!r})")
        if self.fit not in ("auto", "plain", "feedback"):
            raise InputError(f"fit must be auto, plain or feedback (got {self.fit!r})")
        if self.sensitivity not in ("model", "layer"):
            raise InputError(f"sensitivity must be model or layer (got {self.sensitivity!r})")
        if self.budget_bits is not None and not (isinstance(self.budget_bits, (int, float))
                                                  and 0 < self.budget_bits < math.inf):
            raise InputError(f"budget_bits must be a positive number (got {self.budget_bits!r})")
        if self.min_agreement is not None and not 0 < self.min_agreement <= 1:
            raise InputError("min_agreement must be in (0, 1]")
        self.group = _parse_group(self.group)
        self.default_spec()  # validates method/group/planes

    @property
    def budgeted(self) -> bool:
        return self.budget_bits is not None or self.max_flash is not None or self.min_agreement is not None

    def default_spec(self) -> MethodSpec:
        d: dict[str, Any] = {"method": self.method, "group": self.group if self.group is not None else "channel",
                             "levels": self.levels, "scale_bits": self.scale_bits}
        if self.planes is not None:
            d["planes"] = self.planes
        return parse_spec(d, self)

    def candidate_specs(self) -> list[MethodSpec]:
        """Ternary candidates of the placement (int8 is always a candidate too)."""
        if self.candidates:
            return [parse_spec(c, self) for c in self.candidates]
        base = self.default_spec()
        if base.method == "pow2":
            return [replace(base, levels=L) for L in range(1, max(self.levels, 3) + 1)]
        if base.method == "offset":
            return [base]
        return [replace(base, planes=p) for p in range(1, self.max_planes + 1)]

    def with_overrides(self, **kw: Any) -> "TernaryConfig":
        return replace(self, **kw)


_CONFIG_KEYS = {f for f in TernaryConfig.__dataclass_fields__}


def config_from_dict(d: Mapping[str, Any]) -> TernaryConfig:
    """A TernaryConfig from a parsed TOML/JSON mapping (unknown keys are an error)."""
    d = dict(d)
    bad = set(d) - _CONFIG_KEYS
    if bad:
        raise InputError(f"unknown config key(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(_CONFIG_KEYS))}")
    layers = d.pop("layers", {}) or {}
    if not isinstance(layers, Mapping):
        raise InputError("[layers] must be a table of layer -> method spec")
    cfg = TernaryConfig(**d, layers={str(k): v for k, v in layers.items()})
    for k, v in cfg.layers.items():
        parse_spec(v, cfg)  # fail early on a bad spec
    return cfg


MAX_CONFIG_BYTES = 1 << 20  # a config is a few lines; reading is bounded


def load_config(path: str | Path) -> TernaryConfig:
    """Read a TOML config file (see the module docstring)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such config file" if not p.exists() else f"{p}: not a file")
    try:
        with open(p, "rb") as f:
            text = f.read(MAX_CONFIG_BYTES + 1)
        if len(text) > MAX_CONFIG_BYTES:
            raise InputError(f"{p}: larger than {MAX_CONFIG_BYTES >> 10} KB; is it a config file?")
        data = tomllib.loads(text.decode())
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeError) as exc:
        raise InputError(f"{p}: not valid TOML ({exc})") from None
    return config_from_dict(data)
