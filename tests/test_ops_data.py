# SPDX-License-Identifier: Apache-2.0
"""The int8 ops added for converters' graphs (ternembed/kernels/data.py, lower_ops.py,
firmware/kernels/te_strided_copy_s8.c, ...): random one-op models written with
tflite_builder, emulator == TFLite Micro; the generated C (host, portable and DSP paths)
== emulator; one model with every new kernel runs its self-test on QEMU."""
from __future__ import annotations

import numpy as np
import pytest

import tflite_builder as tb
from ternembed import emulate
from ternembed.hostcheck import compile_host_model
from ternembed.lower import lower
from ternembed.reference import run_tflm
from ternembed.tflite import parse

SAMPLES = 6


def _q(rng):
    return float(np.float32(10 ** rng.uniform(-2.5, 0))), int(rng.integers(-100, 100))


def _i32(values):
    v = np.asarray(values, dtype=np.int32)
    return tb.Tensor(v.shape, "int32", data=v)


def _inputs(plan, rng):
    """Random int8 samples; an input of 256 values gets every int8 value (tables are checked whole)."""
    out = []
    for i in plan.inputs:
        shape = plan.buffers[i].sample_shape
        if int(np.prod(shape)) == 256:
            x = np.stack([rng.permutation(256) - 128 for _ in range(SAMPLES)]).reshape((SAMPLES,) + shape)
        else:
            x = rng.integers(-128, 128, (SAMPLES,) + shape)
        out.append(x.astype(plan.buffers[i].dtype))  # a uint8 input: the same bytes
    return out


def check_tflm(model: bytes, rng) -> tuple:
    """Emulator == TFLM on random inputs; returns (plan, inputs) for the C checks."""
    plan = lower(parse(model))
    x = _inputs(plan, rng)
    ours, ref = emulate.run(plan, x), run_tflm(model, x)
    assert len(ours) == len(ref)
    for k, (o, r) in enumerate(zip(ours, ref)):
        assert o.reshape(r.shape).tobytes() == r.tobytes(), f"output {k} differs from TFLM"
    return plan, x


# ---- one-op model makers: (rng) -> model bytes ------------------------------------------------

def _shape(rng, rank=None, lo=1, hi=6):
    rank = rank or int(rng.integers(1, 5))
    return tuple(int(d) for d in rng.integers(lo, hi, rank))


def strided_slice_model(rng) -> bytes:
    from ternembed.kernels.data import strided_slice_geometry
    while True:
        shape = _shape(rng, hi=7)
        r = len(shape)
        begin = [int(rng.integers(-d - 1, d + 1)) for d in shape]
        end = [int(rng.integers(-d - 1, d + 2)) for d in shape]
        strides = [int(rng.choice([-3, -2, -1, 1, 1, 2, 3])) for _ in shape]
        bm, em = int(rng.integers(0, 1 << r)), int(rng.integers(0, 1 << r))
        sm = int(rng.integers(0, 1 << r)) if rng.random() < 0.4 else 0
        for k in range(r):
            if sm >> k & 1:  # a valid index to shrink at
                begin[k] = int(rng.integers(-shape[k], shape[k]))
                bm &= ~(1 << k)
        try:
            *_, out_shape = strided_slice_geometry(shape, begin, end, strides, bm, em, sm)
        except Exception:
            continue
        if 0 < int(np.prod(out_shape)) and out_shape:
            break
    s, z = _q(rng)
    return tb.single_op_model(
        "STRIDED_SLICE", [tb.Tensor(shape, "int8", s, z), _i32(begin), _i32(end), _i32(strides)],
        [tb.Tensor(out_shape, "int8", s, z)], {"begin_mask": bm, "end_mask": em, "shrink_axis_mask": sm})


def slice_model(rng) -> bytes:
    shape = _shape(rng)
    begin = [int(rng.integers(0, d)) for d in shape]
    size = [int(rng.integers(1, d - b + 1)) if rng.random() < 0.7 else -1 for d, b in zip(shape, begin)]
    out = [d - b if s == -1 else s for d, b, s in zip(shape, begin, size)]
    s, z = _q(rng)
    return tb.single_op_model("SLICE", [tb.Tensor(shape, "int8", s, z), _i32(begin), _i32(size)],
                              [tb.Tensor(out, "int8", s, z)])


