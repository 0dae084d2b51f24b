# SPDX-License-Identifier: Apache-2.0
"""The ternembed serial protocol, host side: framing (COBS + CRC32) and message layouts.

The specification is docs/protocol.md; the firmware side is firmware/protocol/te_protocol.c.
This module is pure (no I/O): it builds and parses frames and payloads, so it can be tested
without a device and shared by the client, the tests' fault-injecting proxy and tools.

Frame on the wire: ``00 | COBS(type, seq, payload..., crc32 LE) | 00``. The CRC is the IEEE
CRC-32 (zlib.crc32) of type, seq and payload. Empty frames (two delimiters in a row) are
ignored by both sides.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

PROTOCOL_VERSION = 1
DEFAULT_MAX_PAYLOAD = 1024  # the firmware announces its own limit in HELLO

# ---- message types -------------------------------------------------------------------------
HELLO = 0x01
LOAD_INPUT = 0x02
INVOKE = 0x03
READ_OUTPUT = 0x04
READ_LAYER_CYCLES = 0x05
READ_LAYER_CHECKSUMS = 0x06
DUMP_LAYER = 0x07
RESET_STATE = 0x08  # streaming models: the variables back to their initial values
LOAD_INPUT_Q = 0x09  # a float32 input sent as int8 q; stored as (q - zero_point) * scale
REPLY_BIT = 0x80  # a successful reply has the request's type | 0x80
ERROR = 0xFE
NAK = 0xFF

COMMAND_NAMES = {HELLO: "HELLO", LOAD_INPUT: "LOAD_INPUT", INVOKE: "INVOKE",
                 READ_OUTPUT: "READ_OUTPUT", READ_LAYER_CYCLES: "READ_LAYER_CYCLES",
                 READ_LAYER_CHECKSUMS: "READ_LAYER_CHECKSUMS", DUMP_LAYER: "DUMP_LAYER",
                 RESET_STATE: "RESET_STATE", LOAD_INPUT_Q: "LOAD_INPUT_Q",
                 ERROR: "ERROR", NAK: "NAK"}

# INVOKE flags
INVOKE_CHECKSUMS = 0x01  # compute a CRC32 of every layer's output (time excluded from cycles)

# ERROR codes (payload: code, request type, message)
ERR_UNKNOWN_COMMAND = 1
ERR_BAD_LENGTH = 2
ERR_OUT_OF_RANGE = 3
ERR_NOT_BOUND = 4
ERR_MODEL_MISMATCH = 5
ERR_NO_RESULT = 6
ERR_INVOKE_FAILED = 7
ERROR_NAMES = {ERR_UNKNOWN_COMMAND: "unknown command", ERR_BAD_LENGTH: "bad payload length",
               ERR_OUT_OF_RANGE: "index or range out of bounds",
               ERR_NOT_BOUND: "no HELLO with the model hash yet",
               ERR_MODEL_MISMATCH: "model hash mismatch", ERR_NO_RESULT: "no result to read",
               ERR_INVOKE_FAILED: "the model invocation failed"}

# NAK reasons (payload: reason)
NAK_BAD_CRC = 1
NAK_BAD_COBS = 2
NAK_TOO_LONG = 3
NAK_TOO_SHORT = 4
NAK_NAMES = {NAK_BAD_CRC: "bad CRC", NAK_BAD_COBS: "bad COBS encoding",
             NAK_TOO_LONG: "frame too long", NAK_TOO_SHORT: "frame too short"}

DTYPE_NAMES = {0: "int8", 1: "float32", 2: "int16", 3: "int32", 4: "uint8"}


class FrameError(ValueError):
    """A received frame is malformed (bad COBS, too short or bad CRC)."""


# ---- CRC and COBS ----------------------------------------------------------------------------

def crc32(data: bytes, value: int = 0) -> int:
    """IEEE 802.3 CRC-32 (the one zlib, PNG and Ethernet use); te_crc32() in C."""
    return zlib.crc32(data, value) & 0xFFFFFFFF


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result has no zero bytes (<= 1 + n/254 overhead)."""
    out = bytearray(b"\x00")
    code_at, code = 0, 1
    for b in bytes(data):
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; FrameError on a zero byte or a block running past the end."""
    out = bytearray()
    k, n = 0, len(data)
    while k < n:
        code = data[k]
        end = k + code
        if code == 0 or end > n:
            raise FrameError("bad COBS encoding")
        block = data[k + 1:end]
        if 0 in block:
            raise FrameError("bad COBS encoding")
        out += block
        k = end
        if code < 0xFF and k < n:
            out.append(0)
    return bytes(out)


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    """The bytes to send: 00, COBS(type, seq, payload, CRC32 LE), 00."""
    body = bytes((ftype & 0xFF, seq & 0xFF)) + bytes(payload)
    body += struct.pack("<I", crc32(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


@dataclass
class Frame:
    type: int
    seq: int
    payload: bytes

    @property
    def name(self) -> str:
        base = self.type & ~REPLY_BIT if self.type not in (ERROR, NAK) else self.type
        return COMMAND_NAMES.get(base, f"0x{self.type:02X}") + (
            " reply" if self.type & REPLY_BIT and self.type not in (ERROR, NAK) else "")


def decode_frame(encoded: bytes) -> Frame:
    """A frame from the bytes between two delimiters (FrameError if damaged)."""
    body = cobs_decode(encoded)
    if len(body) < 6:
        raise FrameError(f"frame of {len(body)} bytes is shorter than type+seq+CRC")
    (want,) = struct.unpack_from("<I", body, len(body) - 4)
    if crc32(body[:-4]) != want:
        raise FrameError("bad CRC")
    return Frame(body[0], body[1], bytes(body[2:-4]))


class FrameReader:
    """Splits a byte stream into frames at 00 delimiters (incremental; bounded length)."""

    def __init__(self, max_encoded: int = 65536):
        self.buf = bytearray()
        self.max_encoded = max_encoded
        self.overflowed = False

    def feed(self, data: bytes) -> list[bytes]:
        """Encoded frames completed by ``data`` (without delimiters; empty ones dropped)."""
        frames = []
        data = bytes(data)
        start = 0
        while True:
            z = data.find(b"\x00", start)
            if z < 0:
                self._append(data[start:])
                break
            self._append(data[start:z])
            if self.buf and not self.overflowed:
                frames.append(bytes(self.buf))
            self.buf.clear()
            self.overflowed = False
            start = z + 1
        return frames

    def _append(self, part: bytes) -> None:
        if self.overflowed:
            return
        self.buf += part
        if len(self.buf) > self.max_encoded:
            self.buf.clear()
            self.overflowed = True


# ---- payload layouts -------------------------------------------------------------------------

def _take_str(payload: bytes, pos: int) -> tuple[str, int]:
    n = payload[pos]
    return payload[pos + 1:pos + 1 + n].decode("utf-8", errors="replace"), pos + 1 + n


@dataclass
class TensorSpec:
    nbytes: int
    dtype: str


@dataclass
class HelloInfo:
    """What HELLO returns: the firmware's identity and limits."""

    protocol_version: int
    max_payload: int
    cpu_hz: int
    cycles_hz: int
    arena_bytes: int
    layer_count: int
    model_hash: str  # hex sha256 (ternembed.codegen.plan_hash of the Plan the firmware was built from)
    bound: bool  # the request's hash matched and the session is bound
    emulated: bool
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    board: str = ""
    cycles_unit: str = ""
    model_name: str = ""
    firmware_version: str = ""

    def to_dict(self) -> dict:
        d = dict(vars(self))
        d["inputs"] = [vars(t) for t in self.inputs]
        d["outputs"] = [vars(t) for t in self.outputs]
        return d


