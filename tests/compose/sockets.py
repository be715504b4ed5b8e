"""Sockets through the proxy, and which replica each one landed on (the gateways' roster)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from tests.compose.stack import GATEWAY, Stack
from tests.keycloak.helpers import recv_json, session_socket

LANDED_TIMEOUT = 10.0


@dataclass
class Placed:
    """A client socket, its welcome principal and the replica that holds it."""

    ws: ClientConnection
    principal: dict[str, Any]
    replica: str


async def _landed(stack: Stack, known: set[str]) -> dict[str, Any]:
    """The one roster entry that is not in ``known`` (the socket just opened)."""
    deadline = asyncio.get_running_loop().time() + LANDED_TIMEOUT
    while True:
        fresh = [e for e in await asyncio.to_thread(stack.roster) if e["socket"] not in known]
        if len(fresh) == 1:
            return fresh[0]
        assert len(fresh) < 2, f"sockets opened meanwhile by someone else: {fresh}"
        assert asyncio.get_running_loop().time() < deadline, "the roster never listed the socket"
        await asyncio.sleep(0.2)


async def place(stack: Stack, client: httpx.Client, path: str = "/ws/") -> Placed:
    """Open a cookie socket through the proxy; find the replica from the roster."""
    known = {e["socket"] for e in await asyncio.to_thread(stack.roster)}
    ws = await session_socket(GATEWAY, client, path)
    welcome = await recv_json(ws, 10)
    assert welcome["type"] == "welcome", welcome
    entry = await _landed(stack, known)
    return Placed(ws, dict(welcome["principal"]), entry["replica"])


async def place_on_both(stack: Stack, client: httpx.Client, *, each: int = 1, path: str = "/ws/",
                        limit: int = 16) -> list[Placed]:
    """Open sockets until each replica holds at least ``each`` of them."""
    placed: list[Placed] = []
    while not all(sum(p.replica == r for p in placed) >= each for r in ("gateway-1", "gateway-2")):
        assert len(placed) < limit, f"the proxy sent {limit} sockets to {[p.replica for p in placed]}"
        placed.append(await place(stack, client, path))
    return placed


async def still_open(ws: ClientConnection) -> None:
    """The socket answers: an unparseable frame gets an error reply, not a close."""
    await ws.send("still there?")
    reply = await recv_json(ws, 5)
    assert reply["type"] == "error", reply


async def close_all(placed: list[Placed]) -> None:
    await asyncio.gather(*(p.ws.close() for p in placed), return_exceptions=True)


def audit_events(stack: Stack, event: str) -> list[dict[str, Any]]:
    """The gateways' audit lines for ``event``, from both replicas' logs."""
    lines = stack.compose("logs", "--no-color", "--no-log-prefix", "gateway-1", "gateway-2").stdout
    found = []
    for line in lines.splitlines():
        start = line.find("{")
        if start >= 0 and f'"{event}"' in line:
            try:
                found.append(dict(json.loads(line[start:])))
            except ValueError:
                continue
    return found