def split_model(rng) -> bytes:
    n = int(rng.integers(1, 4))
    shape = list(_shape(rng))
    axis = int(rng.integers(-len(shape), len(shape)))
    shape[axis] = n * int(rng.integers(1, 4))
    part = list(shape)
    part[axis] //= n
    s, z = _q(rng)
    mb = tb.ModelBuilder()
    a = mb.add_tensor(_i32([axis]))
    x = mb.add_tensor(tb.Tensor(shape, "int8", s, z))
    outs = [mb.add_tensor(tb.Tensor(part, "int8", s, z)) for _ in range(n)]
    mb.add_op("SPLIT", [a, x], outs, {"num_splits": n})
    mb.inputs, mb.outputs = [x], outs
    return mb.build()


def split_v_model(rng) -> bytes:
    shape = list(_shape(rng, lo=2, hi=7))
    axis = int(rng.integers(0, len(shape)))
    cuts = sorted(int(c) for c in rng.choice(np.arange(1, shape[axis]), int(rng.integers(0, 3))
                                                if shape[axis] > 2 else 0, replace=False))
    sizes = list(np.diff([0] + cuts + [shape[axis]]).astype(int))
    parts = [list(shape[:axis]) + [int(v)] + list(shape[axis + 1:]) for v in sizes]
    if len(sizes) > 1 and rng.random() < 0.5:
        sizes[int(rng.integers(0, len(sizes)))] = -1
    s, z = _q(rng)
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor(shape, "int8", s, z))
    sz = mb.add_tensor(_i32(sizes))
    a = mb.add_tensor(_i32([axis - len(shape) if rng.random() < 0.5 else axis]))
    outs = [mb.add_tensor(tb.Tensor(p, "int8", s, z)) for p in parts]
    mb.add_op("SPLIT_V", [x, sz, a], outs, {"num_splits": len(parts)})
    mb.inputs, mb.outputs = [x], outs
    return mb.build()


def unpack_model(rng) -> bytes:
    shape = _shape(rng, rank=int(rng.integers(2, 5)), hi=5)
    axis = int(rng.integers(-len(shape), len(shape)))
    part = [d for k, d in enumerate(shape) if k != axis % len(shape)]
    s, z = _q(rng)
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor(shape, "int8", s, z))
    outs = [mb.add_tensor(tb.Tensor(part, "int8", s, z)) for _ in range(shape[axis])]
    mb.add_op("UNPACK", [x], outs, {"num": shape[axis], "axis": axis})
    mb.inputs, mb.outputs = [x], outs
    return mb.build()


def pack_model(rng) -> bytes:
    shape = _shape(rng, rank=int(rng.integers(1, 4)))
    n = int(rng.integers(1, 4))
    axis = int(rng.integers(-len(shape) - 1, len(shape) + 1))
    out = list(shape)
    out.insert(axis % (len(shape) + 1), n)
    s, z = _q(rng)
    return tb.single_op_model("PACK", [tb.Tensor(shape, "int8", s, z) for _ in range(n)],
                              [tb.Tensor(out, "int8", s, z)], {"values_count": n, "axis": axis})


def transpose_model(rng) -> bytes:
    shape = _shape(rng, hi=6)
    perm = [int(p) for p in rng.permutation(len(shape))]
    s, z = _q(rng)
    return tb.single_op_model("TRANSPOSE", [tb.Tensor(shape, "int8", s, z), _i32(perm)],
                              [tb.Tensor([shape[p] for p in perm], "int8", s, z)])


def _bcast_shapes(rng):
    out = _shape(rng)
    def one():
        sh = [d if rng.random() < 0.6 else 1 for d in out]
        return tuple(sh[int(rng.integers(0, len(sh))):]) if rng.random() < 0.3 else tuple(sh)
    a, b = (out, one()) if rng.random() < 0.5 else (one(), out)
    if rng.random() < 0.3:
        a = b = out
    return a, b, tuple(np.broadcast_shapes(a, b))


