"""A reconnect storm against the production launch: every handshake of a burst completes,
while the server spreads the burst's work over loop turns (``gateway.handshake.pacing``),
and the sockets already open keep being served. The same for many sockets ending
together (``gateway.ops.closegate``): every end is handled, a bounded number per turn."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

import devidp
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import user_tokens, ws_url

BURST = 300


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devidp.DevIdp]:
    tmp = tmp_path_factory.mktemp("burst-idp")
    provider = devidp.start(free_port(), "http://127.0.0.1:1", log_file=tmp / "idp.log")
    try:
        yield provider
    finally:
        provider.stop()


@pytest.fixture(scope="module")
def gateway(idp: devidp.DevIdp, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[GatewayProcess]:
    tmp: Path = tmp_path_factory.mktemp("burst")
    port = free_port()
    env = gateway_env(idp.issuer, port, database_file=tmp / "db.sqlite3",
                      extra={"GATEWAY_MAX_SOCKETS_PER_SUBJECT": "0",
                             "GATEWAY_METRICS_NETWORKS": "127.0.0.0/8"})
    migrate(env)
    process = start_gateway(port, env, tmp / "gateway.log")
    try:
        yield process
    finally:
        process.stop()


def metric(gateway: GatewayProcess, sample: str) -> float:
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(sample)} (\S+)$", metrics, re.M)
    assert found, f"{sample} is not exported"
    return float(found.group(1))


def deferred(gateway: GatewayProcess) -> float:
    return metric(gateway, "gateway_handshake_work_deferred_total")


def deferred_ends(gateway: GatewayProcess, stage: str) -> float:
    return metric(gateway, f'gateway_close_work_deferred_total{{stage="{stage}"}}')


def open_connections(gateway: GatewayProcess) -> float:
    return metric(gateway, "gateway_open_connections")


async def welcomed(gateway: GatewayProcess, token: str) -> ClientConnection:
    ws = await connect(ws_url(gateway.url, "/ws/"), open_timeout=30,
                       additional_headers={"Authorization": f"Bearer {token}"})
    welcome = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert welcome["type"] == "welcome", welcome
    return ws


class RawHandshake:
    """A websocket handshake on a plain TCP connection (websockets' sans-I/O client), so the
    test decides when its request head is written."""

    def __init__(self, gateway: GatewayProcess, token: str) -> None:
        self.protocol = ClientProtocol(parse_uri(ws_url(gateway.url, "/ws/")))
        request = self.protocol.connect()
        request.headers["Authorization"] = f"Bearer {token}"
        self.protocol.send_request(request)
        self.head = b"".join(self.protocol.data_to_send())

    async def welcome(self, reader: asyncio.StreamReader) -> dict[str, Any]:
        """Read until the handshake's answer and the first text frame."""
        while True:
            data = await asyncio.wait_for(reader.read(65536), 30)
            assert data, "the gateway closed the connection"
            self.protocol.receive_data(data)
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    assert event.status_code == 101, event.status_code
                elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    return dict(json.loads(bytes(event.data)))


async def test_a_burst_of_heads_arriving_together_is_paced_and_every_handshake_completes(
        gateway: GatewayProcess, idp: devidp.DevIdp) -> None:
    token = user_tokens(idp.issuer, "http://127.0.0.1:1", "bob", "bob-password")["access_token"]
    survivor = await welcomed(gateway, token)
    before = deferred(gateway)
    connections = [await asyncio.open_connection("127.0.0.1", gateway.port) for _ in range(BURST)]
    handshakes = [RawHandshake(gateway, token) for _ in range(BURST)]
    try:
        for (_, writer), handshake in zip(connections, handshakes, strict=True):
            writer.write(handshake.head)  # all heads at once: one loop turn on the server
        await survivor.send(json.dumps({"type": "ping"}))  # /ws/ answers it with an error
        welcomes = await asyncio.gather(*(handshake.welcome(reader) for (reader, _), handshake
                                          in zip(connections, handshakes, strict=True)))
        answer = json.loads(await asyncio.wait_for(survivor.recv(), 30))
        assert [w["type"] for w in welcomes] == ["welcome"] * BURST
        assert answer["type"] == "error" and answer["error"] == "unsupported", answer
        # more heads than one turn's budget parses: some waited for a later turn
        assert deferred(gateway) > before
    finally:
        for _, writer in connections:
            writer.close()
        await survivor.close()


def end(ws: ClientConnection, how: str) -> None:
    """Drop the connection: a FIN (the client's half closed), or an RST (SO_LINGER 0)."""
    if how == "rst":
        ws.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


# A FIN: the server closes its half in the eof stage; an RST: the end arrives as a lost
# connection at once. Either way at most 100 a turn go on, and all are handled.
async def open_connections_become(gateway: GatewayProcess, count: int) -> None:
    deadline = time.monotonic() + 30
    while (now := open_connections(gateway)) != count:
        assert time.monotonic() < deadline, f"{now} sockets open, not {count}"
        await asyncio.sleep(0.1)


# A FIN: the server closes its half in the eof stage; an RST: the end arrives as a lost
# connection at once. Either way at most 100 a turn go on, and all are handled.
@pytest.mark.parametrize(("how", "stage"), [("fin", "eof"), ("rst", "connection_lost")])
async def test_many_sockets_ending_together_are_paced_and_every_end_is_handled(
        gateway: GatewayProcess, idp: devidp.DevIdp, how: str, stage: str) -> None:
    token = user_tokens(idp.issuer, "http://127.0.0.1:1", "bob", "bob-password")["access_token"]
    await open_connections_become(gateway, 0)  # the other tests' sockets are gone
    survivor = await welcomed(gateway, token)
    try:
        before = deferred_ends(gateway, stage)
        sockets = [await welcomed(gateway, token) for _ in range(BURST)]
        assert open_connections(gateway) == 1 + BURST
        os.kill(gateway.process.pid, signal.SIGSTOP)  # the ends wait in its kernel: one turn
        try:
            for ws in sockets:
                end(ws, how)
            await asyncio.sleep(0.5)  # asyncio closes the sockets in its next turns
        finally:
            os.kill(gateway.process.pid, signal.SIGCONT)
        await open_connections_become(gateway, 1)  # every consumer heard its end, cleaned up
        assert deferred_ends(gateway, stage) >= before + BURST // 2  # a turn takes 100
        await survivor.send(json.dumps({"type": "ping"}))
        answer = json.loads(await asyncio.wait_for(survivor.recv(), 30))
        assert answer["type"] == "error" and answer["error"] == "unsupported", answer
    finally:
        await survivor.close()
