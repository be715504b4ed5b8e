"""The ``gateway.write_now`` extension of config.hardening.WebSocketProtocol (uvicorn)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from config.hardening import WebSocketProtocol
from gateway.sockets.writenow import EXTENSION, write_now_of

HANDSHAKE = (b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")


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


async def _accepted() -> tuple[WebSocketProtocol, Transport, dict[str, Any], asyncio.Event]:
    scopes: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await done.wait()

    config = Config(app=app, ws="config.hardening:WebSocketProtocol", lifespan="off",
                    ws_per_message_deflate=False)
    config.load()
    protocol = WebSocketProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(HANDSHAKE)
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


def test_a_scope_without_the_extension_has_no_writer() -> None:
    assert write_now_of({"extensions": {"websocket.http.response": {}}}) is None
    assert write_now_of({}) is None
    assert write_now_of({"extensions": {EXTENSION: {"text": "not callable"}}}) is None