def binary_model(op):
    def make(rng) -> bytes:
        a, b, out = _bcast_shapes(rng)
        qa, qb = _q(rng), _q(rng)
        qo = qa if op in ("MAXIMUM", "MINIMUM") else _q(rng)
        if op == "SUB":  # an output scale near the inputs' (else most outputs saturate)
            qo = (float(np.float32(max(qa[0], qb[0]) * 2 ** rng.uniform(-0.5, 2))), qo[1])
        if op == "SQUARED_DIFFERENCE":  # outputs of a useful range: scale near the squared inputs'
            qo = (float(np.float32(max(qa[0], qb[0]) ** 2 * 2 ** rng.uniform(4, 9))), int(rng.integers(-128, 0)))
        options = {"fused_activation_function": str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))} \
            if op == "SUB" else None
        return tb.single_op_model(op, [tb.Tensor(a, "int8", *qa), tb.Tensor(b, "int8", *qb)],
                                  [tb.Tensor(out, "int8", *qo)], options)
    return make


def table_model(op):
    def make(rng) -> bytes:
        s, z = _q(rng)
        so = float(np.float32(s * 2 ** rng.uniform(-3 if op == "HARD_SWISH" else -1, 1)))
        options = {"alpha": float(rng.choice([0.2, 0.01, rng.uniform(-1, 1), rng.uniform(1, 3)]))} \
            if op == "LEAKY_RELU" else None
        return tb.single_op_model(op, [tb.Tensor((1, 256), "int8", s, z)],
                                  [tb.Tensor((1, 256), "int8", so, int(rng.integers(-128, 60)))], options)
    return make


def prelu_model(rng) -> bytes:
    x_shape, a_shape, out = _bcast_shapes(rng)
    if x_shape != out:
        x_shape, a_shape = out, x_shape
    (s, z), (sa, za) = _q(rng), (float(np.float32(rng.uniform(0.002, 0.02))), int(rng.integers(-20, 20)))
    alpha = tb.Tensor(a_shape, "int8", sa, za)
    if rng.random() < 0.7:  # converters write a constant alpha
        alpha.data = rng.integers(-128, 128, a_shape).astype(np.int8)
    so = float(np.float32(s * 2 ** rng.uniform(-1, 1)))
    return tb.single_op_model("PRELU", [tb.Tensor(x_shape, "int8", s, z), alpha],
                              [tb.Tensor(out, "int8", so, int(rng.integers(-50, 50)))])


def resize_model(rng, op="RESIZE_NEAREST_NEIGHBOR") -> bytes:
    shape = (int(rng.integers(1, 3)),) + _shape(rng, rank=3, hi=7)
    size = [int(v) for v in rng.integers(1, 15, 2)]
    align = bool(rng.random() < 0.4)
    half = bool(rng.random() < 0.5) and not align  # TF refuses both
    s, z = _q(rng)
    return tb.single_op_model(
        op, [tb.Tensor(shape, "int8", s, z), _i32(size)],
        [tb.Tensor((shape[0], *size, shape[3]), "int8", s, z)], {"align_corners": align, "half_pixel_centers": half})


