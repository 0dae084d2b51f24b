# SPDX-License-Identifier: Apache-2.0
"""The .tflite reader on every shared model, and on the quirks real files have."""
import numpy as np
import pytest

from conftest import requires_shared
from shared_data import MODELS
from ternembed.tflite import read

EXPECTED_OPS = {
    "mlperf_ad/ad01_int8.tflite": {"FULLY_CONNECTED": 10},
    "mlperf_ic/pretrainedResnet_quant.tflite": {"CONV_2D": 9, "ADD": 3, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                                                "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "mlperf_sww/str_ww_ref_model.tflite": {"DEPTHWISE_CONV_2D": 4, "CONV_2D": 4, "RESHAPE": 1,
                                           "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "mlperf_vww/vww_96_int8.tflite": {"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1,
                                      "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
    "tflm/hello_world_int8.tflite": {"FULLY_CONNECTED": 3},
}


@pytest.mark.parametrize("path", sorted(EXPECTED_OPS))
def test_op_counts_match_the_model_readme(path):
    g = read(MODELS / path)
    counts = {}
    for op in g.ops:
        counts[op.type] = counts.get(op.type, 0) + 1
    assert counts == EXPECTED_OPS[path]


@requires_shared
def test_every_shared_model_reads():
    paths = sorted(MODELS.rglob("*.tflite"))
    assert len(paths) >= 20
    for p in paths:
        g = read(p)
        assert g.ops and g.inputs and g.outputs
        assert g.subgraphs >= 1


def test_kinds():
    assert read(MODELS / "mlperf_ad/ad01_fp32.tflite").kind == "float32"
    assert read(MODELS / "mlperf_ad/ad01_int8.tflite").kind == "int8"
    assert read(MODELS / "mlperf_kws/kws_ref_model_float32.tflite").kind == "hybrid"
    # int8 inside, float at the edges through QUANTIZE/DEQUANTIZE
    assert read(MODELS / "mltk/image_example1/image_example1.tflite").kind == "int8"


def test_per_channel_quantization_and_options():
    g = read(MODELS / "mlperf_ic/pretrainedResnet_quant.tflite")
    conv = next(op for op in g.ops if op.type == "CONV_2D")
    w = g.tensors[conv.inputs[1]]
    assert w.quant.per_channel and w.quant.scale.size == w.shape[0] and w.quant.axis == 0
    assert conv.options["padding"] in ("SAME", "VALID")
    assert conv.options["fused_activation_function"] in ("NONE", "RELU", "RELU6")
    x = g.tensors[g.inputs[0]]
    assert x.shape == (1, 32, 32, 3) and x.dtype == "int8" and x.quant.zp == -128


def test_bias_with_out_of_range_quantized_dimension_is_accepted():
    # person_detect writes quantized_dimension=3 on 1-D depthwise biases; TFLM runs it, so do we.
    g = read(MODELS / "tflm/person_detect/person_detect.tflite")
    dw = next(op for op in g.ops if op.type == "DEPTHWISE_CONV_2D")
    b = g.tensors[dw.inputs[2]]
    assert b.quant.axis == 0 and b.quant.scale.size == b.shape[0]


def test_constant_data_is_little_endian_and_shaped():
    g = read(MODELS / "tflm/hello_world_int8.tflite")
    fc = g.ops[0]
    w, b = g.tensors[fc.inputs[1]], g.tensors[fc.inputs[2]]
    assert w.data.dtype == np.int8 and w.data.shape == w.shape
    assert b.data.dtype == np.int32 and b.data.shape == b.shape
