# SPDX-License-Identifier: Apache-2.0
"""Validate a model on a device: every sample through the firmware, compared with the emulator.

    result = validate("out/ic", "socket://127.0.0.1:4321", [x], labels=y, out_json="val.json")
    print(result.summary())

For every sample: LOAD_INPUT, INVOKE (with per-layer checksums), READ_OUTPUT, READ_LAYER_CYCLES,
READ_LAYER_CHECKSUMS; the outputs are compared byte for byte with the emulator's, the
per-layer CRC-32s with the CRC-32s of the emulator's per-layer values. On a difference, the
first layer whose checksum differs is named and its output is dumped from the device
(DUMP_LAYER) and compared with the emulator's (first differing byte, values, how many differ;
both arrays saved beside the JSON).

The JSON report is rewritten atomically as the run goes (status "running"), so a run that dies
(link lost, QEMU killed, Ctrl-C) leaves its partial results, marked "incomplete" with the
reason, and ValidationError says where they are.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import write_atomic
from ..atomic import write_json_atomic as _write_json
from ..errors import InputError, TernembedError
from ..plan import Plan
from . import protocol as P
from .client import DeviceClient, DeviceCommandError, DeviceError, ModelMismatchError

REPORT_FORMAT = 1
MAX_DUMPS = 3
WRITE_INTERVAL = 0.5  # seconds between rewrites of the JSON report


class ValidationError(TernembedError):
    """Validation could not finish; ``result`` holds what was measured (also on disk)."""

    def __init__(self, message: str, result: "ValidationResult | None" = None):
        super().__init__(message)
        self.result = result


# ---- what is validated against -------------------------------------------------------------------

@dataclass
class Target:
    plan: Plan
    model_hash: str
    project: Path | None = None
    board: str | None = None


def resolve_target(target: "Plan | Path | str") -> Target:
    """A Plan, or an exported protocol project (its ternembed_plan.npz holds the Plan)."""
    from ..codegen import plan_hash

    if isinstance(target, Plan):
        return Target(target, plan_hash(target))
    from ..build import read_project
    from ..planfile import PLAN_FILE, load_plan

    project = Path(target)
    info = read_project(project)
    plan_file = project / PLAN_FILE
    if not plan_file.is_file():
        raise InputError(
            f"{project} has no {PLAN_FILE}: it is not a protocol firmware project (the self-test "
            "firmware cannot be validated over serial). Export it with the protocol firmware "
            "(ternembed.device.firmware.export_protocol_project).")
    plan = load_plan(plan_file, info.get("model_hash"))
    return Target(plan, info["model_hash"], project, info.get("board"))


def sample_bytes(plan: Plan, inputs: list[np.ndarray], s: int) -> list[bytes]:
    """The bytes of sample ``s`` of every input, as the firmware takes them (little-endian)."""
    out = []
    for x, i in zip(inputs, plan.inputs):
        dt = np.dtype(plan.buffers[i].dtype).newbyteorder("<")
        out.append(np.ascontiguousarray(x[s], dtype=dt).tobytes())
    return out


def int8_forms(plan: Plan, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], list]:
    """Inputs the link can carry as int8: a float32 input read only by QUANTIZE steps (one
    scale and zero point) goes as its quantized values q, and the device stores (q - zp) * scale.

    Returns (inputs, forms): the float inputs replaced by those dequantized values, which
    quantize back to the same q (checked here), so every layer computes what it would from the
    original floats; forms[k] is (q, QuantizeParams) for such an input, else None."""
    from ..kernels.misc import quantize
    out, forms = list(inputs), [None] * len(inputs)
    for k, i in enumerate(plan.inputs):
        readers = [st for st in plan.steps if i in st.inputs]
        params = {st.params["op"] for st in readers if st.kernel == "quantize_f32_s8"}
        if plan.buffers[i].dtype != "float32" or len(params) != 1 or \
                any(st.kernel != "quantize_f32_s8" for st in readers):
            continue
        p = params.pop()
        q = quantize(inputs[k], p)
        back = (q.astype(np.int32) - p.zero_point).astype(np.float32) * np.float32(p.scale)
        if np.array_equal(quantize(back, p), q):
            out[k], forms[k] = back, (q, p)
    return out, forms


def load_sample(dev: DeviceClient, plan: Plan, inputs: list[np.ndarray], forms: list, s: int
                ) -> list[bytes]:
    """Send sample ``s`` (int8 where ``forms`` allows); returns the bytes the device then holds."""
    data = sample_bytes(plan, inputs, s)
    for k, d in enumerate(data):
        if forms[k] is not None:
            q, p = forms[k]
            try:
                dev.load_input_q(q[s].tobytes(), float(p.scale), int(p.zero_point), k)
                continue
            except DeviceCommandError as exc:  # a firmware from before LOAD_INPUT_Q
                if exc.code != P.ERR_UNKNOWN_COMMAND:
                    raise
                forms[k] = None
        dev.load_input(d, k)
    return data


def _le_bytes(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()


@dataclass
class Expected:
    outputs: list[list[bytes]]  # [sample][output]
    layer_crcs: np.ndarray  # [samples, layers] uint32
    predictions: np.ndarray | None  # argmax of output 0 (classification), per sample


def expected_results(plan: Plan, inputs: list[np.ndarray], batch: int = 32) -> Expected:
    """Emulator outputs and per-layer CRC-32s for every sample (in batches, bounded memory)."""
    from .. import emulate
    from ..segments import windowed

    n = len(inputs[0])
    crcs = np.zeros((n, len(plan.steps)), dtype=np.uint32)
    outs: list[list[bytes]] = []
    preds = []
    streamed = windowed(plan)
    state = emulate.initial_state(plan)  # a streaming model: one sequence across the batches
    for a in range(0, n, batch):
        vals = emulate.run(plan, [x[a:a + batch] for x in inputs], keep_all=True, state=state)
        m = len(vals[plan.outputs[0]])
        for t, step in enumerate(plan.steps):
            if step.outputs and step.outputs[0] not in streamed:  # a streamed row window: CRC of 0 bytes
                v = vals[step.outputs[0]]
                for j in range(m):
                    crcs[a + j, t] = zlib.crc32(_le_bytes(v[j]))
        for j in range(m):
            outs.append([_le_bytes(vals[i][j]) for i in plan.outputs])
        preds.append(vals[plan.outputs[0]].reshape(m, -1).argmax(axis=1))
    return Expected(outs, crcs, np.concatenate(preds) if preds else None)


def layer_names(plan: Plan) -> list[dict]:
    rows = []
    for t, s in enumerate(plan.steps):
        name = plan.buffers[s.outputs[0]].name if s.outputs else ""
        rows.append(dict(index=t, name=name, op=s.op_type, kernel=s.kernel, op_index=s.op_index))
    return rows


# ---- the report ----------------------------------------------------------------------------------

def _stats(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {}
    return dict(median=float(np.median(a)), mean=float(a.mean()), min=float(a.min()),
                max=float(a.max()))


@dataclass
class ValidationResult:
    model: str
    model_hash: str
    port: str
    samples_total: int
    status: str = "running"  # running, complete, incomplete
    error: str | None = None
    device: dict = field(default_factory=dict)  # HELLO
    layers: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    mismatches: list[dict] = field(default_factory=list)
    link: dict = field(default_factory=dict)
    seconds: float = 0.0
    json_path: Path | None = None
    labels_given: bool = False
    emulator_correct: int = 0
    _layer_cycles: list[list[int]] = field(default_factory=list)

    # -- figures
    @property
    def done(self) -> int:
        return len(self.samples)

    @property
    def exact(self) -> int:
        return sum(1 for s in self.samples if s["outputs_exact"])

    @property
    def agreement(self) -> float:
        return self.exact / self.done if self.done else 0.0

    @property
    def layers_exact(self) -> int:
        return sum(1 for s in self.samples if s.get("layers_exact") is True)

    @property
    def accuracy(self) -> float | None:
        if not self.labels_given or not self.done:
            return None
        return sum(1 for s in self.samples if s["prediction"] == s["label"]) / self.done

    def _ms(self, cycles: float) -> float | None:
        hz = self.device.get("cycles_hz")
        return cycles / hz * 1e3 if hz else None

    def latency(self) -> dict:
        totals = [s["total_cycles"] for s in self.samples]
        st = _stats(totals)
        out = {"unit": self.device.get("cycles_unit"), "hz": self.device.get("cycles_hz"),
               "total": {**{f"{k}_cycles": v for k, v in st.items()},
                         **({f"{k}_ms": self._ms(v) for k, v in st.items()} if st else {})},
               "layers": []}
        if self._layer_cycles:
            per = np.asarray(self._layer_cycles, dtype=np.float64)
            med_total = float(np.median(per.sum(axis=1))) or 1.0
            for t, row in enumerate(self.layers):
                col = per[:, t]
                med = float(np.median(col))
                out["layers"].append({**row, "median_cycles": med, "min_cycles": float(col.min()),
                                      "max_cycles": float(col.max()), "median_ms": self._ms(med),
                                      "share": med / med_total})
        tpi = self.device.get("ticks_per_instruction")
        if tpi and st:
            out["total"]["median_instructions"] = st["median"] / tpi
            out["note"] = ("emulated board: QEMU -icount ticks, proportional to executed "
                           "instructions (every instruction counts the same), not core cycles")
        return out

    def to_dict(self) -> dict:
        return {
            "format": REPORT_FORMAT, "status": self.status, "error": self.error,
            "model": self.model, "model_hash": self.model_hash, "port": self.port,
            "device": self.device, "samples_total": self.samples_total, "samples_done": self.done,
            "agreement": {"outputs_bit_exact": self.exact, "layers_bit_exact": self.layers_exact,
                          "samples": self.done, "rate": self.agreement},
            "accuracy": None if self.accuracy is None else {
                "device": self.accuracy, "emulator": self.emulator_correct / self.done,
                "samples": self.done},
            "latency": self.latency(), "mismatches": self.mismatches, "samples": self.samples,
            "link": self.link, "seconds": self.seconds,
        }

    def summary(self) -> str:
        lines = [f"{self.model} on {self.device.get('board', '?')} ({self.port}): "
                 f"{self.exact}/{self.done} samples bit-exact"
                 + (f" ({self.status}: {self.samples_total - self.done} not run)"
                    if self.status != "complete" else "")]
        if self.accuracy is not None:
            lines.append(f"  accuracy: device {self.accuracy:.4f}, emulator "
                         f"{self.emulator_correct / self.done:.4f}")
        lat = self.latency()
        tot = lat["total"]
        if tot.get("median_cycles") is not None:
            lines.append(f"  latency: median {tot['median_cycles']:.0f} {lat['unit']} = "
                         f"{tot['median_ms']:.3f} ms at {lat['hz'] / 1e6:g} MHz "
                         f"(min {tot['min_cycles']:.0f}, max {tot['max_cycles']:.0f})")
            if lat.get("note"):
                lines.append(f"  note: {lat['note']}")
            top = sorted(lat["layers"], key=lambda r: -r["median_cycles"])[:5]
            for r in top:
                lines.append(f"    layer {r['index']:>3} {r['op']:<18} {r['median_cycles']:>12.0f} "
                             f"({100 * r['share']:.1f}%) {_short(r['name'])}")
        for m in self.mismatches[:5]:
            d = m.get("first_diverging_layer")
            if d:
                lines.append(f"  sample {m['sample']}: first diverging layer {d['index']} "
                             f"{d['op']} ({d['kernel']}) '{d['name']}': "
                             f"{d.get('differing_bytes', '?')} of {d.get('bytes', '?')} bytes differ")
            else:
                lines.append(f"  sample {m['sample']}: outputs differ; layers agree")
        link = self.link
        if link.get("retries"):
            lines.append(f"  link: {link['retries']} retries ({link['naks']} NAKs, "
                         f"{link['corrupt_replies']} damaged replies, {link['timeouts']} timeouts)")
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.json_path:
            lines.append(f"  report: {self.json_path}")
        return "\n".join(lines)


def write_json_atomic(path: Path, data: dict) -> None:
    _write_json(path, data, default=_json_default)


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


# ---- divergence --------------------------------------------------------------------------------

def _diverging_layer(dev: DeviceClient, plan: Plan, inputs: list[np.ndarray], s: int,
                     device_crcs: list[int], expected_crcs: np.ndarray, names: list[dict],
                     dump_dir: Path | None, dump: bool) -> dict | None:
    from .. import emulate

    bad = [t for t, (a, b) in enumerate(zip(device_crcs, expected_crcs)) if a != int(b)]
    if not bad:
        return None
    t = bad[0]
    row = dict(names[t])
    row["diverging_layers"] = len(bad)
    if not dump or not plan.steps[t].outputs:
        return row
    buf = plan.buffers[plan.steps[t].outputs[0]]
    vals = emulate.run(plan, [x[s:s + 1] for x in inputs], keep_all=True)
    want = np.ascontiguousarray(vals[buf.index][0], dtype=np.dtype(buf.dtype).newbyteorder("<"))
    raw = dev.dump_layer(t)
    got = np.frombuffer(raw, dtype=np.dtype(buf.dtype).newbyteorder("<")).reshape(want.shape)
    diff = np.flatnonzero(got.reshape(-1) != want.reshape(-1))
    row.update(bytes=len(raw), dtype=buf.dtype, shape=list(want.shape),
               differing_elements=int(diff.size),
               differing_bytes=int(np.count_nonzero(np.frombuffer(raw, np.uint8)
                                                    != np.frombuffer(want.tobytes(), np.uint8))))
    if diff.size:
        k = int(diff[0])
        row.update(first_element=k, device_value=got.reshape(-1)[k].item(),
                   emulator_value=want.reshape(-1)[k].item(),
                   max_abs_diff=float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))))
    else:
        row["note"] = ("the dump equals the emulator although the checksum differed: the layer's "
                       "bytes changed between the hook and the dump (re-run), or the device "
                       "is not deterministic")
    if dump_dir is not None:
        path = dump_dir / f"dump_sample{s}_layer{t}.npz"
        write_atomic(path, lambda fh: np.savez(fh, device=got, emulator=want))
        row["dump_file"] = str(path)
    return row


# ---- the run -----------------------------------------------------------------------------------

def validate(target: "Plan | Path | str", port: str | None, inputs, labels=None, *,
             out_json: Path | str | None = None, client: DeviceClient | None = None,
             checksums: bool = True, progress: bool = True, max_dumps: int = MAX_DUMPS,
             timeout: float = 2.0, invoke_timeout: float = 120.0, retries: int = 6,
             max_samples: int | None = None) -> ValidationResult:
    """Run every sample of ``inputs`` on the device at ``port`` and compare (module docstring).

    ``target``: a Plan or a protocol project folder. ``inputs``: one array (single-input
    models) or a list with one array per model input, leading sample axis. ``labels``: class
    indices for accuracy (argmax of output 0). ``out_json``: the report, rewritten as the run
    goes. ``client``: an open DeviceClient to use instead of opening ``port``.
    """
    from .. import emulate

    tgt = resolve_target(target)
    plan = tgt.plan
    from ..data import to_plan_inputs
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    inputs = emulate.check_inputs(plan, to_plan_inputs(plan, list(inputs)))
    n = len(inputs[0])
    if max_samples is not None:
        n = min(n, max_samples)
        inputs = [x[:n] for x in inputs]
    inputs, forms = int8_forms(plan, inputs)
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)[:n]
        if len(labels) != n:
            raise InputError(f"{len(labels)} labels for {n} samples")
    json_path = Path(out_json) if out_json is not None else None
    dump_dir = json_path.parent / (json_path.stem + "_dumps") if json_path else None

    names = layer_names(plan)
    result = ValidationResult(plan.name, tgt.model_hash, port or getattr(client, "port", "?"), n,
                              layers=names, json_path=json_path, labels_given=labels is not None)
    t0 = time.monotonic()
    last_write = [0.0]

    def save(force: bool = False) -> None:
        if json_path is None:
            return
        now = time.monotonic()
        if force or now - last_write[0] >= WRITE_INTERVAL:
            result.seconds = now - t0
            write_json_atomic(json_path, result.to_dict())
            last_write[0] = now

    expected = expected_results(plan, inputs)
    # A streaming model runs the samples as one sequence from its initial state: reset it first,
    # and never invoke twice per sample (so checksums always; no dumps, DUMP_LAYER re-runs).
    stateful = bool(emulate.initial_state(plan))
    if stateful:
        checksums, max_dumps = True, 0
    own = client is None
    dev = client
    bar = None
    try:
        if own:
            dev = DeviceClient(port, timeout=timeout, invoke_timeout=invoke_timeout, retries=retries)
        info = dev.hello(tgt.model_hash)
        result.device = _device_dict(info)
        _check_shapes(plan, info)
        if stateful:
            dev.reset_state()
        save(force=True)
        try:
            from tqdm import tqdm
            bar = tqdm(total=n, desc=f"validate {plan.name}", unit="sample", disable=not progress,
                       dynamic_ncols=True)
        except ImportError:  # pragma: no cover - tqdm is a dependency
            bar = None
        dumps = 0
        for s in range(n):
            data = load_sample(dev, plan, inputs, forms, s)
            r = dev.invoke(checksums=checksums)
            if r.input_crc != zlib.crc32(b"".join(data)):
                raise DeviceError(f"sample {s}: the device ran on other input bytes than sent "
                                  f"(CRC {r.input_crc:08x} != {zlib.crc32(b''.join(data)):08x})")
            outs = dev.read_outputs()
            if r.output_crc != zlib.crc32(b"".join(outs)):
                outs = dev.read_outputs()  # read again: the first read must have been damaged
                if r.output_crc != zlib.crc32(b"".join(outs)):
                    raise DeviceError(f"sample {s}: the outputs read do not match the CRC the "
                                      "device computed after INVOKE")
            cycles = dev.layer_cycles()
            if sum(cycles) & 0xFFFFFFFF != r.total_cycles:
                raise DeviceError(f"sample {s}: per-layer counts sum to {sum(cycles)}, the "
                                  f"device reported a total of {r.total_cycles}")
            crcs = dev.layer_checksums() if checksums else None
            exact = outs == expected.outputs[s]
            layers_exact = None if crcs is None else all(
                a == int(b) for a, b in zip(crcs, expected.layer_crcs[s]))
            pred = _prediction(plan, outs)
            rec = {"index": s, "outputs_exact": exact, "layers_exact": layers_exact,
                   "total_cycles": r.total_cycles, "overhead_cycles": r.overhead_cycles,
                   "prediction": pred, "label": None if labels is None else int(labels[s]),
                   "emulator_prediction": None if expected.predictions is None
                   else int(expected.predictions[s])}
            if labels is not None and expected.predictions is not None and \
                    int(expected.predictions[s]) == int(labels[s]):
                result.emulator_correct += 1
            if not exact or layers_exact is False:
                if crcs is None:  # run again with checksums to localise the difference
                    dev.invoke(checksums=True)
                    crcs = dev.layer_checksums()
                mismatch = {"sample": s, "outputs_differ": [
                    k for k, (a, b) in enumerate(zip(outs, expected.outputs[s])) if a != b]}
                mismatch["first_diverging_layer"] = _diverging_layer(
                    dev, plan, inputs, s, crcs, expected.layer_crcs[s], names, dump_dir,
                    dumps < max_dumps)
                dumps += 1
                result.mismatches.append(mismatch)
            result.samples.append(rec)
            result._layer_cycles.append(cycles)
            result.link = dev.stats.to_dict()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(exact=f"{result.exact}/{result.done}", refresh=False)
            save()
        result.status = "complete"
    except (DeviceError, KeyboardInterrupt) as exc:
        result.status = "incomplete"
        result.error = str(exc) if not isinstance(exc, KeyboardInterrupt) else "interrupted"
        if dev is not None:
            result.link = dev.stats.to_dict()
        save(force=True)
        where = f"; partial results ({result.done} of {n} samples) in {json_path}" if json_path \
            else f" after {result.done} of {n} samples"
        if isinstance(exc, (KeyboardInterrupt, ModelMismatchError)):
            raise
        raise ValidationError(f"validation of {plan.name} on {result.port} stopped: {exc}{where}",
                              result) from exc
    finally:
        if bar is not None:
            bar.close()
        if own and dev is not None:
            dev.close()
    result.seconds = time.monotonic() - t0
    save(force=True)
    return result


def _device_dict(info) -> dict:
    d = info.to_dict()
    try:
        from ..boards import get_board
        b = get_board(info.board)
        d["ticks_per_instruction"] = b.ticks_per_instruction
    except TernembedError:
        d["ticks_per_instruction"] = None
    return d


def _check_shapes(plan: Plan, info) -> None:
    want_in = [int(plan.buffers[i].nbytes) for i in plan.inputs]
    want_out = [int(plan.buffers[i].nbytes) for i in plan.outputs]
    got_in = [t.nbytes for t in info.inputs]
    got_out = [t.nbytes for t in info.outputs]
    if want_in != got_in or want_out != got_out or info.layer_count != len(plan.steps):
        raise DeviceError(f"the firmware's tensors (inputs {got_in}, outputs {got_out}, "
                          f"{info.layer_count} layers) do not match the plan's (inputs {want_in}, "
                          f"outputs {want_out}, {len(plan.steps)} layers)")


def _prediction(plan: Plan, outs: list[bytes]) -> int:
    b = plan.buffers[plan.outputs[0]]
    a = np.frombuffer(outs[0], dtype=np.dtype(b.dtype).newbyteorder("<"))
    return int(a.argmax()) if a.size else -1


def _short(name: str, n: int = 48) -> str:
    return name if len(name) <= n else "..." + name[-(n - 3):]
