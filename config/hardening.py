"""uvicorn protocols with a bounded request head: a size cap (431) and a time limit.

uvicorn 0.54 (httptools, websockets-sansio) has neither: a handshake header line over
websockets' 8 KiB line limit gets no answer and the connection stays open, and a
half-sent request head is never timed out (``--timeout-keep-alive`` only runs between
requests). Both let an unauthenticated client hold connections without bound. So:

- ``HttpToolsProtocol``: in a connection burst, parses request heads within the turn
  budget of ``gateway.handshake.pacing`` (the rest in later turns, in order). It counts
  the bytes of each request head; past
  ``GATEWAY_MAX_HEADER_BYTES`` it answers 431 and closes at once. A head (the first
  one from connection time, later ones from their first byte) not complete within
  ``GATEWAY_HANDSHAKE_TIMEOUT_SECONDS`` gets 408 and the connection closes.
- ``WebSocketProtocol``: a handshake that websockets refuses to parse gets 400 and a
  close instead of silence (``config.serve`` also raises websockets' own line limit to
  the head limit, so a head we admit is not refused there). It also offers the
  ``gateway.write_now`` extension (``gateway.sockets.writenow``): a published message
  is written to each local subscriber at once, without a task per socket. When many
  sockets end together, their ends are handled a bounded number per loop turn
  (``gateway.ops.closegate``): our half of a connection the client half-closed is closed
  in its turn, and so is uvicorn's ``connection_lost``, while the socket counts as
  disconnected at once (no pings, sends raise ``ClientDisconnected``). Its receive
  queue is a ``gateway.api.server.LazyQueue``, not an ``asyncio.Queue`` (memory).

``config.serve`` sets both variables (validated) before uvicorn imports these classes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidState, ProtocolError
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, State

from gateway.api.consumers import audit
from gateway.api.server import WRITE_NOW_EXTENSION as WRITE_NOW
from gateway.api.server import LazyQueue, ended_streams, lost_connections, turns

MAX_HEAD_BYTES = int(os.environ.get("GATEWAY_MAX_HEADER_BYTES", "32768"))
HEAD_TIMEOUT = float(os.environ.get("GATEWAY_HANDSHAKE_TIMEOUT_SECONDS", "5"))


def _answer(status: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")


TOO_LARGE = _answer(b"431 Request Header Fields Too Large")
TIMED_OUT = _answer(b"408 Request Timeout")
BAD_REQUEST = _answer(b"400 Bad Request")


class HttpToolsProtocol(_HttpToolsProtocol):
    head_bytes = 0
    head_done = False
    head_too_large = False  # the last head, once parsed, was over the cap
    head_timer: asyncio.TimerHandle | None = None
    held: list[bytes] | None = None  # head bytes waiting for a turn with room

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.head_done:
            super().data_received(data)
        elif self.held is not None:  # behind a read that waits for its turn
            self.held.append(data)
        else:  # in a connection burst, parse in a later turn (gateway.handshake.pacing)
            self.held = [data]
            turns.run(self._release_held)
            if self.held is not None:
                self.transport.pause_reading()

    def _release_held(self) -> None:
        held, self.held = self.held, None
        if held is None or self.transport.is_closing():
            return
        self.transport.resume_reading()
        try:
            self._read_head(b"".join(held))
        except Exception:  # as asyncio does when data_received raises
            self.transport.close()
            raise

    def _read_head(self, data: bytes) -> None:
        """Parse first, then judge: a read that completes the head may carry body bytes
        (a large POST), and only a head still incomplete past the cap is refused."""
        self.head_bytes += len(data)
        super().data_received(data)
        if not self.head_done and self.head_bytes > MAX_HEAD_BYTES:
            self._refuse(TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_done = False
        if self.head_timer is None:  # a later request on a kept-alive connection
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        """A head over the cap that arrived in one read is judged here, once parsed: its
        request gets 431 and a close, and the application never sees it (an upgrade is
        judged in ``handle_websocket_upgrade``)."""
        self.head_done, self.head_bytes = True, 0
        self._cancel_head_timer()
        self.head_too_large = head_size(self.url, self.headers) > MAX_HEAD_BYTES
        if not self.head_too_large:
            super().on_headers_complete()
            return
        _audit_refused("head_too_large", self.client)
        app, self.app = self.app, _head_too_large
        try:
            super().on_headers_complete()  # an upgrade returns at once, for the next method
        finally:
            self.app = app

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        """Hand the connection and the request this parser read to the websocket protocol
        (uvicorn writes the head out again for websockets to parse a second time, in
        Python: about a tenth of a handshake), then let go of the parser: its callbacks
        are bound to this protocol, a cycle that the collector policy would keep for ever
        once frozen (``gateway.ops.gcpolicy``); uvicorn drops it only in a
        ``connection_lost`` that an upgraded connection never sends here."""
        ws_class = self.ws_protocol_class
        if ws_class is None or not issubclass(ws_class, WebSocketProtocol):
            super().handle_websocket_upgrade()
        elif self.head_too_large:  # judged, and audited, by on_headers_complete
            self.connections.discard(self)
            self._close_with(TOO_LARGE)
        else:
            self.connections.discard(self)
            protocol = ws_class(config=self.config, server_state=self.server_state,
                                app_state=self.app_state)
            protocol.connection_made(self.transport)
            protocol.upgrade(handshake_request(self.scope, self.url))
            self.transport.set_protocol(protocol)
        self._cancel_head_timer()
        self.parser = None  # type: ignore[assignment]
        self.flow = None  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser refuses, audited."""
        _audit_refused("bad_request", self.client, msg)
        super().send_400_response(msg)

    def _arm_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(HEAD_TIMEOUT, self._refuse, TIMED_OUT)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _refuse(self, answer: bytes) -> None:
        if not self.transport.is_closing() and (answer is TOO_LARGE or self.head_bytes):
            # audited unless the connection sent nothing at all: not a request
            _audit_refused("head_too_large" if answer is TOO_LARGE else "head_timeout",
                           self.client)
        self._close_with(answer)

    def _close_with(self, answer: bytes) -> None:
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


