# SPDX-License-Identifier: Apache-2.0
"""DeviceClient: talk to a ternembed protocol firmware over a serial port (docs/protocol.md).

    with DeviceClient("socket://127.0.0.1:4321") as dev:     # or "/dev/ttyACM0", "COM5"
        info = dev.hello(plan_hash)                          # refuses firmware for another model
        dev.load_input(x_bytes)
        r = dev.invoke(checksums=True)
        y = dev.read_output(0)
        cycles = dev.layer_cycles()

Every request is one frame and gets one reply frame. A reply that does not arrive in time,
arrives damaged (bad COBS/CRC) or a NAK (the device got our frame damaged) makes the client
send the same frame again, with the same sequence number; the firmware answers a repeated
request from its reply cache without executing it twice. Replies to older sequence numbers
(late duplicates) are skipped. After ``retries`` failed attempts a DeviceTimeoutError (or
DeviceLinkError if the port closed) says which reply was expected from which port.
Counters of everything that went wrong are in ``client.stats``.
"""
from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass, field

from ..errors import TernembedError
from . import protocol as P


class DeviceError(TernembedError):
    """Talking to the device failed."""


class DeviceLinkError(DeviceError):
    """The serial port cannot be opened, or the link was lost (port closed, QEMU gone)."""


class DeviceTimeoutError(DeviceError):
    """The device did not answer (in time, or undamaged) after every retry."""


class DeviceCommandError(DeviceError):
    """The device answered with an ERROR frame."""

    def __init__(self, message: str, code: int = 0, device_message: str = ""):
        super().__init__(message)
        self.code = code
        self.device_message = device_message


class ModelMismatchError(DeviceCommandError):
    """The firmware on the device was built from another model (its hash differs)."""


@dataclass
class LinkStats:
    requests: int = 0
    retries: int = 0  # frames sent again
    timeouts: int = 0  # waits that ended without the reply
    naks: int = 0  # the device reported a damaged request
    corrupt_replies: int = 0  # replies with bad COBS or CRC
    stale_replies: int = 0  # replies to an older sequence number
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds_sending: float = 0.0
    events: list[str] = field(default_factory=list)  # the last few problems, for reports

    def note(self, what: str) -> None:
        self.events.append(what)
        del self.events[:-20]

    def to_dict(self) -> dict:
        return dict(vars(self))


def open_serial(port: str, baudrate: int = 115200):
    """A pyserial object for a device path (/dev/ttyACM0, COM5) or URL (socket://host:port)."""
    try:
        import serial  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - a dependency
        raise DeviceLinkError("pyserial is not installed: pip install pyserial") from exc
    try:
        return serial.serial_for_url(port, baudrate=baudrate, timeout=0.05, write_timeout=10)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise DeviceLinkError(f"cannot open serial port {port!r}: {exc}") from None