def transpose_conv_model(rng) -> bytes:
    h, w, cin, cout = (int(v) for v in rng.integers(1, 6, 4))
    kh, kw = (int(v) for v in rng.integers(1, 5, 2))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    padding = str(rng.choice(["SAME", "VALID"]))
    oh = h * sh if padding == "SAME" else (h - 1) * sh + kh
    ow = w * sw if padding == "SAME" else (w - 1) * sw + kw
    s, z = _q(rng)
    ws = rng.uniform(0.002, 0.02, cout).astype(np.float32)
    weights = tb.Tensor((cout, kh, kw, cin), "int8", list(ws), [0] * cout,
                        data=rng.integers(-127, 128, (cout, kh, kw, cin)).astype(np.int8))
    inputs = [_i32([1, oh, ow, cout]), weights, tb.Tensor((1, h, w, cin), "int8", s, z)]
    if rng.random() < 0.7:
        inputs.append(tb.Tensor((cout,), "int32", list(ws * s), [0] * cout,
                                data=rng.integers(-2000, 2000, cout).astype(np.int32)))
    so = float(np.float32(s * float(ws.mean()) * 127 * np.sqrt(kh * kw * cin) / 8))
    return tb.single_op_model("TRANSPOSE_CONV", inputs, [tb.Tensor((1, oh, ow, cout), "int8", so, int(z))],
                              {"padding": padding, "stride_h": sh, "stride_w": sw,
                               "fused_activation_function": str(rng.choice(["NONE", "RELU"]))})


def const_operand_model(rng) -> bytes:
    """An elementwise op with a constant operand of lower rank (batch-norm MUL/ADD, clipping MAXIMUM)."""
    op = str(rng.choice(["ADD", "MUL", "SUB", "MAXIMUM", "MINIMUM"]))
    shape = (1,) + _shape(rng, rank=3)
    c_shape = shape[-1:] if rng.random() < 0.5 else (1, 1, 1, shape[-1])
    qa, qc = _q(rng), _q(rng)
    qo = qa if op in ("MAXIMUM", "MINIMUM") else (float(np.float32(max(qa[0], qc[0]) * 2)), int(rng.integers(-20, 20)))
    if op == "MUL":
        qo = (float(np.float32(qa[0] * qc[0] * 64)), qo[1])
    const = tb.Tensor(c_shape, "int8", *qc, data=rng.integers(-128, 128, c_shape).astype(np.int8))
    inputs = [tb.Tensor(shape, "int8", *qa), const]
    if rng.random() < 0.5:
        inputs.reverse()
    return tb.single_op_model(op, inputs, [tb.Tensor(shape, "int8", *qo)])


def quantize_uint8_model(rng) -> bytes:
    """QUANTIZE between int8 and uint8 at a model's edge (microWakeWord's uint8 output)."""
    dtypes = ["int8", "uint8"] if rng.random() < 0.5 else ["uint8", "int8"]
    (s, z), so = _q(rng), float(np.float32(10 ** rng.uniform(-2.5, 0)))
    zs = [z + 128 if d == "uint8" else z for d in dtypes]
    zo = int(rng.integers(0, 256)) if dtypes[1] == "uint8" else int(rng.integers(-128, 128))
    return tb.single_op_model("QUANTIZE", [tb.Tensor((1, 256), dtypes[0], s, zs[0])],
                              [tb.Tensor((1, 256), dtypes[1], so, zo)])


def depth_space_model(rng) -> bytes:
    b = int(rng.integers(1, 4))
    n, h, w, c = 1, int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    small, big = (n, h, w, c * b * b), (n, h * b, w * b, c)
    s, z = _q(rng)
    if rng.random() < 0.5:
        return tb.single_op_model("DEPTH_TO_SPACE", [tb.Tensor(small, "int8", s, z)], [tb.Tensor(big, "int8", s, z)],
                                  {"block_size": b})
    return tb.single_op_model("SPACE_TO_DEPTH", [tb.Tensor(big, "int8", s, z)], [tb.Tensor(small, "int8", s, z)],
                              {"block_size": b})


def gather_model(rng) -> bytes:
    shape = _shape(rng)
    axis = int(rng.integers(-len(shape), len(shape)))
    idx_shape = _shape(rng, rank=int(rng.integers(1, 3)), hi=5)
    indices = rng.integers(0, shape[axis], idx_shape).astype(np.int32)
    a = axis % len(shape)
    out = tuple(shape[:a]) + idx_shape + tuple(shape[a + 1:])
    s, z = _q(rng)
    return tb.single_op_model("GATHER", [tb.Tensor(shape, "int8", s, z), tb.Tensor(idx_shape, "int32", data=indices)],
                              [tb.Tensor(out, "int8", s, z)], {"axis": axis})