def _audit_refused(reason: str, client: tuple[str, int] | None, detail: str | None = None) -> None:
    """A request refused before any application saw it (``docs/errors.md``)."""
    audit("http", "deny", reason, remote=client[0] if client else None, detail=detail)


async def _head_too_large(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 431,
                "headers": [(b"content-length", b"0"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": b""})


def head_size(target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The request head's bytes as sent, give or take the request line's method and
    version: a head that arrived in one read is judged only once it is parsed."""
    return len(target) + sum(len(name) + len(value) + 4 for name, value in headers) + 16


_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")  # RFC 9110 field name
_FIELD_VALUE = re.compile(rb"[\x09\x20-\x7e\x80-\xff]*")  # field value, obs-text allowed


def handshake_request(scope: Any, target: bytes) -> Request | None:
    """The handshake request as websockets' parser (``Request.parse``) would make it from
    the head uvicorn read, or None where that parser refuses: a non-ASCII target, a header
    name or value it does not admit, a body. The head's size is capped before this
    (``GATEWAY_MAX_HEADER_BYTES``); the handshake's own checks (method, version,
    ``Upgrade``, key) follow in websockets' ``accept``."""
    try:
        path = target.decode("ascii")
    except UnicodeDecodeError:
        return None
    headers = Headers()
    for raw_name, raw_value in scope["headers"]:
        value = raw_value.strip(b" \t")
        if not _TOKEN.fullmatch(raw_name) or not _FIELD_VALUE.fullmatch(value):
            return None
        headers[raw_name.decode("ascii")] = value.decode("latin-1")
    if "Transfer-Encoding" in headers or not set(headers.get_all("Content-Length")) <= {"0"}:
        return None
    return Request(path, headers, scope["method"], f"HTTP/{scope['http_version']}")


@functools.lru_cache(maxsize=1)
def _text_frame(data: bytes) -> bytes:
    """``data`` framed as websockets frames a server's text message without extensions.
    A published message is the same bytes object for every subscriber of the process,
    so it is framed once, not once per socket."""
    return Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])


CREDENTIAL_HEADERS = frozenset({b"authorization", b"cookie", b"sec-websocket-protocol"})


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LazyQueue()  # type: ignore[assignment]  # not an asyncio.Queue: 2.6 KiB less

    def connection_lost(self, exc: Exception | None) -> None:
        self.disconnected = True  # uvicorn's mark of a lost connection, set now
        self.stop_keepalive()
        self.writable.set()  # a send waiting for the buffer to drain raises, as after
        lost_connections.run(functools.partial(self._lost, exc))

    def _lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # websockets' protocol and its parser generator (whose frame holds the protocol)
        # form a cycle, which the collector policy never frees once it is frozen (about
        # 1.4 KiB a connection). Nothing parses after the loss: end the generator.
        self.conn.parser.close()

    def eof_received(self) -> bool:  # type: ignore[override]  # asyncio.Protocol allows it
        """The client closed its half (uvicorn closed ours at once): ours in its turn."""
        ended_streams.run(self._close_our_half)
        return True  # keep the transport open until then

    def _close_our_half(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def shutdown(self) -> None:
        if not self.disconnected:  # a lost one has nothing to close; its connection_lost is queued
            super().shutdown()

    async def send(self, message: Any) -> None:
        accepting = not self.handshake_complete and message.get("type") == "websocket.accept"
        await super().send(message)
        if accepting and self.handshake_complete:
            self._forget_the_handshake()

    def _forget_the_handshake(self) -> None:
        """Once accepted, keep neither the parsed request and response nor, in the scope
        every layer of the app shares, the credentials: no token stays in memory for the
        socket's life, and each socket keeps about 5 KiB less."""
        self.request.headers.clear()  # websockets' parser keeps the request it parsed
        del self.request, self.response
        headers = self.scope["headers"]
        headers[:] = [(name, value) for name, value in headers  # type: ignore[index]
                      if name.lower() not in CREDENTIAL_HEADERS]
        self.scope["subprotocols"][:] = []  # type: ignore[index]

    async def run_asgi(self) -> None:
        extensions = self.scope["extensions"]
        extensions[WRITE_NOW] = {"text": self.write_now}
        try:
            await super().run_asgi()
        finally:  # the bound method in the scope would keep the protocol in a cycle, which
            extensions.pop(WRITE_NOW, None)  # the collector policy never frees (gcpolicy)

    def write_now(self, data: bytes) -> bool:
        """One text frame, written now; False (nothing written) if that would mean waiting."""
        if (not self.handshake_complete or self.close_sent or self.disconnected
                or self.initial_response is not None or not self.writable.is_set()
                or self.transport.is_closing()):
            return False
        conn = self.conn
        if conn.extensions or conn.writes:  # compression, or bytes not yet flushed
            return self._write_through_protocol(data)
        if conn.state is not State.OPEN or conn.expect_continuation_frame:
            return False
        self.transport.write(_text_frame(data))  # what send_text would write
        return True

    def _write_through_protocol(self, data: bytes) -> bool:
        try:
            self.conn.send_text(data)
        except (InvalidState, ProtocolError):
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    def upgrade(self, request: Request | None) -> None:
        """Start from the request uvicorn's HTTP parser read (None: one websockets' parser
        would refuse, which gets 400 and a close, as from ``data_received``)."""
        if request is None:
            self._bad_request()
            return
        conn = self.conn
        conn.parser.close()  # the request parser, waiting for bytes that will not come
        conn.parser = Protocol.parse(conn)  # then frames, as websockets goes on after a request
        next(conn.parser)
        self.handle_connect(request)
        if self.response.status_code != 101:  # websockets' accept refused it: answered, closed
            _audit_refused("bad_handshake", self.client,
                           f"{self.response.status_code} {self.response.reason_phrase}")

    def _bad_request(self) -> None:
        _audit_refused("bad_handshake", self.client, "400 malformed request head")
        self.transport.write(BAD_REQUEST)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.handshake_initiated and self.conn.handshake_exc is not None:
            self._bad_request()
