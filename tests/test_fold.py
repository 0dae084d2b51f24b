# SPDX-License-Identifier: Apache-2.0
"""Constant folding at read time (ternembed/fold.py): shape arithmetic that converters write
(Keras' dynamic-batch Reshape, Flatten) disappears and the model runs bit-exact with TFLite Micro."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tflite_builder as tb
from ternembed import emulate
from ternembed.errors import UnsupportedOpError
from ternembed.lower import lower
from ternembed.reference import run_tflm
from ternembed.tflite import parse


def _const(mb, values, name, dtype="int32", shape=None):
    v = np.asarray(values, dtype=dtype)
    return mb.add_tensor(tb.Tensor(v.shape if shape is None else shape, dtype, data=v, name=name))


def keras_reshape_model() -> bytes:
    """x -> SHAPE -> STRIDED_SLICE (batch) -> PACK [batch, 20] -> RESHAPE -> FULLY_CONNECTED, and a
    Flatten-style SHAPE -> SLICE -> STRIDED_SLICE -> MUL -> CAST -> GATHER -> CONCATENATION -> RESHAPE beside it."""
    rng = np.random.default_rng(0)
    mb = tb.ModelBuilder()
    add = mb.add_tensor
    x = add(tb.Tensor((1, 4, 5), "int8", 0.1, 2, name="x"))
    shp = add(tb.Tensor((3,), "int32", name="shape"))
    mb.add_op("SHAPE", [x], [shp], {"out_type": 2})
    batch = add(tb.Tensor((), "int32", name="batch"))
    mb.add_op("STRIDED_SLICE", [shp, _const(mb, [0], "b"), _const(mb, [1], "e"), _const(mb, [1], "s")],
              [batch], {"shrink_axis_mask": 1})
    new_shape = add(tb.Tensor((2,), "int32", name="new_shape"))
    mb.add_op("PACK", [batch, _const(mb, 20, "k")], [new_shape], {"values_count": 2, "axis": 0})
    flat = add(tb.Tensor((1, 20), "int8", 0.1, 2, name="flat"))
    mb.add_op("RESHAPE", [x, new_shape], [flat])
    w = _const(mb, rng.integers(-127, 128, (6, 20)), "w", "int8")
    mb.tensors[w].scale, mb.tensors[w].zero_point = 0.02, 0
    fc = add(tb.Tensor((1, 6), "int8", 0.3, -3, name="fc"))
    mb.add_op("FULLY_CONNECTED", [flat, w, -1], [fc], {"fused_activation_function": "RELU"})
    # Flatten-style: prod(shape[1:]) through CAST, a 1 picked by GATHER, joined: -> [1, 20]
    tail = add(tb.Tensor((2,), "int32", name="tail"))
    mb.add_op("SLICE", [shp, _const(mb, [1], "sb"), _const(mb, [2], "ss")], [tail])
    h = add(tb.Tensor((1,), "int32", name="h"))
    mb.add_op("STRIDED_SLICE", [tail, _const(mb, [0], "hb"), _const(mb, [1], "he"), _const(mb, [1], "hs")], [h])
    w_ = add(tb.Tensor((1,), "int32", name="w"))
    mb.add_op("STRIDED_SLICE", [tail, _const(mb, [-1], "wb"), _const(mb, [0], "we"), _const(mb, [1], "ws")],
              [w_], {"end_mask": 1})
    prod = add(tb.Tensor((1,), "int32", name="prod"))
    mb.add_op("MUL", [h, w_], [prod])
    prod16 = add(tb.Tensor((1,), "int16", name="prod16"))
    mb.add_op("CAST", [prod], [prod16])
    prod32 = add(tb.Tensor((1,), "int32", name="prod32"))
    mb.add_op("CAST", [prod16], [prod32])
    one8 = add(tb.Tensor((1,), "int8", name="one8"))
    mb.add_op("GATHER", [_const(mb, [7, 1, 9], "table", "int8"), _const(mb, [1], "pick")], [one8], {"axis": 0})
    one = add(tb.Tensor((1,), "int32", name="one"))
    mb.add_op("CAST", [one8], [one])
    shape2 = add(tb.Tensor((2,), "int32", name="shape2"))
    mb.add_op("CONCATENATION", [one, prod32], [shape2], {"axis": 0})
    flat2 = add(tb.Tensor((1, 20), "int8", 0.1, 2, name="flat2"))
    mb.add_op("RESHAPE", [x, shape2], [flat2])
    sm = add(tb.Tensor((1, 20), "int8", 1 / 256, -128, name="softmax"))
    mb.add_op("SOFTMAX", [flat2], [sm], {"beta": 1.0})
    mb.inputs, mb.outputs = [x], [fc, sm]
    return mb.build()


def test_keras_reshape_chain_folds_and_is_bitexact_with_tflm():
    model = keras_reshape_model()
    graph = parse(model)
    assert [op.type for op in graph.ops] == ["RESHAPE", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]
    assert [op.index for op in graph.ops] == [3, 4, 14, 15]  # source indices kept for messages
    assert graph.tensors[graph.ops[0].inputs[1]].data.tolist() == [1, 20]
    assert graph.tensors[graph.ops[2].inputs[1]].data.tolist() == [1, 20]
    plan = lower(graph)
    x = np.random.default_rng(1).integers(-128, 128, (20, 4, 5)).astype(np.int8)
    ours, ref = emulate.run(plan, [x]), run_tflm(model, [x])
    for o, r in zip(ours, ref):
        assert o.shape == r.shape and np.array_equal(o, r)
        assert len(np.unique(o)) > 3


@pytest.mark.qemu
def test_keras_reshape_chain_selftest_on_qemu(tmp_path):
    from test_ops_data import selftest_on_qemu
    plan = lower(parse(keras_reshape_model()))
    x = np.random.default_rng(2).integers(-128, 128, (4, 4, 5)).astype(np.int8)
    assert selftest_on_qemu(plan, [x], tmp_path / "keras") == 4


def test_shape_of_a_dynamic_tensor_is_not_folded_and_named():
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor((1, 4), "int8", 0.1, 0, name="x"))
    s = mb.add_tensor(tb.Tensor((2,), "int32", name="s"))
    mb.add_op("SHAPE", [x], [s], {"out_type": 2})
    mb.inputs, mb.outputs = [x], [s]  # a graph output stays an op: nothing can run it
    graph = parse(mb.build())
    assert [op.type for op in graph.ops] == ["SHAPE"]
    with pytest.raises(UnsupportedOpError, match="op 0 SHAPE is not supported"):
        lower(graph)


def test_unsupported_op_is_one_line_exit_2(tmp_path):
    mb = tb.ModelBuilder()
    x = mb.add_tensor(tb.Tensor((1, 8), "int8", 0.1, 0, name="x"))
    y = mb.add_tensor(tb.Tensor((1, 8), "int8", 0.1, 0, name="y"))
    mb.add_op("RELU", [x], [y])
    z = mb.add_tensor(tb.Tensor((1, 8), "int8", 0.1, 0, name="z"))
    mb.add_op(32, [y], [z])  # CUSTOM: no kernel
    mb.inputs, mb.outputs = [x], [z]
    path = tmp_path / "m.tflite"
    path.write_bytes(mb.build())
    proc = subprocess.run([sys.executable, "-m", "ternembed", "export", str(path), "--board", "nucleo",
                           "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "op 1 CUSTOM" in lines[0], proc.stderr