class DeviceClient:
    """A session with a protocol firmware (see the module docstring)."""

    def __init__(self, port: str | None = None, *, serial=None, baudrate: int = 115200,
                 timeout: float = 2.0, invoke_timeout: float = 120.0, retries: int = 6,
                 max_payload: int | None = None):
        if serial is None and port is None:
            raise ValueError("give a port (device path or pyserial URL) or an open serial object")
        self.port = port or getattr(serial, "port", None) or "<serial>"
        self.ser = serial if serial is not None else open_serial(port, baudrate)
        self.timeout = float(timeout)
        self.invoke_timeout = float(invoke_timeout)
        self.retries = int(retries)
        self.stats = LinkStats()
        self.info: P.HelloInfo | None = None
        self._seq = random.randrange(256)
        self._reader = P.FrameReader()
        self._host_max_payload = max_payload
        self._chunk: int | None = None  # current chunk payload size (shrinks on a noisy link)
        self._good_streak = 0
        self._invoke_seconds = 0.0  # longest INVOKE seen (wall time), for adaptive timeouts

    # ---- context manager
    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:  # noqa: BLE001 - closing a dead link must not raise
            pass

    def __enter__(self) -> "DeviceClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the link
    @property
    def max_payload(self) -> int:
        dev = self.info.max_payload if self.info else P.DEFAULT_MAX_PAYLOAD
        return min(dev, self._host_max_payload or dev)

    def _write(self, data: bytes) -> None:
        import serial  # noqa: PLC0415
        t = time.monotonic()
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise DeviceLinkError(f"serial link {self.port} lost while sending: {exc}") from None
        self.stats.bytes_sent += len(data)
        self.stats.seconds_sending += time.monotonic() - t

    def _read_some(self, wait: float) -> bytes:
        import serial  # noqa: PLC0415
        try:
            self.ser.timeout = max(0.001, min(wait, 0.1))
            data = self.ser.read(1)
            if data:
                n = self.ser.in_waiting
                if n:
                    data += self.ser.read(n)
        except (serial.SerialException, OSError) as exc:
            raise DeviceLinkError(f"serial link {self.port} lost: {exc}") from None
        self.stats.bytes_received += len(data)
        return data

    def _transact(self, ftype: int, payload: bytes = b"", timeout: float | None = None,
                  attempts: int | None = None) -> P.Frame:
        name = P.COMMAND_NAMES.get(ftype, f"0x{ftype:02X}")
        if len(payload) > self.max_payload:
            raise ValueError(f"{name} payload of {len(payload)} bytes exceeds {self.max_payload}")
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        frame = P.encode_frame(ftype, seq, payload)
        wait = self.timeout if timeout is None else timeout
        self.stats.requests += 1
        last_problem = "no reply"
        attempts = self.retries + 1 if attempts is None else attempts
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                self._good_streak = 0
            self._write(frame)
            deadline = time.monotonic() + wait
            resend = False
            while not resend:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.stats.timeouts += 1
                    last_problem = f"no reply within {wait:g} s"
                    self.stats.note(f"{name} seq {seq}: timeout")
                    break
                for enc in self._reader.feed(self._read_some(left)):
                    try:
                        f = P.decode_frame(enc)
                    except P.FrameError as exc:
                        self.stats.corrupt_replies += 1
                        self.stats.note(f"{name} seq {seq}: damaged reply ({exc})")
                        last_problem = f"damaged reply ({exc})"
                        resend = True
                        continue
                    if f.type == P.NAK:
                        self.stats.naks += 1
                        reason = P.NAK_NAMES.get(f.payload[0] if f.payload else 0, "?")
                        self.stats.note(f"{name} seq {seq}: NAK ({reason})")
                        last_problem = f"the device received our frame damaged ({reason})"
                        resend = True
                        continue
                    if f.seq != seq:
                        self.stats.stale_replies += 1
                        continue
                    if f.type == P.ERROR:
                        self._raise_error(name, f.payload)
                    if f.type == ftype | P.REPLY_BIT:
                        self._good_streak += 1
                        return f
                    self.stats.stale_replies += 1
        raise DeviceTimeoutError(
            f"no valid {name} reply from {self.port} after {attempts} attempts "
            f"({last_problem}); expected a {name} reply frame (type 0x{ftype | P.REPLY_BIT:02X}, "
            f"seq {seq}). Is the protocol firmware running there (not the self-test), and is "
            "it the right port?")

    def _raise_error(self, name: str, payload: bytes):
        code, _req, msg = P.parse_error(payload)
        what = P.ERROR_NAMES.get(code, f"error {code}")
        if code == P.ERR_MODEL_MISMATCH:
            raise ModelMismatchError(f"{self.port}: {msg}", code, msg)
        raise DeviceCommandError(f"{self.port}: {name} failed: {what}: {msg}", code, msg)

    # ---- chunked transfers: big frames on a noisy link rarely arrive whole, so the chunk
    # size halves (down to MIN_CHUNK) when one keeps failing, and doubles again after a run
    # of clean replies.
    MIN_CHUNK = 64

    def _chunk_size(self, header: int) -> int:
        full = self.max_payload - header
        if self._chunk is None:
            self._chunk = full
        elif self._good_streak >= 16 and self._chunk < full:
            self._chunk = min(full, self._chunk * 2)
            self._good_streak = 0
        return max(1, min(self._chunk, full))

    def _chunk_transact(self, ftype: int, payload: bytes, n: int, timeout: float | None = None):
        """One chunk request of ``n`` data bytes; None if it failed and the chunk shrank."""
        if n <= self.MIN_CHUNK:
            return self._transact(ftype, payload, timeout)
        try:
            return self._transact(ftype, payload, timeout, attempts=3)
        except DeviceTimeoutError:
            self._chunk = max(self.MIN_CHUNK, n // 2)
            self.stats.note(f"{P.COMMAND_NAMES[ftype]}: chunk size down to {self._chunk} bytes")
            return None

    # ---- commands
    def hello(self, expected_hash: str | None = None) -> P.HelloInfo:
        """Identify the firmware. With ``expected_hash`` (hex sha256 of the Plan), bind the
        session to it: a firmware built for another model answers ModelMismatchError."""
        try:
            f = self._transact(P.HELLO, P.hello_request(expected_hash))
        except ModelMismatchError as exc:
            raise ModelMismatchError(
                f"the device on {self.port} runs firmware for another model: "
                f"{exc.device_message}; the host's plan has hash {expected_hash}. Export and "
                "flash (or run) the firmware of this model, or validate with the model the "
                "firmware was built from.", exc.code, exc.device_message) from None
        self.info = P.parse_hello(f.payload)
        if self.info.protocol_version != P.PROTOCOL_VERSION:
            raise DeviceError(f"{self.port}: the firmware speaks protocol version "
                              f"{self.info.protocol_version}, this host version "
                              f"{P.PROTOCOL_VERSION}; re-export the firmware with this ternembed")
        return self.info

    def _need_info(self) -> P.HelloInfo:
        if self.info is None:
            raise DeviceError("call hello() first")
        return self.info

    def load_input(self, data: bytes | list[bytes], index: int = 0) -> None:
        """Send one input's bytes (or a list: every input in order), in chunks."""
        if isinstance(data, (list, tuple)):
            for k, d in enumerate(data):
                self.load_input(d, k)
            return
        info = self._need_info()
        data = bytes(data)
        want = info.inputs[index].nbytes
        if len(data) != want:
            raise DeviceError(f"input {index} must be {want} bytes, got {len(data)}")
        self._send_chunks(P.LOAD_INPUT, data, 5, lambda off, part: P.load_input_request(index, off, part))

    def load_input_q(self, q: bytes, scale: float, zero_point: int, index: int = 0) -> None:
        """Send a float32 input as its int8 values ``q``; the device stores (q - zero_point) *
        scale in float32 (LOAD_INPUT_Q). A quarter of the bytes of load_input()."""
        info = self._need_info()
        want = info.inputs[index]
        if want.dtype != "float32" or len(q) * 4 != want.nbytes:
            raise DeviceError(f"input {index} is {want.nbytes} bytes of {want.dtype}: not "
                              f"{len(q)} float32 values")
        self._send_chunks(P.LOAD_INPUT_Q, bytes(q), 13,
                          lambda off, part: P.load_input_q_request(index, off, scale, zero_point, part))

    def _send_chunks(self, ftype: int, data: bytes, header: int, request) -> None:
        """``data`` in chunks; each reply acknowledges the end offset of its chunk."""
        off = 0
        while off < len(data):
            part = data[off:off + self._chunk_size(header)]
            f = self._chunk_transact(ftype, request(off, part), len(part))
            if f is None:
                continue
            (end,) = struct.unpack_from("<I", f.payload, 0)
            if end != off + len(part):
                raise DeviceError(f"{P.COMMAND_NAMES[ftype]} acknowledged up to {end}, expected "
                                  f"{off + len(part)}")
            off = end

    def _dynamic_timeout(self) -> float:
        if self._invoke_seconds <= 0:
            return self.invoke_timeout
        return min(self.invoke_timeout, max(self.timeout, 4 * self._invoke_seconds + 1.0))

    def reset_state(self) -> None:
        """Put a streaming model's variables back to their initial values (RESET_STATE)."""
        self._transact(P.RESET_STATE, b"", self.timeout)

    def invoke(self, checksums: bool = False) -> P.InvokeResult:
        """Run the model on the loaded input; per-layer checksums with ``checksums``."""
        t = time.monotonic()
        f = self._transact(P.INVOKE, P.invoke_request(checksums), self._dynamic_timeout())
        self._invoke_seconds = max(self._invoke_seconds, time.monotonic() - t)
        return P.parse_invoke(f.payload)

    def read_output(self, index: int = 0) -> bytes:
        info = self._need_info()
        total = info.outputs[index].nbytes
        out = bytearray()
        while len(out) < total:
            n = min(self._chunk_size(4), total - len(out))
            f = self._chunk_transact(P.READ_OUTPUT, P.read_output_request(index, len(out), n), n)
            if f is None:
                continue
            off, data = P.parse_chunk(f.payload)
            if off != len(out) or len(data) != n:
                raise DeviceError(f"READ_OUTPUT returned bytes {off}..{off + len(data)}, "
                                  f"asked for {len(out)}..{len(out) + n}")
            out += data
        return bytes(out)

    def read_outputs(self) -> list[bytes]:
        return [self.read_output(k) for k in range(len(self._need_info().outputs))]

    def _read_table(self, ftype: int) -> list[int]:
        info = self._need_info()
        values: list[int] = []
        while len(values) < info.layer_count:
            n = min(max(1, self._chunk_size(2) // 4), info.layer_count - len(values))
            f = self._chunk_transact(ftype, P.layer_range_request(len(values), n), 4 * n)
            if f is None:
                continue
            first, vals = P.parse_u32_table(f.payload)
            if first != len(values) or len(vals) != n:
                raise DeviceError(f"{P.COMMAND_NAMES[ftype]} returned layers {first}.."
                                  f"{first + len(vals)}, asked for {len(values)}..{len(values) + n}")
            values += vals
        return values

    def layer_cycles(self) -> list[int]:
        """Per-layer counts of the last INVOKE (counter ticks; they sum to its total)."""
        return self._read_table(P.READ_LAYER_CYCLES)

    def layer_checksums(self) -> list[int]:
        """CRC-32 of every layer's output in the last INVOKE (which needs checksums=True)."""
        return self._read_table(P.READ_LAYER_CHECKSUMS)

    def dump_layer(self, layer: int) -> bytes:
        """The output bytes of one layer for the loaded input (the device re-runs the model
        once per chunk: the arena reuses a layer's bytes after it)."""
        self._need_info()
        out = bytearray()
        total = None
        while total is None or len(out) < total:
            n = self._chunk_size(10) if total is None else min(self._chunk_size(10), total - len(out))
            f = self._chunk_transact(P.DUMP_LAYER, P.dump_layer_request(layer, len(out), n), n,
                                     self._dynamic_timeout())
            if f is None:
                continue
            lay, off, size, data = P.parse_dump(f.payload)
            want = min(n, size - len(out))
            if lay != layer or off != len(out) or len(data) != want:
                raise DeviceError(f"DUMP_LAYER returned layer {lay} bytes {off}..{off + len(data)}, "
                                  f"asked for layer {layer} bytes {len(out)}..{len(out) + want}")
            total = size
            out += data
        return bytes(out)
