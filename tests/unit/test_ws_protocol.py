"""config.hardening.WebSocketProtocol (uvicorn): the ``gateway.write_now`` extension, and
what it forgets once a socket is accepted."""

from __future__ import annotations

import asyncio
from types import GeneratorType
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from config.hardening import WebSocketProtocol
from gateway.sockets.writenow import EXTENSION, write_now_of

HANDSHAKE = (b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer secret.token.value\r\n"
             b"Cookie: sessionid=s3cr3t\r\nSec-WebSocket-Protocol: wsgateway.bearer, tok3n\r\n"
             b"User-Agent: probe\r\n\r\n")


def _headers(scope: dict[str, Any]) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope["headers"]}


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: Any) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


async def _accepted(deflate: bool = False) -> tuple[WebSocketProtocol, Transport, dict[str, Any],
                                                   asyncio.Event]:
    scopes: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        assert _headers(scope)[b"authorization"] == b"Bearer secret.token.value"
        await send({"type": "websocket.accept", "subprotocol": "wsgateway.bearer"})
        await done.wait()

    config = Config(app=app, ws="config.hardening:WebSocketProtocol", lifespan="off",
                    ws_per_message_deflate=deflate)
    config.load()
    protocol = WebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    offer = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b""
    protocol.data_received(HANDSHAKE[:-2] + offer + b"\r\n")
    for _ in range(20):
        await asyncio.sleep(0)
    assert b"101 Switching Protocols" in transport.written
    transport.written.clear()
    return protocol, transport, scopes[0], done


async def test_the_scope_offers_a_writer_that_writes_one_text_frame_at_once() -> None:
    _protocol, transport, scope, done = await _accepted()
    write = write_now_of(scope)
    assert write is not None and EXTENSION in scope["extensions"]
    assert write(b'{"n":1}') is True
    assert bytes(transport.written) == b"\x81\x07" + b'{"n":1}'  # FIN + text, unmasked
    done.set()


async def test_the_writer_frames_every_payload_length_as_websockets_does() -> None:
    _protocol, transport, scope, done = await _accepted()
    write = write_now_of(scope)
    assert write is not None
    for size, head in ((125, b"\x81\x7d"), (200, b"\x81\x7e\x00\xc8"),
                       (70_000, b"\x81\x7f" + (70_000).to_bytes(8, "big"))):
        payload = b"a" * size
        assert write(payload) is True
        assert write(payload) is True  # the same bytes again: framed once, written twice
        assert bytes(transport.written) == 2 * (head + payload)
        transport.written.clear()
    done.set()


async def test_with_compression_the_writer_goes_through_the_protocol() -> None:
    protocol, transport, scope, done = await _accepted(deflate=True)
    assert protocol.conn.extensions  # permessage-deflate was negotiated
    write = write_now_of(scope)
    assert write is not None
    assert write(b"x" * 300) is True
    first, size = transport.written[0], transport.written[1]
    assert first == 0xC1 and size < 126  # FIN + RSV1 (compressed) + text, much shorter than 300
    done.set()


async def test_the_writer_refuses_rather_than_waits_on_a_paused_or_closed_socket() -> None:
    protocol, transport, scope, done = await _accepted()
    write = write_now_of(scope)
    assert write is not None
    protocol.pause_writing()  # the client reads too slowly
    assert write(b"x") is False and not transport.written
    protocol.resume_writing()
    assert write(b"x") is True
    transport.written.clear()
    protocol.close_sent = True
    assert write(b"x") is False and not transport.written
    protocol.close_sent = False
    transport.closing = True
    assert write(b"x") is False and not transport.written
    done.set()


async def test_the_writer_refuses_once_a_close_frame_is_on_its_way() -> None:
    protocol, transport, scope, done = await _accepted()
    write = write_now_of(scope)
    assert write is not None
    protocol.shutdown()  # server shutdown: websockets sends 1012 while uvicorn's close_sent is unset
    assert transport.written[:2] == b"\x88\x02"
    transport.written.clear()
    transport.closing = False  # the protocol's own state must refuse, whatever the transport says
    assert write(b"x") is False and not transport.written
    done.set()


def test_a_scope_without_the_extension_has_no_writer() -> None:
    assert write_now_of({"extensions": {"websocket.http.response": {}}}) is None
    assert write_now_of({}) is None
    assert write_now_of({"extensions": {EXTENSION: {"text": "not callable"}}}) is None


async def test_once_accepted_no_credential_stays_in_the_scope_or_the_parsed_request() -> None:
    protocol, _transport, scope, done = await _accepted()
    assert _headers(scope) == {b"host": b"127.0.0.1", b"upgrade": b"websocket",
                                      b"connection": b"Upgrade",
                                      b"sec-websocket-key": b"dGhlIHNhbXBsZSBub25jZQ==",
                                      b"sec-websocket-version": b"13", b"user-agent": b"probe"}
    assert scope["subprotocols"] == []
    assert not hasattr(protocol, "request") and not hasattr(protocol, "response")
    generator = protocol.conn.parser
    assert isinstance(generator, GeneratorType)
    parser = generator.gi_frame  # websockets' generator still holds the request
    assert parser is not None
    kept = [value for value in parser.f_locals.values() if hasattr(value, "headers")]
    assert kept and all(len(request.headers) == 0 for request in kept)
    done.set()