def reverse_broadcast_model(rng) -> bytes:
    shape = _shape(rng)
    s, z = _q(rng)
    if rng.random() < 0.5:
        first = int(rng.integers(0, len(shape)))  # TFLM takes contiguous axes only
        axes = list(range(first, int(rng.integers(first + 1, len(shape) + 1))))
        return tb.single_op_model("REVERSE_V2", [tb.Tensor(shape, "int8", s, z), _i32(axes)],
                                  [tb.Tensor(shape, "int8", s, z)])
    out = tuple(int(v) for v in rng.integers(1, 4, int(rng.integers(0, 2)))) + shape
    small = tuple(d if rng.random() < 0.5 else 1 for d in shape)
    return tb.single_op_model("BROADCAST_TO", [tb.Tensor(small, "int8", s, z), _i32(out)],
                              [tb.Tensor(out, "int8", s, z)])


def mirror_pad_model(rng) -> bytes:
    shape = _shape(rng, lo=2)
    reflect = bool(rng.random() < 0.5)
    limit = [d - 1 if reflect else d for d in shape]
    pads = [[int(rng.integers(0, m + 1)), int(rng.integers(0, m + 1))] for m in limit]
    out = [d + a + b for d, (a, b) in zip(shape, pads)]
    s, z = _q(rng)
    return tb.single_op_model("MIRROR_PAD", [tb.Tensor(shape, "int8", s, z), _i32(pads)],
                              [tb.Tensor(out, "int8", s, z)], {"mode": 0 if reflect else 1})


def reduce_model(rng) -> bytes:
    shape = _shape(rng)
    axes = sorted({int(a) for a in rng.integers(-len(shape), len(shape), int(rng.integers(1, len(shape) + 1)))})
    red = {a % len(shape) for a in axes}
    keep = bool(rng.random() < 0.5)
    out = [1 if k in red else d for k, d in enumerate(shape)] if keep else [d for k, d in enumerate(shape) if k not in red]
    s, z = _q(rng)
    return tb.single_op_model(str(rng.choice(["REDUCE_MAX", "REDUCE_MIN"])), [tb.Tensor(shape, "int8", s, z), _i32(axes)],
                              [tb.Tensor(out, "int8", s, z)], {"keep_dims": keep})


