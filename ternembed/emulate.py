# SPDX-License-Identifier: Apache-2.0
"""The host emulator: runs a Plan in numpy with exactly the integer arithmetic of the C kernels.

Every kernel family has one adapter here that unpacks a Step's params and calls
the numpy kernel in ternembed/kernels/. Samples run as a batch on a leading axis; a model
with state (resource variables) runs them one by one, as successive invokes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import InputError
from .plan import Plan, Step

Values = dict[int, np.ndarray]
ADAPTERS: dict[str, Callable[[Step, list[np.ndarray]], np.ndarray]] = {}


def adapter(*kernels: str):
    def register(fn):
        for k in kernels:
            ADAPTERS[k] = fn
        return fn
    return register


def check_inputs(plan: Plan, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Inputs with a leading sample axis, checked against the plan's input buffers."""
    if len(inputs) != len(plan.inputs):
        raise InputError(f"{plan.name} has {len(plan.inputs)} input(s), got {len(inputs)}")
    checked = []
    for k, (x, idx) in enumerate(zip(inputs, plan.inputs)):
        buf = plan.buffers[idx]
        x = np.asarray(x)
        want = buf.sample_shape
        if x.ndim >= 1 and x.shape[1:] != tuple(want) and x[0].size == buf.size:
            x = x.reshape((len(x),) + tuple(want))  # e.g. [N,1960] for a [1,49,40,1] input
        if x.shape[1:] != tuple(want):
            raise InputError(f"input {k} of {plan.name} must have shape [samples, {', '.join(map(str, want))}]"
                             f" ({buf.dtype}); got {list(x.shape)}")
        if buf.dtype == "float32":
            if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
                raise InputError(f"input {k} of {plan.name} must be numeric, got {x.dtype}")
            x = x.astype(np.float32)
        elif x.dtype != np.dtype(buf.dtype):
            raise InputError(f"input {k} of {plan.name} must be {buf.dtype} (the model is quantized; "
                             f"scale {buf.scale:g}, zero point {buf.zero_point}); got {x.dtype}")
        checked.append(x)
    return checked


def run(plan: Plan, inputs: list[np.ndarray], keep_all: bool = False,
        state: dict[str, np.ndarray] | None = None) -> list[np.ndarray] | Values:
    """Outputs (one array per model output, leading sample axis); with keep_all, every buffer.

    A model with state (resource variables) runs its samples as successive invokes, the state
    carried from one to the next: from the initial values, or from `state` (updated in place)."""
    inputs = check_inputs(plan, inputs)
    if not any(s.kernel in STATE_KERNELS for s in plan.steps):
        return _invoke(plan, inputs, keep_all, {})
    state = initial_state(plan) if state is None else state
    runs = [_invoke(plan, [x[s:s + 1] for x in inputs], keep_all, state) for s in range(len(inputs[0]))]
    if keep_all:
        return {i: np.concatenate([r[i] for r in runs]) for i in runs[0]}
    return [np.concatenate([r[k] for r in runs]) for k in range(len(plan.outputs))]


def _invoke(plan: Plan, inputs: list[np.ndarray], keep_all: bool, state: dict[str, np.ndarray]):
    n = len(inputs[0])
    values: Values = {idx: x for idx, x in zip(plan.inputs, inputs)}
    for step in plan.steps:
        args = [values[i] for i in step.inputs]
        if step.kernel in STATE_KERNELS:
            run_state_step(plan, step, args, values, state)
            continue
        result = np.asarray(ADAPTERS[step.kernel](step, args))
        out = plan.buffers[step.outputs[0]]
        shape = (n,) + out.sample_shape
        if not step.inputs:  # a constant: the same for every sample
            result = np.broadcast_to(result.reshape((1,) + out.sample_shape), shape)
        values[step.outputs[0]] = result.reshape(shape).astype(out.dtype)
    if keep_all:
        return values
    return [values[i] for i in plan.outputs]


# ---- streaming state ----------------------------------------------------------------------------

STATE_KERNELS = ("read_variable", "assign_variable")


def initial_state(plan: Plan) -> dict[str, np.ndarray]:
    """Each resource variable's initial value (carried by the first step that uses it)."""
    return {s.params["variable"]: np.array(s.params["initial"], np.int8)
            for s in plan.steps if s.kernel in STATE_KERNELS and "initial" in s.params}


def run_state_step(plan: Plan, step: Step, args: list[np.ndarray], values: Values,
                   state: dict[str, np.ndarray]) -> None:
    """READ_VARIABLE copies the variable into its output, ASSIGN_VARIABLE its input into the
    variable (one sample at a time: state is carried between successive invokes)."""
    name = step.params["variable"]
    if step.kernel == "read_variable":
        values[step.outputs[0]] = state[name].reshape((1,) + plan.buffers[step.outputs[0]].sample_shape).copy()
    else:
        state[name] = np.asarray(args[0], np.int8).reshape(-1).copy()


# ---- adapters --------------------------------------------------------------------------------

@adapter("copy")
def _copy(step: Step, args: list[np.ndarray]) -> np.ndarray:
    return args[0]


