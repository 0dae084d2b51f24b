# SPDX-License-Identifier: Apache-2.0
"""Write a small single-subgraph .tflite file with the schema builders of the `tflite` package.

Just enough of the format for the bundled examples (digits, mnist_cnn): float32 / int8 /
int32 tensors, per-tensor or per-channel quantization, and the operators in `_OPTIONS`
(FULLY_CONNECTED, SOFTMAX, CONV_2D, MAX_POOL_2D, RESHAPE). Every option of an operator is
written, defaults included, so the output depends only on the arguments: the same graph
always gives the same bytes. Beside the writer, what the examples' train.py scripts share:
the TFLite converter's quantization rules, a reproducible .npz writer, and runners that check
a written model in ai_edge_litert and TFLite Micro.

    g = Graph("my model")
    x = g.tensor("input", (1, 64), "float32")
    ...
    g.op("SOFTMAX", [logits], [probs], beta=1.0)
    g.inputs, g.outputs = [x], [probs]
    data = g.serialize()
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import flatbuffers
import numpy as np
import tflite

_TYPES = {"float32": tflite.TensorType.FLOAT32, "int8": tflite.TensorType.INT8,
          "int32": tflite.TensorType.INT32}
_NUMPY = {"float32": np.float32, "int8": np.int8, "int32": np.int32}
_ENUMS = {  # option values given by name
    "fused_activation_function": {"NONE": tflite.ActivationFunctionType.NONE,
                                  "RELU": tflite.ActivationFunctionType.RELU,
                                  "RELU6": tflite.ActivationFunctionType.RELU6},
    "padding": {"SAME": tflite.Padding.SAME, "VALID": tflite.Padding.VALID},
}
# operator -> (options table in the schema, its options with their defaults, in writing order)
_OPTIONS = {
    "FULLY_CONNECTED": ("FullyConnectedOptions", {"fused_activation_function": "NONE"}),
    "SOFTMAX": ("SoftmaxOptions", {"beta": 1.0}),
    "CONV_2D": ("Conv2DOptions", {"padding": "SAME", "stride_w": 1, "stride_h": 1,
                                  "fused_activation_function": "NONE",
                                  "dilation_w_factor": 1, "dilation_h_factor": 1}),
    "MAX_POOL_2D": ("Pool2DOptions", {"padding": "VALID", "stride_w": 1, "stride_h": 1,
                                      "filter_width": 1, "filter_height": 1,
                                      "fused_activation_function": "NONE"}),
    "RESHAPE": ("ReshapeOptions", {"new_shape": ()}),
}


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    axis: int


@dataclass
class _Op:
    code: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


class Graph:
    """Tensors and operators of one subgraph; `serialize()` gives the model bytes."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.tensors: list[_Tensor] = []
        self.ops: list[_Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    def tensor(self, name: str, shape, dtype: str, data=None, scale=None, zero_point=None,
               axis: int = 0) -> int:
        """Add a tensor; `data` makes it a constant. scale/zero_point: scalar or per-channel."""
        if data is not None:
            data = np.ascontiguousarray(np.asarray(data, dtype=_NUMPY[dtype]).reshape(shape))
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, np.float32))
            zp = np.zeros(scale.shape, np.int64) if zero_point is None else zero_point
            zero_point = np.atleast_1d(np.asarray(zp, np.int64))
            if zero_point.shape != scale.shape:
                raise ValueError(f"{name}: {scale.size} scales but {zero_point.size} zero points")
        self.tensors.append(_Tensor(name, tuple(int(d) for d in shape), dtype, data, scale,
                                    zero_point, axis))
        return len(self.tensors) - 1

    def op(self, code: str, inputs: list[int], outputs: list[int], **options) -> None:
        if code not in _OPTIONS:
            raise ValueError(f"operator {code} is not supported by this writer")
        unknown = set(options) - set(_OPTIONS[code][1])
        if unknown:
            raise ValueError(f"unknown options for {code}: {sorted(unknown)}")
        self.ops.append(_Op(code, list(inputs), list(outputs), options))

    # -- serialisation ------------------------------------------------------------------------

    def serialize(self) -> bytes:
        b = flatbuffers.Builder(4096)
        codes = sorted({op.code for op in self.ops}, key=[op.code for op in self.ops].index)

        # Buffer 0 is the empty buffer shared by every non-constant tensor.
        buffers = [_buffer(b, None)]
        buffer_of = []
        for t in self.tensors:
            if t.data is None:
                buffer_of.append(0)
            else:
                buffers.append(_buffer(b, t.data.tobytes()))
                buffer_of.append(len(buffers) - 1)

        tensors = [_tensor(b, t, buffer_of[i]) for i, t in enumerate(self.tensors)]
        operators = [_operator(b, op, codes.index(op.code)) for op in self.ops]

        tensors_vec = _table_vector(b, tflite.SubGraphStartTensorsVector, tensors)
        ops_vec = _table_vector(b, tflite.SubGraphStartOperatorsVector, operators)
        in_vec = _int32_vector(b, tflite.SubGraphStartInputsVector, self.inputs)
        out_vec = _int32_vector(b, tflite.SubGraphStartOutputsVector, self.outputs)
        name = b.CreateString("main")
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, ops_vec)
        tflite.SubGraphAddName(b, name)
        subgraph = tflite.SubGraphEnd(b)

        opcodes = []
        for code in codes:
            number = getattr(tflite.BuiltinOperator, code)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(number, 127))
            tflite.OperatorCodeAddBuiltinCode(b, number)
            tflite.OperatorCodeAddVersion(b, 1)
            opcodes.append(tflite.OperatorCodeEnd(b))

        opcodes_vec = _table_vector(b, tflite.ModelStartOperatorCodesVector, opcodes)
        subgraphs_vec = _table_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = _table_vector(b, tflite.ModelStartBuffersVector, buffers)
        description = b.CreateString(self.description)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, opcodes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddDescription(b, description)
        tflite.ModelAddBuffers(b, buffers_vec)
        model = tflite.ModelEnd(b)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())


