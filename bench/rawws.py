"""Fan-out subscribers that speak RFC 6455 by hand (``bench/fanout.py --client raw``).

A subscriber only reads: the frames the server sends are unmasked and, in these
benchmarks, small and unfragmented, so one ``asyncio.Protocol`` parses them in place from
``data_received`` with no task, queue or future per frame. It answers pings and close
frames as RFC 6455 requires, so every server sees a well-behaved peer. Clients and servers
share the machine's cores, and with the ``websockets`` client (a reader task woken per
frame) the readers, not the servers, set the fan-out tail: L's own p99 at 5,000
subscribers fell from about 280 to 175-190 ms with this client (``bench/README.md``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
OPEN_TIMEOUT = 30.0  # seconds to connect, and then to be ready
CLOSE_TIMEOUT = 2.0  # seconds for the server to answer a close
MESSAGE = re.compile(rb'"type":\s*"message"')
SENT = re.compile(rb'"sent":\s*([0-9.eE+-]+)')


def sent_time(frame: bytes) -> float | None:
    """The payload's send time if ``frame`` is a message frame, found in the raw bytes."""
    if MESSAGE.search(frame) is None:
        return None
    found = SENT.search(frame)
    return float(found.group(1)) if found else None


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final frame, masked as a client must (RFC 6455 §5.3)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, 0x80 | size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    mask = os.urandom(4)
    stream = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return head + mask + masked


@dataclass
class Tally:
    """What one client process's subscribers received."""

    messages: int  # M: a socket is complete once it has this many message frames
    latencies: array[float] = field(default_factory=lambda: array("d"))
    received: int = 0
    complete: int = 0
    first: float = float("inf")
    last: float = 0.0

    def result(self, sockets: int) -> dict[str, Any]:
        return {"received": self.received, "complete": self.complete, "sockets": sockets,
                "first": self.first, "last": self.last, "latencies": self.latencies}


class Subscriber(asyncio.Protocol):
    """One socket: the opening handshake, then frames until the close."""

    def __init__(self, request: bytes, key: bytes, subscribe: bytes | None,
                 ready: Callable[[dict[str, Any]], bool], tally: Tally) -> None:
        self.request, self.subscribe, self.ready_when, self.tally = request, subscribe, ready, tally
        self.accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[dict[str, Any]] = loop.create_future()  # the reply that made it ready
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.counting = False  # set by the benchmark once every socket is ready
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (TCP)
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            buffer = self._upgrade(buffer)
        self.buffer = self._frames(buffer) if self.upgraded else buffer

    def send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(opcode, payload))

    def _upgrade(self, buffer: bytes) -> bytes:
        head, found, rest = buffer.partition(b"\r\n\r\n")
        if not found:
            return buffer
        lines = head.split(b"\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        if not lines[0].startswith(b"HTTP/1.1 101") or headers.get(b"sec-websocket-accept") != self.accept:
            self._fail(f"upgrade refused: {lines[0][:80]!r}")
            return b""
        self.upgraded = True
        if self.subscribe is not None:
            self.send(TEXT, self.subscribe)
        return rest

    def _frames(self, buffer: bytes) -> bytes:
        pos, end = 0, len(buffer)
        while end - pos >= 2:
            first, size = buffer[pos], buffer[pos + 1]
            if size & 0x80:
                self._fail("the server masked a frame")
                return b""
            head = 2
            if size == 126:
                head, size = 4, int.from_bytes(buffer[pos + 2:pos + 4], "big")
            elif size == 127:
                head, size = 10, int.from_bytes(buffer[pos + 2:pos + 10], "big")
            stop = pos + head + size
            if end - pos < head or stop > end:
                break
            self._frame(first & 0x0F, buffer[pos + head:stop])
            pos = stop
        return buffer[pos:]

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode == TEXT and self.counting:
            self._count(payload)
        elif opcode == TEXT and not self.ready.done():
            reply = json.loads(payload)
            if self.ready_when(reply):
                self.ready.set_result(reply)
        elif opcode == PING:
            self.send(PONG, payload)
        elif opcode == CLOSE:
            self.send(CLOSE, payload[:2])
            if self.transport is not None:
                self.transport.close()

    def _count(self, payload: bytes) -> None:
        sent = sent_time(payload)
        if sent is None or self.got >= self.tally.messages:
            return
        now = time.time()
        tally = self.tally
        tally.latencies.append(now - sent)
        tally.received += 1
        tally.first = min(tally.first, now)
        tally.last = now
        self.got += 1
        tally.complete += self.got == tally.messages

    def _fail(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()

    async def close(self) -> None:
        """Send a close frame, wait for the server to close, then drop the connection."""
        self.send(CLOSE, (1000).to_bytes(2, "big"))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()


async def open_subscriber(url: str, headers: dict[str, str], subscribe: bytes | None,
                          ready: Callable[[dict[str, Any]], bool], tally: Tally,
                          source: str, kind: type[Subscriber] = Subscriber
                          ) -> tuple[Subscriber, dict[str, Any]]:
    """Connect from ``source``, upgrade, send ``subscribe`` (if any) and wait for the reply
    that ``ready`` accepts; returns the subscriber (a ``kind``) and that reply."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    key = base64.b64encode(os.urandom(16))
    lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}",
             "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(loop.create_connection(
        lambda: kind(request, key, subscribe, ready, tally), host, port,
        local_addr=(source, 0)), OPEN_TIMEOUT)
    try:
        reply = await asyncio.wait_for(asyncio.shield(protocol.ready), OPEN_TIMEOUT)
    except BaseException:
        if protocol.transport is not None:
            protocol.transport.abort()
        raise
    return protocol, reply

