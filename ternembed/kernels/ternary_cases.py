# SPDX-License-Identifier: Apache-2.0
"""Random ternary Steps that honour the integer contract, and their C rendering.

Used by the C-kernel tests and by ``benchmarks/kernels.py``: :func:`random_step` builds a Step
with exactly the params :func:`ternembed.quantize.plan_pass.build_step` would produce (packed
codes, scales, plane shifts, folded bias within the int32 accumulator bound, requantization),
and :func:`render_call` turns one Step plus an input into C: static arrays and a call of the
matching ``te_*_s8`` function of ``firmware/include/te_kernels_ternary.h``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import pack
from ..fixedpoint import quantize_multiplier
from ..kernelspec import scratch_bytes, spec
from ..plan import Step
from .ternary import accumulator_bound, decode_weights

__all__ = ["random_step", "random_input", "out_size", "render_call", "CCall"]

INT32_MAX = 2**31 - 1

def out_size(size: int, k: int, stride: int, dilation: int, pad: int) -> int:
    """Output length with `pad` zero-point taps before the input and as many after."""
    return (size + 2 * pad - ((k - 1) * dilation + 1)) // stride + 1


def random_input(rng: np.random.Generator, step: Step, batches: int = 1, in_hw=None) -> np.ndarray:
    """An int8 input for the step: FC [N, K]; conv/dwconv [N, H, W, C] (in_hw from step params)."""
    p = step.params
    if spec(step.kernel).family == "fc":
        return rng.integers(-128, 128, size=(batches, int(p["depth"])), dtype=np.int8)
    h, w = p["_in_hw"] if in_hw is None else in_hw
    c = int(p["in_channels"])
    return rng.integers(-128, 128, size=(batches, int(h), int(w), c), dtype=np.int8)


def _ternary(rng, shape, zero_frac):
    nz = rng.random(shape) >= zero_frac
    sign = np.where(rng.random(shape) < 0.5, -1, 1)
    return (nz * sign).astype(np.int8)


def random_step(rng: np.random.Generator, kernel: str, *, out_channels: int, depth: int | None = None,
                in_hw=(5, 5), in_channels: int = 8, kernel_hw=(3, 3), stride=(1, 1), dilation=(1, 1),
                pad=(1, 1), depth_multiplier: int = 1, planes: int = 1, active_planes: int | None = None,
                group: int | None = None, scale_bits: int = 8, levels: int = 2, zero_frac: float = 0.4,
                switchable: bool = False, scale_max: int | None = None, extreme: bool = False,
                act: tuple[int, int] | None = None, scale_min: int = 0) -> Step:
    """A contract-valid random ternary Step for ``kernel`` (e.g. "conv_t2_s8").

    FC: ``depth`` = K, ``out_channels`` = O. conv: K = KH*KW*in_channels. dwconv: ``out_channels``
    is ignored, O = in_channels * depth_multiplier, K = KH*KW. ``group`` None = one group per row.
    ``extreme`` pushes scales to their maximum and the bias to the accumulator bound; ``act``
    fixes the clamp range (default random). ``scale_min`` 1 keeps every row alive, as in a fitted
    layer (a zero-scale row gets a left-shift multiplier, which sends the C kernel down its slow
    output path: right for a contract test, wrong for a timing).
    The input's spatial size is kept in params["_in_hw"] (not part of the contract).
    """
    fam, kind = spec(kernel).family, spec(kernel).weights
    if fam == "fc":
        K = int(depth)
        O = int(out_channels)
    elif fam == "conv":
        K = int(kernel_hw[0]) * int(kernel_hw[1]) * int(in_channels)
        O = int(out_channels)
    else:
        K = int(kernel_hw[0]) * int(kernel_hw[1])
        O = int(in_channels) * int(depth_multiplier)
    if kind != "t2":
        planes = 1
    N = K if group is None else min(int(group), K)
    G = -(-K // N)
    smax = (2**scale_bits - 1) if scale_max is None else int(scale_max)
    sdt = np.uint8 if scale_bits <= 8 else np.uint16
    params: dict = {}
    for _ in range(64):
        scales = rng.integers(smax if extreme else min(scale_min, smax), smax + 1, size=(planes, O, G)).astype(np.int64)
        if kind == "p2":
            mags = rng.integers(1, levels + 1, size=(O, K))
            signs = np.where(rng.random((O, K)) < 0.5, -1, 1)
            nz = rng.random((O, K)) >= zero_frac
            nib = (mags * signs * nz).astype(np.int8)
            params = dict(format="int4", codes=pack.pack_int4(nib), levels=int(levels),
                          scales=scales[0].astype(sdt))
        else:
            codes = _ternary(rng, (planes, O, K), zero_frac)
            params = dict(format="2bit", codes=pack.pack_2bit(codes.reshape(-1, K)))
            if kind == "t2":
                params.update(planes=planes, active_planes=planes if active_planes is None else int(active_planes),
                              scales=scales.astype(sdt))
                if planes > 1:
                    params["plane_shift"] = rng.integers(0, 4, size=(planes, O)).astype(np.uint8)
            else:
                params.update(scales=scales[0].astype(sdt),
                              offset=rng.integers(-smax, smax + 1, size=O).astype(np.int32))
        params.update(out_channels=O, depth=K, group=N)
        W, off = decode_weights(params, kind)
        if accumulator_bound(W, np.zeros(O, np.int64), off) < INT32_MAX // 2:
            break
        smax = max(1, smax // 2)
    else:
        raise ValueError("could not fit the accumulator bound")
    input_offset = int(rng.integers(-127, 129))
    out_offset = int(rng.integers(-128, 128))
    lo = int(rng.integers(-128, 0)) if rng.random() < 0.5 else -128
    hi = int(rng.integers(0, 128)) if rng.random() < 0.5 else 127
    lo, hi = min(lo, out_offset), max(hi, out_offset)
    if act is not None:
        lo, hi = (int(v) for v in act)
    # requantization: spread a typical accumulator over the int8 range
    Wa, offa = decode_weights(params, kind)
    typ = np.sqrt((Wa.astype(np.float64) ** 2).sum(axis=1) + (0 if offa is None else K * offa.astype(np.float64) ** 2)) * 74.0
    typ = np.maximum(typ, 1.0)
    mult = np.zeros(O, np.int32)
    shift = np.zeros(O, np.int32)
    for o in range(O):
        m, s = quantize_multiplier(float(rng.uniform(20.0, 90.0) / typ[o]))
        mult[o], shift[o] = m, s
    # bias: a few typical accumulators (within the bound for every plane count with switchable rows),
    # plus the zero-point fold input_offset * sum_i W so the outputs stay centred
    counts = range(1, planes + 1) if (switchable and kind == "t2" and planes > 1) else [None]
    rows = []
    for k in counts:
        pk = dict(params, active_planes=k) if k is not None else params
        Wk, offk = decode_weights(pk, kind)
        room = INT32_MAX - accumulator_bound(Wk, np.zeros(O, np.int64), offk)
        fold = input_offset * (Wk.sum(axis=1) + (0 if offk is None else K * offk))
        if extreme:
            b = np.full(O, room) * np.where(rng.random(O) < .5, -1, 1)
        else:
            b = np.clip(np.rint(rng.uniform(-2, 2, size=O) * typ) + fold, -room, room)
        rows.append(b.astype(np.int32))
    bias = np.stack(rows) if len(rows) > 1 else rows[0]
    params.update(input_offset=input_offset, output_offset=out_offset,
                  act_min=lo, act_max=hi, bias=bias, multiplier=mult, shift=shift, method="random")
    if "plane_shift" not in params and kind == "t2" and planes > 1:
        params["plane_shift"] = np.zeros((planes, O), np.uint8)
    if fam == "fc":
        params["rows"] = 1
    else:
        kh, kw = (int(v) for v in kernel_hw)
        sh, sw = (int(v) for v in stride)
        dh, dw = (int(v) for v in dilation)
        pt, pl = (int(v) for v in pad)
        H, Wd = (int(v) for v in in_hw)
        oh, ow = out_size(H, kh, sh, dh, pt), out_size(Wd, kw, sw, dw, pl)
        if oh < 1 or ow < 1:
            raise ValueError("empty output")
        params.update(kernel_hw=(kh, kw), in_channels=int(in_channels), stride=(sh, sw), dilation=(dh, dw),
                      pad=(pt, pl), out_hw=(oh, ow), _in_hw=(H, Wd))
        if fam == "dwconv":
            params["depth_multiplier"] = int(depth_multiplier)
    macs = O * K
    return Step(0, {"fc": "FULLY_CONNECTED", "conv": "CONV_2D", "dwconv": "DEPTHWISE_CONV_2D"}[fam],
                kernel, [0], [1], params, macs=macs)


# ------------------------------------------------------------------------------ C rendering
def _arr(ctype: str, name: str, values, lead: int = 0) -> str:
    vals = [0] * lead + [int(v) for v in np.asarray(values).reshape(-1)]
    body = ",".join(str(v) if v != -2**31 else "(-2147483647-1)" for v in vals) or "0"
    return f"static const {ctype} {name}[{max(len(vals), 1)}] = {{{body}}};\n"


@dataclass
class CCall:
    """C text for one kernel call: declarations (file scope) and the call statement."""

    decls: str
    call: str  # one statement, `status = te_...(...)`; every argument is a static const object
    out_size: int
    scratch: int


def _dims(shape) -> str:
    s = list(shape)
    if len(s) == 2:
        return "{%d, 1, 1, %d}" % (s[0], s[1])
    return "{%d, %d, %d, %d}" % tuple(s)


def render_call(step: Step, x: np.ndarray, tag: str, *, variant: str = "default", out: str = "out",
                scratch: str = "scratch", lead: int = 0) -> CCall:
    """C declarations and a call `status = te_<kernel>(...)` writing into `out`.

    ``lead`` dummy bytes are put before the input and codes arrays (passing them misaligned).
    """
    p = step.params
    fam = spec(step.kernel).family
    O, K = int(p["out_channels"]), int(p["depth"])
    bias = np.asarray(p["bias"])
    if bias.ndim == 2:
        bias = bias[int(p.get("active_planes", bias.shape[0])) - 1]
    sb = np.asarray(p["scales"]).dtype.itemsize
    d = [_arr("int8_t", f"x_{tag}", x, lead), _arr("uint8_t", f"c_{tag}", p["codes"], lead),
         _arr("uint8_t" if sb == 1 else "uint16_t", f"a_{tag}", p["scales"]),
         _arr("int32_t", f"b_{tag}", bias), _arr("int32_t", f"m_{tag}", p["multiplier"]),
         _arr("int32_t", f"s_{tag}", p["shift"])]
    ps = "0"
    if "plane_shift" in p:
        d.append(_arr("uint8_t", f"e_{tag}", p["plane_shift"]))
        ps = f"e_{tag}"
    off = "0"
    if "offset" in p:
        d.append(_arr("int32_t", f"o_{tag}", p["offset"]))
        off = f"o_{tag}"
    planes = int(p.get("planes", 1))
    active = int(p.get("active_planes", planes))
    d.append(f"static const te_tern_weights w_{tag} = {{c_{tag} + {lead}, a_{tag}, {sb}, {ps}, {off}, "
             f"{planes}, {active}, {int(p['group'])}, {int(p.get('levels', 0))}}};\n")
    act = f"{{{int(p['act_min'])}, {int(p['act_max'])}}}"
    fn = spec(step.kernel).c_function(variant)
    n = x.shape[0]
    if fam == "fc":
        par = f"static const te_fc_params p_{tag} = {{{int(p['output_offset'])}, {act}}};\n"
        in_d, f_d, o_d = _dims((n, K)), _dims((O, K)), _dims((n, O))
        size = n * O
    else:
        kh, kw = p["kernel_hw"]
        oh, ow = p["out_hw"]
        geo = "%d, %d, %d, %d, %d, %d, %s" % (*p["stride"], *p["dilation"], *p["pad"], act)
        if fam == "conv":
            par = (f"static const te_conv_params p_{tag} = {{{int(p['input_offset'])}, "
                   f"{int(p['output_offset'])}, {geo}}};\n")
            f_d = _dims((O, kh, kw, x.shape[3]))
        else:
            par = (f"static const te_dwconv_params p_{tag} = {{{int(p['input_offset'])}, "
                   f"{int(p['output_offset'])}, {int(p['depth_multiplier'])}, {geo}}};\n")
            f_d = _dims((1, kh, kw, O))
        in_d, o_d = _dims(x.shape), _dims((n, oh, ow, O))
        size = n * oh * ow * O
    d.append(par)
    d.append(f"static const te_pc_quant q_{tag} = {{m_{tag}, s_{tag}}};\n"
             f"static const te_dims id_{tag} = {in_d}, fd_{tag} = {f_d}, od_{tag} = {o_d};\n")
    call = (f"status = {fn}(&p_{tag}, &q_{tag}, &id_{tag}, x_{tag} + {lead}, &fd_{tag}, &w_{tag}, b_{tag}, "
            f"&od_{tag}, {out}, {scratch});")
    return CCall("".join(d), call, size, scratch_bytes(step.kernel, p, x.shape, variant))
