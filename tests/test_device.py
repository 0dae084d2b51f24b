# SPDX-License-Identifier: Apache-2.0
"""The serial protocol, the device client, validate and bench: framing unit tests, the C protocol
compiled for the host against a fake UART, and real runs of protocol firmware in QEMU over
pyserial's socket:// URL (the same code path as /dev/ttyACM0): the MLPerf Tiny models and
micro_speech bit-exact on every bundled sample, per-layer cycles summing to the total, a link
killed mid-run, a proxy that damages and drops bytes, the wrong firmware, the STM32 USART on
netduinoplus2, and the CLI commands."""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

from shared_data import int8_cases

from ternembed import emulate
from ternembed.boards import get_board, list_boards
from ternembed.codegen import plan_hash, supported_kernels
from ternembed.device import protocol as P
from ternembed.device.client import (DeviceClient, DeviceLinkError, DeviceTimeoutError,
                                     ModelMismatchError)
from ternembed.lower import lower
from ternembed.tflite import read

ROOT = Path(__file__).resolve().parent.parent
GCC_PKG = "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
HAVE_TOOLS = shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None
if not HAVE_TOOLS:
    warnings.warn(f"device tests skipped: install {GCC_PKG} (apt-get install)")
needs_qemu = pytest.mark.skipif(not HAVE_TOOLS, reason=f"needs arm-none-eabi-gcc and "
                                f"qemu-system-arm: apt-get install {GCC_PKG}")

BOARD = "qemu_mps2_an386"
MODELS = ["ad01_int8", "ic_int8", "sww_int8", "micro_speech"]


# ============================================================================ framing (pure Python)

def test_cobs_round_trip_and_no_zeros():
    rng = random.Random(1)
    cases = [b"", b"\x00", b"\x00\x00", b"a\x00", b"\x01" * 253, b"\x01" * 254, b"\x01" * 255,
             b"\x01" * 254 + b"\x00", b"\x00" + b"\x02" * 600]
    cases += [bytes(rng.choice([0, 0, 1, 255, rng.randrange(256)]) for _ in range(n))
              for n in range(0, 700, 7)]
    for data in cases:
        enc = P.cobs_encode(data)
        assert 0 not in enc
        assert len(enc) <= len(data) + len(data) // 254 + 1
        assert P.cobs_decode(enc) == data