# ---- quantization (TFLite converter conventions) ----------------------------------------------

def round_half_away(x) -> np.ndarray:
    """std::round, as TFLite uses when it quantizes."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def activation_params(values: np.ndarray) -> tuple[np.float32, int]:
    """Asymmetric int8 (scale, zero point) for the range of `values`, widened to include 0."""
    lo, hi = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round_half_away(-128 - lo / scale), -128, 127))
    return np.float32(scale), zp


def quantize(x: np.ndarray, scale, zp: int) -> np.ndarray:
    """float -> int8 as TFLite's QUANTIZE does (float32 division, round half away from zero)."""
    q = round_half_away(np.asarray(x, np.float32) / np.float32(scale)) + zp
    return np.clip(q, -128, 127).astype(np.int8)


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (axis 0) symmetric int8 weights in [-127, 127] and their float32 scales."""
    scale = (np.abs(w).reshape(len(w), -1).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = np.float32(1.0)
    per_row = scale.reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(round_half_away(w / per_row), -127, 127).astype(np.int8)
    return q, scale


# ---- test sets and checks ----------------------------------------------------------------------

def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    ys = []
    for sample in x:
        interp.set_tensor(inp, sample[None])
        interp.invoke()
        ys.append(interp.get_tensor(out)[0].copy())
    return np.stack(ys)


def run_tflm(path: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(path))
    ys = []
    for sample in x:
        interp.set_input(np.ascontiguousarray(sample[None]), 0)
        interp.invoke()
        ys.append(np.array(interp.get_output(0))[0])
    return np.stack(ys)


def evaluate(folder: Path, test_set: str, float_model: str, int8_model: str) -> dict[str, float]:
    """Test accuracy of the float model on x and the int8 one on x_int8, in each interpreter installed."""
    data = np.load(folder / test_set)
    results = {}
    for runtime_name, runner in (("ai_edge_litert", run_litert), ("tflite-micro", run_tflm)):
        for model, x in ((float_model, data["x"]), (int8_model, data["x_int8"])):
            try:
                pred = runner(folder / model, x).argmax(axis=1)
            except ImportError as e:
                print(f"  {runtime_name}: not installed ({e})")
                break
            results[f"{runtime_name} {model}"] = float((pred == data["y"]).mean())
    return results


# ---- helpers -----------------------------------------------------------------------------------

def _int32_vector(b: flatbuffers.Builder, start, values) -> int:
    start(b, len(values))
    for v in reversed(list(values)):
        b.PrependInt32(int(v))
    return b.EndVector()


def _table_vector(b: flatbuffers.Builder, start, offsets) -> int:
    start(b, len(offsets))
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
    data_off = None
    if data is not None:
        # Raw bytes, aligned to 16 so that any element type can be read in place.
        b.StartVector(1, len(data), 16)
        b.head -= len(data)
        b.Bytes[b.head:b.head + len(data)] = data
        data_off = b.EndVector()
    tflite.BufferStart(b)
    if data_off is not None:
        tflite.BufferAddData(b, data_off)
    return tflite.BufferEnd(b)


def _tensor(b: flatbuffers.Builder, t: _Tensor, buffer: int) -> int:
    name = b.CreateString(t.name)
    shape = _int32_vector(b, tflite.TensorStartShapeVector, t.shape)
    quant = None
    if t.scale is not None:
        tflite.QuantizationParametersStartScaleVector(b, t.scale.size)
        for s in reversed(t.scale):
            b.PrependFloat32(float(s))
        scale = b.EndVector()
        tflite.QuantizationParametersStartZeroPointVector(b, t.zero_point.size)
        for z in reversed(t.zero_point):
            b.PrependInt64(int(z))
        zero_point = b.EndVector()
        tflite.QuantizationParametersStart(b)
        tflite.QuantizationParametersAddScale(b, scale)
        tflite.QuantizationParametersAddZeroPoint(b, zero_point)
        tflite.QuantizationParametersAddQuantizedDimension(b, t.axis)
        quant = tflite.QuantizationParametersEnd(b)
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape)
    tflite.TensorAddType(b, _TYPES[t.dtype])
    tflite.TensorAddBuffer(b, buffer)
    tflite.TensorAddName(b, name)
    if quant is not None:
        tflite.TensorAddQuantization(b, quant)
    return tflite.TensorEnd(b)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _options(b: flatbuffers.Builder, op: _Op) -> tuple[int, int]:
    """The operator's options table (every option, defaults filled in) and its union type."""
    table, defaults = _OPTIONS[op.code]
    values = {**defaults, **op.options}
    vectors = {name: _int32_vector(b, getattr(tflite, f"{table}Start{_camel(name)}Vector"), v)
               for name, v in values.items() if isinstance(v, (tuple, list))}  # before the table
    getattr(tflite, f"{table}Start")(b)
    for name, v in values.items():
        v = vectors[name] if name in vectors else _ENUMS.get(name, {}).get(v, v)
        getattr(tflite, f"{table}Add{_camel(name)}")(b, v)
    return getattr(tflite, f"{table}End")(b), getattr(tflite.BuiltinOptions, table)


def _operator(b: flatbuffers.Builder, op: _Op, opcode_index: int) -> int:
    inputs = _int32_vector(b, tflite.OperatorStartInputsVector, op.inputs)
    outputs = _int32_vector(b, tflite.OperatorStartOutputsVector, op.outputs)
    options, options_type = _options(b, op)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, opcode_index)
    tflite.OperatorAddInputs(b, inputs)
    tflite.OperatorAddOutputs(b, outputs)
    tflite.OperatorAddBuiltinOptionsType(b, options_type)
    tflite.OperatorAddBuiltinOptions(b, options)
    return tflite.OperatorEnd(b)
