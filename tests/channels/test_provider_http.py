"""One pooled HTTP client per event loop serves every call to the provider
(gateway/issuers/http.py): discovery, JWKS, and the token endpoint (refresh) and introspection
through gateway/issuers/tokenclient.py reuse one kept-alive connection.

The provider here is a small real HTTP/1.1 server on a loopback socket that counts the TCP
connections it accepts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from gateway.issuers import http, tokenclient
from gateway.issuers.registry import fetch_json, fetch_jwks


class CountingServer:
    """Answers every request with a small JSON object, keeping connections alive."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                self.requests.append(lines[0])
                length = next((int(line.split(":", 1)[1]) for line in lines
                               if line.lower().startswith("content-length:")), 0)
                await reader.readexactly(length)
                body = json.dumps({"keys": [], "active": False}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"


@pytest.fixture
async def provider() -> AsyncIterator[CountingServer]:
    server = CountingServer()
    server.server = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    try:
        yield server
    finally:
        await http.aclose()
        server.server.close()
        await server.server.wait_closed()


async def test_discovery_jwks_token_and_introspection_share_one_connection(
        provider: CountingServer) -> None:
    await fetch_json(f"{provider.url}/.well-known/openid-configuration")
    await fetch_jwks(f"{provider.url}/jwks")
    await tokenclient.post(f"{provider.url}/token", {"grant_type": "refresh_token",
                                                      "refresh_token": "r"})
    await tokenclient.post(f"{provider.url}/introspect", {"token": "t"})
    assert [line.split()[0:2] for line in provider.requests] == [
        ["GET", "/.well-known/openid-configuration"], ["GET", "/jwks"],
        ["POST", "/token"], ["POST", "/introspect"]]
    assert provider.connections == 1


async def test_one_client_per_loop_and_a_new_one_after_close() -> None:
    first = http.client()
    assert http.client() is first
    await http.aclose()
    assert first.is_closed
    second = http.client()
    assert second is not first and not second.is_closed
    other_loop: list[object] = []

    def in_another_loop() -> None:
        async def get() -> None:
            other_loop.append(http.client())
            await http.aclose()
        asyncio.run(get())

    await asyncio.to_thread(in_another_loop)
    assert other_loop[0] is not second
    await http.aclose()


def test_the_sync_client_is_shared() -> None:
    assert http.sync_client() is http.sync_client()