def test_frame_crc_detects_every_single_byte_error():
    frame = P.encode_frame(P.LOAD_INPUT, 9, bytes(range(256)) * 2)
    assert P.decode_frame(frame[1:-1]) == P.Frame(P.LOAD_INPUT, 9, bytes(range(256)) * 2)
    body = bytearray(frame[1:-1])
    for k in range(len(body)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(body)
            bad[k] ^= flip
            if 0 in bad:
                continue  # a zero would split the frame at the delimiter: tested below
            with pytest.raises(P.FrameError):
                P.decode_frame(bytes(bad))


def test_frame_reader_splits_and_bounds():
    a = P.encode_frame(1, 1, b"x")
    b = P.encode_frame(2, 2, b"\x00\x00")
    r = P.FrameReader(max_encoded=64)
    got = r.feed(b"noise" + a[:3]) + r.feed(a[3:] + b)
    assert [P.decode_frame(f).type for f in got[1:]] == [1, 2]
    with pytest.raises(P.FrameError):
        P.decode_frame(got[0])  # the noise before the first delimiter
    assert r.feed(b"\x01" * 100 + b"\x00") == []  # too long: dropped


def test_hello_layout_round_trip():
    head = P.HELLO_HEAD.pack(1, 1024, 25_000_000, 25_000_000, 768, 10, 1, 1, bytes(range(32)), 3)
    tail = struct.pack("<IB", 640, 0) + struct.pack("<IB", 10, 0)
    for s in (b"qemu_mps2_an386", b"cmsdk_timer_ticks", b"ad", b"0.1.0"):
        tail += bytes([len(s)]) + s
    info = P.parse_hello(head + tail)
    assert info.model_hash == bytes(range(32)).hex() and info.bound and info.emulated
    assert [t.nbytes for t in info.inputs] == [640] and info.outputs[0].dtype == "int8"
    assert info.board == "qemu_mps2_an386" and info.cycles_unit == "cmsdk_timer_ticks"


# ============================================================================ the C protocol on the host

HOST_STUB = r"""
#include <setjmp.h>
#include <string.h>
#include "te_platform.h"
#include "te_protocol.h"

static const uint8_t *in_p;
static size_t in_n, in_k, out_n, out_cap;
static uint8_t *out_p;
static jmp_buf done;
static uint32_t now_ticks;
int invocations;

void te_uart_putc(uint8_t c) { if (out_n < out_cap) out_p[out_n++] = c; }
void te_uart_write(const void *buf, size_t n) {
    const uint8_t *p = (const uint8_t *)buf;
    while (n--) te_uart_putc(*p++);
}
uint8_t te_uart_getc_blocking(void) {
    if (in_k >= in_n) longjmp(done, 1);
    return in_p[in_k++];
}
uint32_t te_cycles_now(void) { return now_ticks += 7u; }
const char *te_cycles_unit(void) { return "cycles"; }

/* A fake 2-layer model: layer 0 = input + 1 (6 bytes at 8), layer 1 = 2 * layer 0 (at 16). */
static uint8_t arena[32];
static uint8_t copy0[6];
static uint8_t *const copies[1] = {copy0};
static te_proto_tensor ins[1] = {{arena, 6u, 0u}};
static te_proto_tensor outs[1] = {{arena + 16, 6u, 0u}};
static const uint32_t offs[2] = {8u, 16u}, sizes[2] = {6u, 6u};
static uint32_t cycles[2], crcs[2];
static int fake_invoke(void) {
    int i;
    ++invocations;
    for (i = 0; i < 6; ++i) arena[8 + i] = (uint8_t)(arena[i] + 1);
    te_proto_layer_end(0u, arena);
    for (i = 0; i < 6; ++i) arena[16 + i] = (uint8_t)(arena[8 + i] * 2);
    te_proto_layer_end(1u, arena);
    return 0;
}
static const te_proto_model model = {
    "fake", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "test",
    32u, 2u, 1u, 1u, ins, copies, outs, offs, sizes, cycles, crcs, fake_invoke, NULL};

size_t host_serve(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    in_p = in; in_n = n; in_k = 0; out_p = out; out_cap = cap; out_n = 0;
    if (setjmp(done) == 0) te_proto_run(&model);
    return out_n;
}
"""

FAKE_HASH = bytes(range(32)).hex()


@pytest.fixture(scope="module")
def host_proto(tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not found: apt-get install gcc")
    from ternembed.hostc import load_shared
    d = tmp_path_factory.mktemp("hostproto")
    (d / "stub.c").write_text(HOST_STUB)
    lib = load_shared([d / "stub.c", ROOT / "firmware/protocol/te_protocol.c"],
                      [ROOT / "firmware/protocol", ROOT / "firmware/platform"],
                      ["TE_BOARD_QEMU_MPS2_AN386"])
    lib.host_serve.restype = ctypes.c_size_t
    lib.host_serve.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    lib.te_crc32_update.restype = ctypes.c_uint32
    lib.te_crc32_update.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]
    lib.te_cobs_encode.restype = ctypes.c_size_t
    lib.te_cobs_encode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    lib.te_cobs_decode.restype = ctypes.c_long
    lib.te_cobs_decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]

    def serve(data: bytes) -> list[P.Frame | bytes]:
        out = ctypes.create_string_buffer(8192)
        n = lib.host_serve(data, len(data), out, len(out))
        frames = []
        for enc in P.FrameReader().feed(out.raw[:n]):
            try:
                frames.append(P.decode_frame(enc))
            except P.FrameError:
                frames.append(enc)
        return frames

    return lib, serve