MAKERS = {
    "STRIDED_SLICE": strided_slice_model, "SLICE": slice_model, "SPLIT": split_model,
    "SPLIT_V": split_v_model, "UNPACK": unpack_model, "PACK": pack_model, "TRANSPOSE": transpose_model,
    **{op: binary_model(op) for op in ("SUB", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM")},
    "HARD_SWISH": table_model("HARD_SWISH"), "LEAKY_RELU": table_model("LEAKY_RELU"), "PRELU": prelu_model,
    "RESIZE_NEAREST_NEIGHBOR": resize_model, "TRANSPOSE_CONV": transpose_conv_model,
    "RESIZE_BILINEAR": lambda rng: resize_model(rng, "RESIZE_BILINEAR"), "DEPTH_TO_SPACE, SPACE_TO_DEPTH": depth_space_model,
    "GATHER": gather_model, "REVERSE_V2, BROADCAST_TO": reverse_broadcast_model,
    "MIRROR_PAD": mirror_pad_model, "REDUCE_MAX, REDUCE_MIN": reduce_model,
    "constant operand": const_operand_model, "QUANTIZE uint8": quantize_uint8_model,
}
CASES = 8  # random one-op models per op against TFLM


@pytest.mark.parametrize("op", sorted(MAKERS))
def test_random_one_op_models_equal_tflm(op):
    rng = np.random.default_rng(sum(map(ord, op)))
    for _ in range(CASES):
        check_tflm(MAKERS[op](rng), rng)


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
@pytest.mark.parametrize("op", sorted(MAKERS))
def test_host_c_equals_emulator(op, dsp):
    rng = np.random.default_rng(7 + len(op))
    plan, x = check_tflm(MAKERS[op](rng), rng)
    got, want = compile_host_model(plan, emulate_dsp=dsp).run(x), emulate.run(plan, x)
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()


# ---- every new kernel in one model: host C and the firmware self-test on QEMU ------------------

def zoo_model() -> bytes:
    mb = tb.ModelBuilder()

    def act(shape, s=0.05, z=3):
        return mb.add_tensor(tb.Tensor(shape, "int8", s, z))

    def const(values):
        return mb.add_tensor(_i32(values))

    x = act((1, 6, 8, 4))
    t = act((1, 8, 6, 4))
    mb.add_op("TRANSPOSE", [x, const([0, 2, 1, 3])], [t])
    ss = act((1, 4, 5, 4))
    mb.add_op("STRIDED_SLICE", [t, const([0, 1, -1, 0]), const([1, 8, 0, 4]), const([1, 2, -1, 1])], [ss])
    sl = act((1, 3, 4, 2))
    mb.add_op("SLICE", [ss, const([0, 1, 0, 1]), const([1, -1, 4, 2])], [sl])
    sv0, sv1 = act((1, 1, 4, 2)), act((1, 2, 4, 2))
    mb.add_op("SPLIT_V", [sl, const([1, -1]), const([1])], [sv0, sv1], {"num_splits": 2})
    up0, up1 = act((1, 4, 2)), act((1, 4, 2))
    mb.add_op("UNPACK", [sv1], [up0, up1], {"num": 2, "axis": 1})
    pk = act((1, 4, 2, 2))
    mb.add_op("PACK", [up0, up1], [pk], {"values_count": 2, "axis": 3})
    sp0, sp1 = act((1, 4, 1, 2)), act((1, 4, 1, 2))
    mb.add_op("SPLIT", [const([2]), pk], [sp0, sp1], {"num_splits": 2})
    y = act((1, 1, 1, 2), 0.04, -5)
    sb = act((1, 4, 1, 2), 0.08, -20)
    mb.add_op("SUB", [sp0, y], [sb], {"fused_activation_function": "RELU"})
    sq = act((1, 4, 1, 2), 0.02, -128)
    mb.add_op("SQUARED_DIFFERENCE", [sp0, sp1], [sq])
    mx = act((1, 4, 1, 2))
    mb.add_op("MAXIMUM", [sb, sq], [mx])
    mn = act((1, 4, 1, 2))
    mb.add_op("MINIMUM", [y, mx], [mn])
    hs = act((1, 4, 1, 2), 0.03, -60)
    mb.add_op("HARD_SWISH", [mn], [hs])
    lr = act((1, 4, 1, 2), 0.02, 10)
    mb.add_op("LEAKY_RELU", [hs], [lr], {"alpha": 0.1})
    alpha = mb.add_tensor(tb.Tensor((2,), "int8", 0.01, 3, data=np.array([-70, 90], np.int8)))
    pr = act((1, 4, 1, 2), 0.02, 0)
    mb.add_op("PRELU", [lr, alpha], [pr])
    rn = act((1, 7, 3, 2), 0.02, 0)
    mb.add_op("RESIZE_NEAREST_NEIGHBOR", [pr, const([7, 3])], [rn], {"half_pixel_centers": True})
    rs = act((1, 11, 5, 2), 0.02, 0)
    mb.add_op("RESIZE_BILINEAR", [rn, const([11, 5])], [rs], {"half_pixel_centers": True})
    rng = np.random.default_rng(0)
    tw = mb.add_tensor(tb.Tensor((3, 3, 3, 5), "int8", [0.01, 0.02, 0.015], [0, 0, 0], data=rng.integers(
        -127, 128, (3, 3, 3, 5)).astype(np.int8)))
    tbias = mb.add_tensor(tb.Tensor((3,), "int32", [5e-4, 1e-3, 7.5e-4], [0, 0, 0], data=np.array([-300, 50, 900])))
    x6, t2 = act((1, 6, 6, 4)), act((1, 7, 6, 5))
    mb.add_op("SLICE", [x, const([0, 0, 0, 0]), const([1, 6, 6, 4])], [x6])
    mb.add_op("PAD", [x6, const([[0, 0], [0, 1], [0, 0], [0, 1]])], [t2])
    tc = act((1, 14, 12, 3), 0.15, -7)
    mb.add_op("TRANSPOSE_CONV", [const([1, 14, 12, 3]), tw, t2, tbias], [tc],
              {"padding": "SAME", "stride_h": 2, "stride_w": 2})
    scale = mb.add_tensor(tb.Tensor((3,), "int8", 0.02, 0, data=np.array([60, -90, 127], np.int8)))
    bn = act((1, 14, 12, 3), 0.1, 4)
    mb.add_op("MUL", [tc, scale], [bn])  # a batch-norm scale: a constant operand
    u8 = mb.add_tensor(tb.Tensor((1, 14, 12, 3), "uint8", 0.12, 130))
    mb.add_op("QUANTIZE", [bn], [u8])
    ga = act((1, 3, 1, 2))
    mb.add_op("GATHER", [sp0, const([2, 0, 2])], [ga], {"axis": 1})  # a constant row selection
    mp = act((1, 7, 1, 4))
    mb.add_op("MIRROR_PAD", [sp1, const([[0, 0], [1, 2], [0, 0], [1, 1]])], [mp], {"mode": 0})
    rm = act((1, 1, 4))
    mb.add_op("REDUCE_MAX", [mp, const([1, 2])], [rm])
    mb.inputs, mb.outputs = [x, y], [sv0, ga, mp, sq, rs, u8, rm]
    return mb.build()


@pytest.fixture(scope="module")
def zoo():
    rng = np.random.default_rng(3)
    return check_tflm(zoo_model(), rng)


@pytest.mark.parametrize("dsp", [False, True], ids=["portable", "dsp"])
def test_zoo_host_c_equals_emulator(zoo, dsp):
    plan, x = zoo
    got, want = compile_host_model(plan, emulate_dsp=dsp).run(x), emulate.run(plan, x)
    for g, w in zip(got, want):
        assert g.tobytes() == w.tobytes()


def selftest_on_qemu(plan, inputs, folder) -> int:
    """Export `plan` with `inputs` as self-test vectors, build it for QEMU's mps2-an386 and run
    it: every output byte must equal the emulator's. Returns the number of samples."""
    import shutil

    from ternembed.boards import get_board
    from ternembed.build import build_project
    from ternembed.device.qemu import run_semihosted
    from ternembed.render import export_project
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")
    board = "qemu_mps2_an386"
    exp = export_project(plan, board, folder, test_inputs=inputs)
    built = build_project(exp.out_dir, board, use_platformio=False)
    assert built.checks_ok, built.summary()
    code, out = run_semihosted(built.elf, get_board(board), timeout=120, icount=False)
    text = out.decode(errors="replace")
    assert f"TE-SELFTEST PASS {exp.test_samples}/{exp.test_samples}" in text and code == 0, text[-2000:]
    return exp.test_samples


@pytest.mark.qemu
def test_zoo_selftest_on_qemu(zoo, tmp_path):
    plan, x = zoo
    selftest_on_qemu(plan, [a[:3] for a in x], tmp_path / "zoo")


def test_float_model_calibrates_with_data_ops_tied(tmp_path):
    """A float model through calibration: the byte-moving and comparing ops keep their input's
    quantization (TFLM moves the int8 bytes as they are), so the int8 plan stays close to float."""
    from ternembed.pipeline import build_plan
    from ternembed.reference import run_litert
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor((1, 4, 6), "float32"))
    t = mb.add_tensor(tb.Tensor((1, 6, 4), "float32"))
    mb.add_op("TRANSPOSE", [x, mb.add_tensor(_i32([0, 2, 1]))], [t])
    a, b = mb.add_tensor(tb.Tensor((1, 3, 4), "float32")), mb.add_tensor(tb.Tensor((1, 3, 4), "float32"))
    mb.add_op("SPLIT", [mb.add_tensor(_i32([1])), t], [a, b], {"num_splits": 2})
    m = mb.add_tensor(tb.Tensor((1, 3, 4), "float32"))
    mb.add_op("MAXIMUM", [a, b], [m])
    r = mb.add_tensor(tb.Tensor((1, 3, 2), "float32"))
    mb.add_op("STRIDED_SLICE", [m] + [mb.add_tensor(_i32(v)) for v in ([0, 0, 3], [1, 3, 0], [1, 1, -2])], [r])
    mb.inputs, mb.outputs = [x], [r]
    path = tmp_path / "float.tflite"
    path.write_bytes(mb.build())
    calib = np.random.default_rng(0).normal(0, 2, (64, 4, 6)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    plan, inputs = build_plan(path, calib=tmp_path / "calib.npy")
    scales = {(plan.buffers[i].scale, plan.buffers[i].zero_point) for s in plan.steps if s.kernel != "quantize_f32_s8"
              and s.kernel != "dequantize_s8_f32" for i in s.inputs + s.outputs}
    assert len(scales) == 1, scales  # one quantization through the whole chain
    got = emulate.run(plan, [calib])[0]
    want = run_litert(path, [calib])[0]
    assert np.abs(got - want.reshape(got.shape)).max() <= plan.buffers[plan.steps[-1].inputs[0]].scale


def test_float_transpose_conv_calibrates(tmp_path):
    from ternembed.pipeline import build_plan
    from ternembed.reference import run_litert
    rng = np.random.default_rng(1)
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor((1, 5, 5, 4), "float32"))
    w = mb.add_tensor(tb.Tensor((3, 3, 3, 4), "float32", data=rng.normal(0, 0.3, (3, 3, 3, 4)).astype(np.float32)))
    b = mb.add_tensor(tb.Tensor((3,), "float32", data=np.array([0.1, -0.2, 0.3], np.float32)))
    y = mb.add_tensor(tb.Tensor((1, 10, 10, 3), "float32"))
    mb.add_op("TRANSPOSE_CONV", [mb.add_tensor(_i32([1, 10, 10, 3])), w, x, b], [y],
              {"padding": "SAME", "stride_h": 2, "stride_w": 2})
    mb.inputs, mb.outputs = [x], [y]
    path = tmp_path / "tconv.tflite"
    path.write_bytes(mb.build())
    calib = rng.normal(0, 1, (32, 5, 5, 4)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    plan, _ = build_plan(path, calib=tmp_path / "calib.npy")
    assert "transpose_conv_s8" in [s.kernel for s in plan.steps]
    got, want = emulate.run(plan, [calib])[0], run_litert(path, [calib])[0].reshape(32, 10, 10, 3)
    assert np.abs(got - want).max() < 0.05 * np.abs(want).max()


def test_float_clip_by_value_calibrates(tmp_path):
    """clip_by_value as converters write it (MINIMUM and MAXIMUM with float constants): the constants
    take the activation's quantization, so the raw int8 comparison clips at the right values."""
    from ternembed.pipeline import build_plan
    from ternembed.reference import run_litert
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor((1, 16), "float32"))
    lo, hi = (mb.add_tensor(tb.Tensor((), "float32", data=np.array(v, np.float32))) for v in (-0.5, 1.25))
    a = mb.add_tensor(tb.Tensor((1, 16), "float32"))
    mb.add_op("MINIMUM", [x, hi], [a])
    y = mb.add_tensor(tb.Tensor((1, 16), "float32"))
    mb.add_op("MAXIMUM", [a, lo], [y])
    mb.inputs, mb.outputs = [x], [y]
    path = tmp_path / "clip.tflite"
    path.write_bytes(mb.build())
    calib = np.random.default_rng(2).normal(0, 1.5, (64, 16)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    plan, _ = build_plan(path, calib=tmp_path / "calib.npy")
    got, want = emulate.run(plan, [calib])[0], run_litert(path, [calib])[0].reshape(64, 16)
    step = plan.buffers[plan.steps[-1].inputs[0]].scale
    assert np.abs(got - want).max() <= step and got.min() >= -0.5 - step and got.max() <= 1.25 + step