@adapter("fc_s8")
def _fc(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.mac import fc_s8
    p = step.params
    x = args[0].reshape(-1, p["depth"])
    return fc_s8(x, p["weights"], p["bias"], p["multiplier"], p["shift"],
                 p["output_offset"], p["act_min"], p["act_max"])


@adapter("conv_s8")
def _conv(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.mac import conv_s8
    p = step.params
    return conv_s8(args[0], p["weights"], p["bias"], p["multiplier"], p["shift"], p["input_offset"],
                   p["output_offset"], stride=p["stride"], dilation=p["dilation"], pad=p["pad"],
                   out_hw=p["out_hw"], act_min=p["act_min"], act_max=p["act_max"])


@adapter("dwconv_s8")
def _dwconv(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.mac import dwconv_s8
    p = step.params
    return dwconv_s8(args[0], p["weights"], p["bias"], p["multiplier"], p["shift"], p["input_offset"],
                     p["output_offset"], depth_multiplier=p["depth_multiplier"], stride=p["stride"],
                     dilation=p["dilation"], pad=p["pad"], out_hw=p["out_hw"],
                     act_min=p["act_min"], act_max=p["act_max"])


@adapter("avgpool_s8", "maxpool_s8")
def _pool(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.pool import avg_pool2d, max_pool2d
    fn = avg_pool2d if step.kernel == "avgpool_s8" else max_pool2d
    return fn(args[0], step.params["pool"])


@adapter("add_s8", "mul_s8")
def _binary(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.elementwise import add, mul
    rank = max(a.ndim for a in args)  # broadcast the shapes right-aligned, the sample axis apart
    a, b = (x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in args)
    return (add if step.kernel == "add_s8" else mul)(a, b, step.params["op"])


@adapter("softmax_s8")
def _softmax(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.activation import softmax
    x = args[0]
    return softmax(x.reshape(-1, step.params["depth"]), step.params["op"]).reshape(x.shape)


@adapter("logistic_s8", "tanh_s8", "relu_s8", "relu6_s8")
def _unary(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels import activation
    return getattr(activation, step.kernel[:-3])(args[0], step.params["op"])


@adapter("quantize_f32_s8", "requantize_s8", "dequantize_s8_f32", "pad_s8")
def _misc(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels import misc
    fn = {"quantize_f32_s8": misc.quantize, "requantize_s8": misc.requantize,
          "dequantize_s8_f32": misc.dequantize, "pad_s8": misc.pad}[step.kernel]
    return fn(args[0], step.params["op"])


@adapter("concat_s8")
def _concat(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.misc import concat
    return concat(args, step.params["op"])


@adapter("mean_s8")
def _mean(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.pool import mean
    p = step.params
    return mean(args[0], p["axes"], p["op"], p["keep_dims"])


@adapter("constant_s8")
def _constant(step: Step, args: list[np.ndarray]) -> np.ndarray:
    return step.params["data"]


@adapter("strided_copy_s8")
def _strided_copy(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.data import strided_copy
    return strided_copy(args[0], step.params["copy"])


@adapter("gather_s8")
def _gather(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.data import gather
    return gather(args[0], step.params["gather"], step.params["indices"])


@adapter("axis_gather_s8")
def _axis_gather(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.data import axis_gather_run
    return axis_gather_run(args[0], step.params["gather"], step.params["offsets"])


@adapter("reduce_minmax_s8")
def _reduce_minmax(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.data import reduce_minmax
    return reduce_minmax(args[0], step.params["reduce"])


@adapter("pack_s8")
def _pack(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.data import pack
    return pack(args, step.params["pack"])


@adapter("sub_s8", "squared_difference_s8", "maximum_s8", "minimum_s8")
def _arith(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.arith import broadcast_samples
    return broadcast_samples(step.kernel, args[0], args[1], step.params["shapes"], step.params.get("op"))


@adapter("table_s8")
def _table(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.unary import table_lookup
    return table_lookup(args[0], step.params["table"])


@adapter("prelu_s8")
def _prelu(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.arith import dims4
    from .kernels.unary import prelu
    x_shape, alpha_shape = step.params["shapes"]
    x = args[0].reshape((len(args[0]),) + dims4(x_shape))
    alpha = step.params["alpha"] if "alpha" in step.params else args[1]
    return prelu(x, np.asarray(alpha).reshape((-1,) + dims4(alpha_shape)), step.params["op"])


@adapter("resize_nearest_s8", "resize_bilinear_s8")
def _resize(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.data import resize_bilinear, resize_nearest
    p = step.params
    fn = resize_nearest if step.kernel == "resize_nearest_s8" else resize_bilinear
    return fn(args[0], p["in_shape"], p["rows"], p["cols"])


@adapter("transpose_conv_s8")
def _transpose_conv(step: Step, args: list[np.ndarray]) -> np.ndarray:
    from .kernels.transpose_conv import transpose_conv_s8
    p = step.params
    return transpose_conv_s8(args[0], p["weights"], p["bias"], p["multiplier"], p["shift"], p["op"], p["out_hw"])


def _register_ternary() -> None:
    from .kernels.ternary import TERNARY_KERNELS, run_ternary_step
    adapter(*TERNARY_KERNELS)(run_ternary_step)


_register_ternary()
