"""Issue 11 §1: the issuer split, as compose runs it, reproduced natively.

Browsers see Keycloak at its public URL (``--hostname``, here http://127.0.0.1:<port>), and
every token's ``iss`` is that URL. The gateway reaches Keycloak at another, in-network base
(compose: http://keycloak:8080; here a TCP forwarder on another port, standing in for the
service name), and Keycloak runs with ``--hostname-backchannel-dynamic=true`` so answers to
requests on that base name back-channel endpoints on it.

The gateway's ``GATEWAY_OIDC_INTERNAL_URL`` moves server-to-server calls (discovery, JWKS,
token, introspection) to the internal base; browsers are still sent to the public URLs, and
``iss`` is still compared exactly with ``GATEWAY_OIDC_ISSUER``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from devidp.stack import GatewayProcess, free_port, start_gateway
from tests.keycloak.conftest import GATEWAY_READY_TIMEOUT, KeycloakStack, keycloak_gateway_env
from tests.keycloak.helpers import welcome


class Forwarder:
    """A counting TCP forwarder 127.0.0.1:<port> -> 127.0.0.1:<target> in its own thread."""

    def __init__(self, target: int) -> None:
        self.target, self.connections = target, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, sock=self.sock))
        self.loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer),
                             return_exceptions=True)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def split_gateway(kc_stack: KeycloakStack) -> Iterator[tuple[GatewayProcess, Forwarder]]:
    forwarder = Forwarder(kc_stack.keycloak.port)
    port = free_port()
    env = keycloak_gateway_env(
        kc_stack.keycloak, port, kc_stack.tmp / "gateway.sqlite3", [f"http://127.0.0.1:{port}"],
        GATEWAY_OIDC_INTERNAL_URL=f"http://127.0.0.1:{forwarder.port}")
    gateway = start_gateway(port, env, kc_stack.tmp / "gateway-split.log",
                            ready_timeout=GATEWAY_READY_TIMEOUT)
    try:
        yield gateway, forwarder
    finally:
        gateway.stop()
        forwarder.stop()


async def test_server_to_server_calls_use_the_internal_base_and_iss_stays_public(
        kc_stack: KeycloakStack, split_gateway: tuple[GatewayProcess, Forwarder]) -> None:
    gateway, forwarder = split_gateway
    token = kc_stack.keycloak.client_credentials("publisher")["access_token"]
    principal = await welcome(gateway.url, token=token)
    assert principal["issuer"] == kc_stack.issuer  # the public iss, checked exactly
    assert forwarder.connections > 0  # discovery and JWKS went through the internal base
    # the browser is still sent to Keycloak's public authorization endpoint
    start = httpx.get(f"{gateway.url}/oidc/authenticate/", timeout=10)
    assert start.is_redirect
    assert start.headers["location"].startswith(f"{kc_stack.issuer}/protocol/openid-connect/auth")
