"""Issue 19: a gateway replica crashes; its clients reconnect through the proxy to the other
one, the other one's sockets stay open, and the crashed replica comes back and serves."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from websockets.exceptions import ConnectionClosed

from tests.compose.sockets import Placed, close_all, place, place_on_both, still_open
from tests.compose.stack import GATEWAY, Stack
from tests.keycloak.flows import login

RESTART_TIMEOUT = 120.0


async def _dropped(placed: Placed) -> None:
    """The proxy ends the client's socket when its replica dies (no close frame from the app)."""
    try:
        while True:
            await asyncio.wait_for(placed.ws.recv(), 20)
    except ConnectionClosed:
        return


async def test_killed_replica_clients_reconnect_to_the_other_and_it_comes_back(stack: Stack) -> None:
    bob = login(GATEWAY, "bob", "bob-password")
    placed = await place_on_both(stack, bob, each=2)
    victims = [p for p in placed if p.replica == "gateway-1"]
    others = [p for p in placed if p.replica == "gateway-2"]
    restarts = stack.inspect("gateway-1")["RestartCount"]
    reconnected: list[Placed] = []
    try:
        os.kill(stack.inspect("gateway-1")["State"]["Pid"], signal.SIGKILL)  # a crash, not a stop
        await asyncio.gather(*(_dropped(v) for v in victims))
        for _ in victims:  # each dropped client opens a new socket through the proxy
            reconnected.append(await place(stack, bob))
        assert [r.replica for r in reconnected] == ["gateway-2"] * len(victims)
        for other in others:
            await still_open(other.ws)

        # restart: unless-stopped brings the replica back; its health check passes again
        deadline = time.monotonic() + RESTART_TIMEOUT
        while not (stack.inspect("gateway-1")["RestartCount"] > restarts
                   and stack.health("gateway-1") == "healthy"):
            assert time.monotonic() < deadline, stack.logs("gateway-1", "proxy")
            await asyncio.sleep(1)
        # and the proxy sends new sockets to it again
        back: list[Placed] = []
        while not any(p.replica == "gateway-1" for p in back):
            assert len(back) < 12, [p.replica for p in back]
            back.append(await place(stack, bob))
        reconnected.extend(back)
        for other in others:
            await still_open(other.ws)
    finally:
        await close_all(placed + reconnected)