def test_c_crc32_and_cobs_match_python(host_proto):
    lib, _ = host_proto
    rng = random.Random(5)
    for n in list(range(0, 600, 13)) + [254, 255, 508]:
        data = bytes(rng.choice([0, rng.randrange(256)]) for _ in range(n))
        assert lib.te_crc32_update(0, data, len(data)) == zlib.crc32(data)
        half = n // 2
        assert lib.te_crc32_update(lib.te_crc32_update(0, data[:half], half), data[half:],
                                   n - half) == zlib.crc32(data)
        out = ctypes.create_string_buffer(n + n // 254 + 2)
        k = lib.te_cobs_encode(data, n, out)
        assert out.raw[:k] == P.cobs_encode(data)
        back = ctypes.create_string_buffer(max(n, 1))
        assert lib.te_cobs_decode(out.raw[:k], k, back, len(back)) == n
        assert back.raw[:n] == data
    assert lib.te_cobs_decode(b"\x05ab", 3, ctypes.create_string_buffer(8), 8) == -1


def test_c_protocol_session(host_proto):
    lib, serve = host_proto
    invocations = ctypes.c_int.in_dll(lib, "invocations")

    # identify without binding; commands are refused until bound
    (f,) = serve(P.encode_frame(P.HELLO, 1))
    info = P.parse_hello(f.payload)
    assert (f.type, f.seq, info.model_hash, info.bound) == (P.HELLO | 0x80, 1, FAKE_HASH, False)
    assert info.layer_count == 2 and info.inputs[0].nbytes == 6 and info.model_name == "fake"
    (f,) = serve(P.encode_frame(P.INVOKE, 2, b"\x01"))
    assert f.type == P.ERROR and f.payload[0] == P.ERR_NOT_BOUND

    # the wrong model hash is refused, naming the firmware's
    (f,) = serve(P.encode_frame(P.HELLO, 3, bytes(32)))
    assert f.type == P.ERROR and f.payload[0] == P.ERR_MODEL_MISMATCH
    assert FAKE_HASH in P.parse_error(f.payload)[2]

    (f,) = serve(P.encode_frame(P.HELLO, 4, bytes.fromhex(FAKE_HASH)))
    assert P.parse_hello(f.payload).bound
    (f,) = serve(P.encode_frame(P.RESET_STATE, 40))  # a model without state: nothing to do, acknowledged
    assert (f.type, f.payload) == (P.RESET_STATE | 0x80, b"")
    (f,) = serve(P.encode_frame(P.RESET_STATE, 41, b"\x00"))
    assert f.type == P.ERROR and f.payload[0] == P.ERR_BAD_LENGTH
    x = bytes([1, 2, 3, 250, 0, 7])
    (f,) = serve(P.encode_frame(P.LOAD_INPUT, 5, P.load_input_request(0, 0, x)))
    assert f.type == P.LOAD_INPUT | 0x80 and struct.unpack("<I", f.payload)[0] == 6
    (f,) = serve(P.encode_frame(P.LOAD_INPUT, 6, P.load_input_request(0, 4, b"abc")))
    assert f.type == P.ERROR and f.payload[0] == P.ERR_OUT_OF_RANGE
    (f,) = serve(P.encode_frame(P.LOAD_INPUT_Q, 42, P.load_input_q_request(0, 0, 0.5, 3, b"\x01")))
    assert f.type == P.ERROR and f.payload[0] == P.ERR_OUT_OF_RANGE  # int8 input: not for LOAD_INPUT_Q

    before = invocations.value
    req = P.encode_frame(P.INVOKE, 7, b"\x01")
    (f,) = serve(req)
    r = P.parse_invoke(f.payload)
    l0 = bytes((v + 1) & 0xFF for v in x)
    l1 = bytes((2 * v) & 0xFF for v in l0)
    assert r.input_crc == zlib.crc32(x) and r.output_crc == zlib.crc32(l1)
    # a retried request (same seq and bytes) gets the same reply without running again
    (g,) = serve(req)
    assert g == f and invocations.value == before + 1

    (f,) = serve(P.encode_frame(P.READ_LAYER_CHECKSUMS, 8, P.layer_range_request(0, 2)))
    assert P.parse_u32_table(f.payload) == (0, [zlib.crc32(l0), zlib.crc32(l1)])
    (f,) = serve(P.encode_frame(P.READ_LAYER_CYCLES, 9, P.layer_range_request(0, 2)))
    _, cyc = P.parse_u32_table(f.payload)
    assert sum(cyc) == r.total_cycles and r.overhead_cycles > 0
    (f,) = serve(P.encode_frame(P.READ_OUTPUT, 10, P.read_output_request(0, 2, 4)))
    assert P.parse_chunk(f.payload) == (2, l1[2:6])
    (f,) = serve(P.encode_frame(P.DUMP_LAYER, 11, P.dump_layer_request(0, 1, 100)))
    assert P.parse_dump(f.payload) == (0, 1, 6, l0[1:])
    # the dump's re-run left the checksums of the last INVOKE alone
    (f,) = serve(P.encode_frame(P.READ_LAYER_CYCLES, 12, P.layer_range_request(0, 2)))
    assert P.parse_u32_table(f.payload)[1] == cyc

    # damaged frames: NAKs, never executed
    good = P.encode_frame(P.INVOKE, 13, b"\x00")
    bad = bytearray(good)
    bad[3] ^= 0x40
    (f,) = serve(bytes(bad))
    assert (f.type, f.payload) == (P.NAK, bytes([P.NAK_BAD_CRC]))
    (f,) = serve(b"\x00\x05ab\x00")
    assert (f.type, f.payload) == (P.NAK, bytes([P.NAK_BAD_COBS]))
    (f,) = serve(b"\x00\x02a\x00")
    assert (f.type, f.payload) == (P.NAK, bytes([P.NAK_TOO_SHORT]))
    (f,) = serve(b"\x00" + b"\xff" + b"\x01" * 254 + b"\xff" * 5000 + b"\x00")
    assert (f.type, f.payload) == (P.NAK, bytes([P.NAK_TOO_LONG]))
    assert invocations.value == before + 2  # the DUMP_LAYER re-run only
    (f,) = serve(P.encode_frame(0x42, 14))
    assert f.type == P.ERROR and f.payload[0] == P.ERR_UNKNOWN_COMMAND
    # a truncated frame followed by a good one: the good one is served
    frames = serve(good[:-3] + good)
    assert frames[-1].type == P.INVOKE | 0x80


# ============================================================================ QEMU helpers

_CASES = {}
_PROJECTS = {}


def case(name: str):
    if not _CASES:
        _CASES.update({c.name: c for c in int8_cases()})
    return _CASES[name]


def protocol_project(tmp_root: Path, name: str, board: str = BOARD, plan=None):
    """(plan, project dir, ELF) of the protocol firmware for a case, built once per session."""
    from ternembed.build import build_project
    from ternembed.device.firmware import export_protocol_project
    key = (name, board)
    if key not in _PROJECTS:
        if plan is None:
            plan = lower(read(case(name).model))
        out = tmp_root / f"{name}_{board}"
        export_protocol_project(plan, board, out)
        res = build_project(out, use_platformio=False)
        _PROJECTS[key] = (plan, out, res.elf)
    return _PROJECTS[key]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("device")


class FaultyProxy:
    """A TCP proxy on 127.0.0.1 between the client and QEMU that damages (xor with a random
    non-zero byte) or drops bytes, each with its own probability, in both directions."""

    def __init__(self, target_port: int, corrupt: float, drop: float, seed: int = 0):
        self.target = target_port
        self.corrupt, self.drop = corrupt, drop
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.damaged = self.dropped = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for a, b in ((client, upstream), (upstream, client)):
            t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
            t.start()
            self.threads.append(t)

    def _mangle(self, data: bytes) -> bytes:
        out = bytearray()
        with self.lock:
            for byte in data:
                r = self.rng.random()
                if r < self.drop:
                    self.dropped += 1
                    continue
                if r < self.drop + self.corrupt:
                    self.damaged += 1
                    byte ^= self.rng.randrange(1, 256)
                out.append(byte)
        return bytes(out)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                dst.sendall(self._mangle(data))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


# ============================================================================ QEMU: validate

@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("name", MODELS)
def test_validate_bit_exact_on_qemu(root, name):
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    c = case(name)
    plan, project, elf = protocol_project(root, name)
    report = root / f"{name}_validate.json"
    with QemuSession(elf, get_board(BOARD)) as q:
        res = validate(project, q.url, c.inputs, c.labels, out_json=report, progress=False,
                       invoke_timeout=60)
    n = len(c.inputs[0])
    assert res.status == "complete" and res.done == n
    assert res.exact == n, res.mismatches[:2]  # every output byte of every sample
    assert res.layers_exact == n  # and every layer's checksum
    assert not res.mismatches
    # a clean link: nothing damaged either way (a retry after a slow reply on a loaded machine is fine)
    assert res.link["corrupt_replies"] == 0 and res.link["naks"] == 0
    assert res.link["retries"] == res.link["timeouts"]
    doc = json.loads(report.read_text())
    assert doc["status"] == "complete" and doc["agreement"]["rate"] == 1.0
    assert doc["device"]["board"] == BOARD and doc["device"]["cycles_unit"] == "cmsdk_timer_ticks"
    # validate checked that every sample's per-layer counts sum to its total; check it again
    lat = doc["latency"]
    assert len(lat["layers"]) == len(plan.steps)
    assert all(r["median_cycles"] > 0 for r in lat["layers"] if r["kernel"] != "copy")
    assert lat["total"]["median_ms"] == pytest.approx(lat["total"]["median_cycles"] / 25e6 * 1e3)
    if c.labels is not None:
        emu = emulate.run(plan, c.inputs)[0].reshape(n, -1).argmax(1)
        assert doc["accuracy"]["device"] == pytest.approx(np.mean(emu == c.labels))
    print(f"\n{res.summary()}\n  link: {res.link['bytes_sent']} B sent in {res.seconds:.1f} s")


@needs_qemu
@pytest.mark.qemu
def test_layer_cycles_sum_to_total_and_checksums_match(root):
    from ternembed.device.qemu import QemuSession
    c = case("ic_int8")
    plan, _, elf = protocol_project(root, "ic_int8")
    x = c.inputs[0][:2]
    vals = emulate.run(plan, [x], keep_all=True)
    with QemuSession(elf, get_board(BOARD)) as q, DeviceClient(q.url) as dev:
        info = dev.hello(plan_hash(plan))
        assert info.layer_count == len(plan.steps) and info.cpu_hz == 25_000_000
        for s in range(2):
            dev.load_input(x[s].tobytes())
            r = dev.invoke(checksums=True)
            cyc = dev.layer_cycles()
            assert sum(cyc) == r.total_cycles and r.overhead_cycles > 0
            want = [zlib.crc32(vals[st.outputs[0]][s].tobytes()) for st in plan.steps]
            assert dev.layer_checksums() == want
            # an invocation without checksums costs the same per layer, within the hooks' noise
            r2 = dev.invoke(checksums=False)
            assert sum(dev.layer_cycles()) == r2.total_cycles
            assert abs(r2.total_cycles - r.total_cycles) < 0.001 * r.total_cycles
            # and a layer dump is the emulator's value of that layer
            t = 3
            assert dev.dump_layer(t) == vals[plan.steps[t].outputs[0]][s].tobytes()


@needs_qemu
@pytest.mark.qemu
def test_bench_writes_json_csv_png(root):
    from PIL import Image

    from ternembed.device.bench import bench
    from ternembed.device.qemu import QemuSession
    plan, project, elf = protocol_project(root, "micro_speech")
    out = root / "bench_ms"
    with QemuSession(elf, get_board(BOARD)) as q:
        res = bench(project, q.url, runs=5, warmup=1, inputs=case("micro_speech").inputs,
                    out_dir=out, progress=False)
    assert res.output_exact is True
    assert res.cycles.shape == (5, len(plan.steps))
    assert (res.cycles.sum(axis=1) == res.totals).all()
    doc = json.loads((out / "bench.json").read_text())
    assert len(doc["layers"]) == len(plan.steps) and doc["total"]["min_ticks"] > 0
    assert doc["counts"] == "ticks" and "median_ticks" in doc["layers"][0]  # named by what they hold
    assert not any(k.endswith("_cycles") for k in doc["total"])
    rows = (out / "bench.csv").read_text().splitlines()
    assert rows[0].startswith("layer,") and len(rows) == len(plan.steps) + 2
    assert "median_ticks,min_ticks,max_ticks" in rows[0]  # QEMU counts instructions, not cycles
    assert res.title == f"{project.name}: {plan.name} (int8)"  # which project, which method
    with Image.open(out / "bench.png") as img:
        assert img.format == "PNG" and img.size[0] > 300
    print("\n" + res.summary())


def test_chart_labels_drop_the_shared_prefix():
    from ternembed.device.bench import short_names
    names = ["StatefulPartitionedCall:0/model/conv1/Relu;bias", "StatefulPartitionedCall:0/model/dense/MatMul"]
    assert short_names(names) == ["conv1/Relu", "dense/MatMul"]
    assert short_names(["a" * 40]) == ["…" + "a" * 23]


# ============================================================================ QEMU: faults

@needs_qemu
@pytest.mark.qemu
def test_link_killed_mid_validation_keeps_partial_results(root):
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import ValidationError, validate
    c = case("ic_int8")
    plan, project, elf = protocol_project(root, "ic_int8")
    report = root / "killed.json"

    class KillingClient(DeviceClient):
        """Kills QEMU just before the 4th INVOKE (deterministic 'cable pulled')."""
        session = None
        calls = 0

        def invoke(self, checksums=False):
            KillingClient.calls += 1
            if KillingClient.calls == 4:
                self.session.proc.kill()
                self.session.proc.wait()
            return super().invoke(checksums)

    with QemuSession(elf, get_board(BOARD)) as q:
        KillingClient.session = q
        dev = KillingClient(q.url, timeout=0.5, invoke_timeout=5, retries=2)
        with pytest.raises(ValidationError) as info:
            validate(project, None, c.inputs, c.labels, out_json=report, client=dev,
                     progress=False)
        dev.close()
    msg = str(info.value)
    assert "stopped" in msg and "partial results (3 of 20 samples)" in msg and str(report) in msg
    assert "lost" in msg or "no valid INVOKE reply" in msg
    doc = json.loads(report.read_text())
    assert doc["status"] == "incomplete" and doc["samples_done"] == 3
    assert doc["agreement"]["outputs_bit_exact"] == 3 and doc["error"]
    assert info.value.result.done == 3


@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("corrupt,drop,seed", [(0.003, 0.0, 1), (0.0, 0.002, 2), (0.004, 0.002, 3)])
def test_proxy_damaging_bytes_retries_and_stays_exact(root, corrupt, drop, seed):
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    c = case("micro_speech")
    plan, project, elf = protocol_project(root, "micro_speech")
    with QemuSession(elf, get_board(BOARD)) as q:
        proxy = FaultyProxy(q.port, corrupt, drop, seed)
        try:
            dev = DeviceClient(proxy.url, timeout=0.3, invoke_timeout=5, retries=12)
            res = validate(project, None, c.inputs, c.labels, client=dev, progress=False)
            dev.close()
        finally:
            proxy.close()
    n = len(c.inputs[0])
    assert res.status == "complete" and res.exact == n and res.layers_exact == n
    assert proxy.damaged + proxy.dropped > 0
    link = res.link
    assert link["retries"] > 0
    assert link["naks"] + link["corrupt_replies"] + link["timeouts"] > 0
    print(f"\nproxy damaged {proxy.damaged}, dropped {proxy.dropped} bytes; link: "
          f"{link['retries']} retries, {link['naks']} NAKs, {link['corrupt_replies']} damaged "
          f"replies, {link['timeouts']} timeouts; {res.exact}/{n} exact")


@needs_qemu
@pytest.mark.qemu
def test_wrong_firmware_is_refused_by_hash(root):
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    ad_plan, _, ad_elf = protocol_project(root, "ad01_int8")
    ms_plan, ms_project, _ = protocol_project(root, "micro_speech")
    with QemuSession(ad_elf, get_board(BOARD)) as q:
        with DeviceClient(q.url) as dev:
            with pytest.raises(ModelMismatchError) as info:
                dev.hello(plan_hash(ms_plan))
            msg = str(info.value)
            assert plan_hash(ad_plan) in msg and plan_hash(ms_plan) in msg
            # unbound: the device refuses to run anything for this session
            from ternembed.device.client import DeviceCommandError
            dev.info = P.parse_hello(dev._transact(P.HELLO).payload)
            with pytest.raises(DeviceCommandError, match="not bound|HELLO"):
                dev.invoke()
        with pytest.raises(ModelMismatchError):
            validate(ms_project, q.url, case("micro_speech").inputs, progress=False)


@needs_qemu
@pytest.mark.qemu
def test_timeout_names_the_expected_reply(root):
    """The self-test firmware does not speak the protocol: a clear timeout, not a hang."""
    from ternembed.device.qemu import QemuSession
    from ternembed.render import export_project
    from ternembed.build import build_project
    plan, _, _ = protocol_project(root, "micro_speech")
    out = root / "selftest_ms"
    export_project(plan, BOARD, out, test_inputs=case("micro_speech").inputs)
    elf = build_project(out, use_platformio=False).elf
    with QemuSession(elf, get_board(BOARD)) as q, \
            DeviceClient(q.url, timeout=0.3, retries=1) as dev:
        with pytest.raises((DeviceTimeoutError, DeviceLinkError)) as info:
            dev.hello(plan_hash(plan))
    assert "HELLO" in str(info.value) or "lost" in str(info.value)


# ============================================================================ QEMU: STM32 USART

@needs_qemu
@pytest.mark.qemu
def test_stm32_usart_on_netduinoplus2(root):
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    board = "qemu_netduinoplus2"
    c = case("micro_speech")
    plan, project, elf = protocol_project(root, "micro_speech", board)
    with QemuSession(elf, get_board(board)) as q:
        res = validate(project, q.url, c.inputs, c.labels, progress=False)
    assert res.device["board"] == board and res.device["cycles_unit"] == "systick_ticks"
    assert res.device["cpu_hz"] == 168_000_000
    assert res.exact == len(c.inputs[0]) == res.layers_exact
    print("\n" + res.summary())


# ============================================================================ ternary configurations

@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("name", MODELS)
def test_validate_ternary_configuration(root, name):
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    from ternembed.quantize.plan_pass import ternarize_plan
    from ternembed.quantize.policy import TernaryConfig
    c = case(name)
    plan = lower(read(c.model))
    tplan, _ = ternarize_plan(plan, TernaryConfig())
    if all(a is b for a, b in zip(tplan.steps, plan.steps)):
        # micro_speech: its only MAC layers are the first and the last (int8 by default)
        tplan, _ = ternarize_plan(plan, TernaryConfig(first_last="ternary", depthwise="ternary"))
    kernels = {s.kernel for s in tplan.steps}
    assert any("_t2_" in k for k in kernels), kernels
    missing = kernels - set(supported_kernels())
    if missing:
        pytest.skip(f"no C emitter yet for {', '.join(sorted(missing))} (ternary kernels)")
    _, project, elf = protocol_project(root, name + "_ternary", plan=tplan)
    with QemuSession(elf, get_board(BOARD)) as q:
        res = validate(project, q.url, c.inputs, c.labels, progress=False, invoke_timeout=60)
    assert res.exact == len(c.inputs[0]) == res.layers_exact


# ============================================================================ CLI commands

def _cli(argv: list[str]) -> int:
    from ternembed.device.commands import add_device_commands
    p = argparse.ArgumentParser(prog="ternembed")
    add_device_commands(p.add_subparsers(dest="command"))
    args = p.parse_args(argv)
    return args.func(args)


def test_cli_boards_json(capsys):
    assert _cli(["boards", "--json"]) == 0
    boards = json.loads(capsys.readouterr().out)
    assert {b["name"] for b in boards} >= {"qemu_mps2_an386", "qemu_netduinoplus2", "nucleo_l4r5zi"}


@needs_qemu
@pytest.mark.qemu
def test_cli_run_validate_bench_flash(root, capsys):
    from ternembed.device.commands import FlashError
    from ternembed.device.run import running
    from ternembed.errors import TernembedError
    c = case("micro_speech")
    _, project, _ = protocol_project(root, "micro_speech")
    data = root / "ms.npz"
    np.savez(data, x=c.inputs[0], y=c.labels)

    assert _cli(["validate", str(project), "--qemu", "--no-build", "--data", str(data), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["agreement"]["rate"] == 1.0 and doc["status"] == "complete"
    assert json.loads((project / "validate.json").read_text())["samples_done"] == len(c.labels)

    assert _cli(["run", str(project), "--detach", "--no-build", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    try:
        assert info["url"].startswith("socket://127.0.0.1:") and running(project)
        # validate and then bench on the same emulator (QEMU accepts the next client)
        assert _cli(["validate", str(project), "--data", str(data), "-q"]) == 0
        assert "4/4 samples bit-exact" in capsys.readouterr().out
        assert _cli(["bench", str(project), "--runs", "3", "-q", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["output_exact"] and Path(doc["files"]["png"]).is_file()
    finally:
        assert _cli(["run", str(project), "--stop"]) == 0
    assert running(project) is None

    with pytest.raises(FlashError, match="emulated"):
        _cli(["flash", str(project)])
    with pytest.raises(TernembedError, match="no serial port"):
        _cli(["validate", str(project), "--data", str(data)])


# ============================================================================ every board

@needs_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("board", ["qemu_mps2_an500", "qemu_mps2_an505"])
def test_protocol_on_other_emulated_cores(root, board):
    """Cortex-M7 and Cortex-M33 (Secure) builds of the same protocol firmware."""
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import validate
    c = case("micro_speech")
    _, project, elf = protocol_project(root, "micro_speech", board)
    with QemuSession(elf, get_board(board)) as q:
        res = validate(project, q.url, [c.inputs[0][:2]], c.labels[:2], progress=False)
    assert res.device["board"] == board and res.exact == 2 == res.layers_exact


@needs_qemu
def test_protocol_firmware_builds_for_real_boards_with_werror(root):
    """The protocol main and te_protocol.c compile warning-free (-Werror) for every Nucleo."""
    import subprocess
    if shutil.which("make") is None:
        pytest.skip("make not found")
    _, project, _ = protocol_project(root, "micro_speech")
    real = [b.name for b in list_boards() if not b.emulated]
    for board in real:
        proc = subprocess.run(["make", "-C", str(project), f"BOARD={board}", "-j4"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{board}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        assert (project / "build" / board / "firmware.elf").is_file()


@needs_qemu
@pytest.mark.qemu
def test_mismatch_names_first_diverging_layer_and_dumps_it(root):
    """Firmware whose layer-2 bias was tampered with after export (same plan hash): validate
    reports the samples as not bit-exact, names layer 2 from the checksums, and the dump of
    layer 2 differs from the emulator's where the bias changed."""
    import re
    import subprocess

    from ternembed.device.qemu import QemuSession
    from ternembed.device.firmware import export_protocol_project
    from ternembed.device.validate import validate
    c = case("micro_speech")
    plan = lower(read(c.model))
    project = root / "tampered_ms"
    export_protocol_project(plan, BOARD, project)
    t = next(k for k, s in enumerate(plan.steps) if s.kernel == "fc_s8")
    model_c = project / "src" / "model.c"
    text, n = re.subn(rf"(tec_{t}_bias\[\d+\] TE_CONST_ALIGN = \{{\s*)(-?\d+)",
                      lambda m: m.group(1) + str(int(m.group(2)) + 50000), model_c.read_text(),
                      count=1)
    assert n == 1
    model_c.write_text(text)
    proc = subprocess.run(["make", "-C", str(project), f"BOARD={BOARD}", "-j4"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = root / "tampered.json"
    with QemuSession(project / "build" / BOARD / "firmware.elf", get_board(BOARD)) as q:
        res = validate(project, q.url, c.inputs, c.labels, out_json=report, progress=False)
    assert res.status == "complete" and res.layers_exact == 0 and res.mismatches
    first = res.mismatches[0]["first_diverging_layer"]
    assert first["index"] == t and first["kernel"] == "fc_s8"
    assert first["differing_elements"] >= 1 and first["first_element"] == 0
    assert first["device_value"] != first["emulator_value"]
    with np.load(first["dump_file"]) as z:
        assert z["device"].shape == z["emulator"].shape and (z["device"] != z["emulator"]).any()
    doc = json.loads(report.read_text())
    assert doc["agreement"]["layers_bit_exact"] == 0
    assert f"first diverging layer {t}" in res.summary()


def test_flash_resolves_a_relative_project_path(tmp_path, monkeypatch):
    """`ternembed flash out/model` from the folder above: PlatformIO gets the project as an absolute
    -d (it runs inside the project), and its own error line is what the user sees."""
    from ternembed.pipeline import export_model
    export_model(ROOT / "examples" / "digits" / "digits_int8.tflite", "nucleo", tmp_path / "out" / "model",
                 ternary=False)
    fake = tmp_path / "bin"
    fake.mkdir()
    # Stands in for PlatformIO (no board here): records how it was called, fails like a missing probe.
    (fake / "pio").write_text("#!/bin/sh\necho \"$PWD|$*\" > \"$TE_PIO_LOG\"\n"
                              "echo 'Error: Please specify upload_port for environment or use global "
                              "--upload-port option.'\nexit 1\n")
    (fake / "pio").chmod(0o755)
    log = tmp_path / "pio.log"
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    monkeypatch.setenv("TE_PIO_LOG", str(log))
    proc = subprocess.run([sys.executable, "-m", "ternembed", "flash", "out/model", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "Please specify upload_port" in proc.stderr, proc.stderr
    cwd, args = log.read_text().strip().split("|")
    project = str((tmp_path / "out" / "model").resolve())
    assert Path(cwd).resolve() == Path(project) and f"-d {project}" in args.replace(str(tmp_path), str(tmp_path.resolve()))


@needs_qemu
@pytest.mark.qemu
def test_float_input_travels_as_int8_and_stays_bit_exact(root):
    """A float model whose first op quantizes: the link carries the int8 values (LOAD_INPUT_Q, a
    quarter of the bytes), the device expands them to floats that quantize back to the same int8,
    and every output and layer checksum still equals the emulator's."""
    from shared_data import MODELS, ad_windows
    from ternembed.calibrate import quantize_graph
    from ternembed.device.qemu import QemuSession
    from ternembed.device.validate import int8_forms, validate
    path = MODELS / "mlperf_ad/ad01_fp32.tflite"
    x = ad_windows()
    plan = lower(quantize_graph(read(path), path, [x]))
    assert plan.buffers[plan.inputs[0]].dtype == "float32"
    back, forms = int8_forms(plan, [x[:6]])
    assert forms[0] is not None and back[0].dtype == np.float32
    assert np.array_equal(emulate.run(plan, back)[0], emulate.run(plan, [x[:6]])[0])
    _, project, elf = protocol_project(root, "ad01_fp32", plan=plan)
    with QemuSession(elf, get_board(BOARD)) as q:
        res = validate(project, q.url, [x[:6]], progress=False)
    assert res.exact == res.layers_exact == 6 and not res.mismatches
    float_bytes = 6 * plan.buffers[plan.inputs[0]].nbytes
    assert res.link["bytes_sent"] < float_bytes / 2, res.link  # int8 on the wire, not float32


def test_int8_form_falls_back_to_floats_on_older_firmware():
    """A firmware from before LOAD_INPUT_Q answers `unknown command`: the sample goes as floats."""
    from ternembed.device.client import DeviceCommandError
    from ternembed.device.validate import load_sample
    from ternembed.kernels.misc import prepare_quantize

    class OldFirmware:
        sent = []

        def load_input_q(self, *a):
            raise DeviceCommandError("unknown", P.ERR_UNKNOWN_COMMAND)

        def load_input(self, data, index):
            self.sent.append((index, data))

    class Plan1:
        inputs = [0]
        buffers = [argparse.Namespace(dtype="float32")]

    x = np.array([[0.5, -1.0]], dtype=np.float32)
    forms = [(np.array([[1, -2]], dtype=np.int8), prepare_quantize(0.5, 0))]
    dev = OldFirmware()
    assert load_sample(dev, Plan1, [x], forms, 0) == [x[0].tobytes()]
    assert dev.sent == [(0, x[0].tobytes())] and forms == [None]  # floats from now on