HELLO_HEAD = struct.Struct("<HHIIIHBB32sB")


def hello_request(expected_hash: str | None) -> bytes:
    """Empty: ask only. 32 bytes: bind to this model hash (refused if it differs)."""
    return b"" if expected_hash is None else bytes.fromhex(expected_hash)


def parse_hello(payload: bytes) -> HelloInfo:
    (version, max_payload, cpu_hz, cycles_hz, arena, layers, n_in, n_out, digest,
     flags) = HELLO_HEAD.unpack_from(payload, 0)
    pos = HELLO_HEAD.size
    tensors = []
    for _ in range(n_in + n_out):
        nbytes, dtype = struct.unpack_from("<IB", payload, pos)
        tensors.append(TensorSpec(nbytes, DTYPE_NAMES.get(dtype, f"dtype{dtype}")))
        pos += 5
    strings = []
    for _ in range(4):
        s, pos = _take_str(payload, pos)
        strings.append(s)
    return HelloInfo(version, max_payload, cpu_hz, cycles_hz, arena, layers, digest.hex(),
                     bool(flags & 1), bool(flags & 2), tensors[:n_in], tensors[n_in:], *strings)


def load_input_request(index: int, offset: int, data: bytes) -> bytes:
    return struct.pack("<BI", index, offset) + bytes(data)


