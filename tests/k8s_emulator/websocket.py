"""The server side of RFC 6455, as little as `kubectl exec` over the Kubernetes channel protocol needs.

The Python client (websocket-client) offers `v5.channel.k8s.io,v4.channel.k8s.io`; the emulator picks v4,
where every message is one binary frame whose first byte is the channel: 0 stdin (client to server),
1 stdout, 2 stderr, 3 the final Status as JSON. Client frames arrive masked, possibly as text frames, and
may be fragmented; pings are answered; no extensions are negotiated.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUPPORTED_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
STDIN, STDOUT, STDERR, ERROR = 0, 1, 2, 3


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key.strip() + GUID).encode()).digest()).decode()


def choose_protocol(offered: str | None) -> str | None:
    names = [p.strip() for p in (offered or "").split(",") if p.strip()]
    return next((p for p in SUPPORTED_PROTOCOLS if p in names), None)


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A single unmasked, final frame (servers never mask)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


class Connection:
    """A handshaken WebSocket over a request's rfile/wfile. Writes are serialised by a lock because the
    stdout and stderr pumps send from their own threads."""

    def __init__(self, rfile, wfile):
        self.rfile, self.wfile = rfile, wfile
        self._write_lock = threading.Lock()
        self.closed = False

    def _read_exact(self, n: int) -> bytes:
        data = self.rfile.read(n)
        if data is None or len(data) < n:
            raise EOFError("websocket peer went away")
        return data

    def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = self._read_exact(2)
        fin, opcode, masked, n = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8))
        mask = self._read_exact(4) if masked else b"\0\0\0\0"
        payload = self._read_exact(n)
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def receive(self) -> tuple[int, bytes]:
        """The next data message (opcode, payload) or (OP_CLOSE, b"") once the peer closes or leaves."""
        message, first_opcode = b"", None
        while True:
            try:
                fin, opcode, payload = self._read_frame()
            except (EOFError, OSError, ValueError):
                return OP_CLOSE, b""
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                return OP_CLOSE, payload
            first_opcode = opcode if first_opcode is None else first_opcode
            message += payload
            if fin:
                return first_opcode, message

    def send(self, opcode: int, payload: bytes) -> bool:
        with self._write_lock:
            if self.closed:
                return False
            try:
                self.wfile.write(encode_frame(opcode, payload))
                self.wfile.flush()
                return True
            except OSError:
                self.closed = True
                return False

    def send_channel(self, channel: int, data: bytes) -> bool:
        return self.send(OP_BINARY, bytes([channel]) + data)

    def close(self, code: int = 1000) -> None:
        self.send(OP_CLOSE, struct.pack("!H", code))
        with self._write_lock:
            self.closed = True
