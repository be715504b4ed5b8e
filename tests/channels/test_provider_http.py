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
from joserfc.jwk import RSAKey

from config.clientauth import ClientAuth
from gateway.issuers import http, tokenclient
from gateway.issuers.registry import Registry, fetch_json, fetch_jwks
from tests.unit.factories import make_config


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


def test_the_assertion_audience_is_the_published_token_endpoint_not_the_internal_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With GATEWAY_OIDC_INTERNAL_URL the gateway calls the token endpoint inside the network,
    but the provider checks a client assertion's aud against the URL it publishes."""
    issuer = "https://idp.example.com/realms/r"
    registry = Registry({issuer: make_config(issuer=issuer, internal_url="http://idp:8080")})
    server_side = registry._parse({
        "issuer": issuer, "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/certs"}, issuer)
    assert server_side.token_endpoint == "http://idp:8080/realms/r/token"
    assert registry.published_token_endpoint(issuer) == f"{issuer}/token"
    auth = ClientAuth("private_key_jwt", key=RSAKey.generate_key(2048), key_id="k",
                      algorithm="RS256")
    monkeypatch.setattr(tokenclient, "registry", registry)
    assert tokenclient.assertion_audience(auth, issuer) == f"{issuer}/token"
    issuer_aud = ClientAuth("private_key_jwt", key=auth.key, key_id="k", algorithm="RS256",
                            assertion_audience="issuer")
    assert tokenclient.assertion_audience(issuer_aud, issuer) == issuer