def load_input_q_request(index: int, offset: int, scale: float, zero_point: int, q: bytes) -> bytes:
    """LOAD_INPUT_Q: ``offset`` counts elements; ``scale`` goes as float32 bits."""
    return struct.pack("<BIfi", index, offset, scale, zero_point) + bytes(q)


def invoke_request(checksums: bool) -> bytes:
    return bytes((INVOKE_CHECKSUMS if checksums else 0,))


@dataclass
class InvokeResult:
    status: int
    flags: int
    layer_count: int
    total_cycles: int  # sum of the per-layer counts (instrumentation excluded)
    overhead_cycles: int  # time spent in checksums and hooks, excluded from the total
    input_crc: int  # CRC32 of the input bytes the model ran on
    output_crc: int  # CRC32 of all outputs, concatenated in order


INVOKE_REPLY = struct.Struct("<BBHIIII")


def parse_invoke(payload: bytes) -> InvokeResult:
    return InvokeResult(*INVOKE_REPLY.unpack_from(payload, 0))


def read_output_request(index: int, offset: int, length: int) -> bytes:
    return struct.pack("<BIH", index, offset, length)


def parse_chunk(payload: bytes) -> tuple[int, bytes]:
    """READ_OUTPUT reply: (offset, data)."""
    (offset,) = struct.unpack_from("<I", payload, 0)
    return offset, payload[4:]


def layer_range_request(first: int, count: int) -> bytes:
    return struct.pack("<HH", first, count)


def parse_u32_table(payload: bytes) -> tuple[int, list[int]]:
    """READ_LAYER_CYCLES / READ_LAYER_CHECKSUMS reply: (first layer, values)."""
    (first,) = struct.unpack_from("<H", payload, 0)
    n = (len(payload) - 2) // 4
    return first, list(struct.unpack_from(f"<{n}I", payload, 2))


def dump_layer_request(layer: int, offset: int, length: int) -> bytes:
    return struct.pack("<HIH", layer, offset, length)


def parse_dump(payload: bytes) -> tuple[int, int, int, bytes]:
    """DUMP_LAYER reply: (layer, offset, layer's total bytes, data)."""
    layer, offset, total = struct.unpack_from("<HII", payload, 0)
    return layer, offset, total, payload[10:]


def parse_error(payload: bytes) -> tuple[int, int, str]:
    """ERROR payload: (code, request type, message)."""
    code = payload[0] if payload else 0
    req = payload[1] if len(payload) > 1 else 0
    return code, req, payload[2:].decode("utf-8", errors="replace")
