# SPDX-License-Identifier: Apache-2.0
"""The MAC kernels, described once: name, layer family, weight kind, C functions, C files, header.

Every other module asks this registry instead of spelling kernel names or parsing them:

    >>> spec("conv_t2_s8").family, spec("conv_t2_s8").weights, spec("conv_t2_s8").variants
    ('conv', 't2', ('default', 'lut'))
    >>> spec("conv_t2_s8").c_function("lut")
    'te_conv_t2_lut_s8'

What a kernel computes lives beside it: the numpy twin in ``kernels/`` (``kernels.ternary`` for
every ternary kernel, registered with the emulator in ``emulate.py``), its C call in
``codegen/emitters*.py``, its scratch size below (the mirror of the C
``*_get_buffer_size`` functions). Adding a kernel: docs/architecture.md.
"""
from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("fc", "conv", "dwconv")
TERNARY_WEIGHTS = ("t2", "to", "p2")  # ternary planes; ternary + per-channel offset; powers of two
TERNARY_HEADER = "te_kernels_ternary.h"
INT8_HEADER = "te_kernels_mac.h"

# The shared ternary matrix core every ternary kernel links: layer + portable path, DSP input
# widening, DSP row blocks, assembly plane sweeps, output stage.
TERNARY_CORE = ("te_nn_tern_mm_s8.c", "te_nn_tern_widen_s8.c", "te_nn_tern_dsp_s8.c",
                 "te_nn_tern_sweep_s8.c", "te_nn_tern_out_s8.c")
_DEPTHWISE_SPAN = "te_dw_span_s8.c"  # the depthwise machinery the int8 and ternary kernels share
# Table-lookup (T-MAC style) variants: their entry point and the table core.
_VARIANTS = {"fc_t2_s8": ("default", "lut"), "conv_t2_s8": ("default", "lut")}


@dataclass(frozen=True)
class KernelSpec:
    name: str  # the Step's kernel, e.g. "fc_t2_s8"
    family: str  # fc | conv | dwconv
    weights: str  # s8 (int8) | t2 | to | p2
    variants: tuple[str, ...] = ("default",)  # C functions to choose from ("default" first)

    @property
    def ternary(self) -> bool:
        return self.weights != "s8"

    @property
    def header(self) -> str:
        return TERNARY_HEADER if self.ternary else INT8_HEADER

    def c_function(self, variant: str | None = "default") -> str:
        """te_fc_t2_s8 (default: its DSP and portable paths behind one name), te_fc_t2_lut_s8, ..."""
        if variant in (None, "", "default"):
            return f"te_{self.name}"
        if variant not in self.variants:
            raise ValueError(f"{self.name} has no variant {variant!r}; known: {', '.join(self.variants)}")
        return f"te_{self.family}_{self.weights}_{variant}_s8"

    def variant_sources(self) -> tuple[str, ...]:
        """The C files of the non-default variants (entry point and its core)."""
        return tuple(f for v in self.variants[1:]
                     for f in (f"te_{self.family}_{self.weights}_{v}_s8.c", f"te_tern_{v}_s8.c"))

    def sources(self) -> tuple[str, ...]:
        """Every C file a model using this kernel compiles (unused functions go at link time)."""
        if not self.ternary:
            files = [f"te_{self.name}.c", *(() if self.family == "dwconv" else ("te_nn_mat_mult_s8.c",))]
        else:
            files = [f"te_{self.name}.c", f"te_{self.family}_t2_s8.c", *TERNARY_CORE, *self.variant_sources()]
        if self.family == "dwconv":
            files.append(_DEPTHWISE_SPAN)
        return tuple(dict.fromkeys(files))


MAC_KERNELS: dict[str, KernelSpec] = {
    **{f"{f}_s8": KernelSpec(f"{f}_s8", f, "s8") for f in FAMILIES},
    **{f"{f}_{w}_s8": KernelSpec(f"{f}_{w}_s8", f, w, _VARIANTS.get(f"{f}_{w}_s8", ("default",)))
       for w in TERNARY_WEIGHTS for f in FAMILIES},
}
INT8_KERNELS = tuple(k for k, s in MAC_KERNELS.items() if not s.ternary)
TERNARY_KERNELS = tuple(k for k, s in MAC_KERNELS.items() if s.ternary)
#: Every ternary C file in firmware/kernels (host builds of the kernels alone compile them all).
TERNARY_C_FILES = tuple(dict.fromkeys(f for k in TERNARY_KERNELS for f in MAC_KERNELS[k].sources()))


def spec(kernel: str) -> KernelSpec:
    """The registry entry of a MAC kernel; KeyError names the known ones."""
    try:
        return MAC_KERNELS[kernel]
    except KeyError:
        raise KeyError(f"{kernel!r} is not a MAC kernel; known: {', '.join(MAC_KERNELS)}") from None


def kernels_of(weights: str) -> tuple[str, ...]:
    """The kernels with one weight kind, in family order: kernels_of("t2") -> fc_t2_s8, conv_t2_s8, ..."""
    return tuple(k for k, s in MAC_KERNELS.items() if s.weights == weights)


# ---- scratch: mirrors of the C *_get_buffer_size functions (tests compare them through ctypes) ----

def scratch_bytes(kernel: str, params: dict, in_shape: tuple[int, ...], variant: str = "default") -> int:
    """Bytes of scratch the C kernel needs (mirror of the *_get_buffer_size functions)."""
    fam, kind = spec(kernel).family, spec(kernel).weights
    K = int(params["depth"])
    taps = 8 if kind == "p2" else 16
    vec = -(-K // taps) * taps * 2
    table = 1024 if kind == "p2" else 0
    if fam == "fc":
        n = int(in_shape[0]) if len(in_shape) else int(params.get("rows", 1))
        O = int(params["out_channels"])
        default = (2 if n >= 2 else 1) * vec + table + (16 if n >= 2 else 8) * O + (24 * O if n >= 3 else 0)
        if variant == "lut":  # the LUT kernel falls back to the default core for other group layouts
            return max(lut_scratch_bytes(n >= 2, O * int(params.get("planes", 1))), default)
        return default
    if fam == "conv":
        O = int(params["out_channels"])
        default = 2 * vec + table + ((K + 3) & ~3) + 40 * O
        if variant == "lut":  # two-lane tables, output records, two int8 patches
            lut = lut_scratch_bytes(True, O * int(params.get("planes", 1))) + 24 * O + 2 * ((K + 3) & ~3)
            return max(lut, default)
        return default
    kh, kw = params["kernel_hw"]
    return 4 * int(kh) * int(kw) * int(params["out_channels"])


#: tables per chunk of the LUT core (must match TE_LUT_NT in te_tern_lut_s8.c)
LUT_TABLES = 8


def lut_scratch_bytes(wide: bool, rows: int) -> int:
    """te_tern_lut_bytes: one chunk of tables (512 B each, 1 KiB for two vectors), a group sum
    per row (rows = planes * O) and one accumulator per row and vector."""
    return LUT_TABLES * (1024 if wide else 512) + 4 * rows * (3 if wide else 2)
