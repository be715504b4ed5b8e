"""Issue 4, presence and limits, end to end: two gateway processes sharing a real Redis.

The stack's gateways run with GATEWAY_MAX_SOCKETS_PER_SUBJECT=20 (tests/e2e/conftest.py).
The ledger tests at the bottom use the real Redis directly to show that a crashed
process's entries expire instead of leaking.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import devidp
from devidp.stack import free_port, gateway_env, start_gateway
from gateway.ops.ledger import RedisLedger
from tests.e2e.conftest import REDIS_URL, SOCKETS_PER_SUBJECT, Stack
from tests.e2e.flows import closed_with, open_ws, service_token, user_tokens
from tests.e2e.test_pubsub import Client, admin_change
from tests.redis_servers import PrivateRedis


def lobby_grant(stack: Stack, group: str, *, presence: bool) -> dict[str, Any]:
    return {"issuer": stack.idp.issuer, "claim": "groups", "value": group, "target": "lobby",
            "subscribe": True, "presence": presence}


async def test_presence_across_processes_lists_members_and_sends_join_and_leave(
        stack: Stack) -> None:
    admin_change(stack, [("add", lobby_grant(stack, "engineering", presence=False)),
                         ("add", lobby_grant(stack, "admins", presence=True))])
    issuer = stack.idp.issuer
    alice_token = user_tokens(issuer, stack.gateway, "alice", "alice-password")["access_token"]
    bob_token = user_tokens(issuer, stack.gateway, "bob", "bob-password")["access_token"]
    watcher = await Client.open(stack.gateways[1].url, alice_token)  # presence holder
    member = await Client.open(stack.gateways[0].url, bob_token)  # subscriber only

    assert (await watcher.subscribe("lobby"))["type"] == "ack"
    own = await watcher.recv()
    assert (own["type"], own["member"]["subject"]) == ("join", "alice")
    assert (await member.subscribe("lobby"))["type"] == "ack"
    joined = await watcher.recv(timeout=3)
    assert joined == {"v": 1, "type": "join", "channel": "lobby",
                      "member": {"issuer": issuer, "subject": "bob"}}

    listed = await watcher.request("presence", channel="lobby")
    assert listed["members"] == sorted([{"issuer": issuer, "subject": "alice"},
                                        {"issuer": issuer, "subject": "bob"}],
                                       key=lambda m: m["subject"])
    refused = await member.request("presence", channel="lobby")
    assert (refused["type"], refused["error"]) == ("error", "forbidden")
    assert await member.nothing_within(0.3)  # bob sees no join/leave events

    await member.close()  # bob's only socket closes on gateway 0
    left = await watcher.recv(timeout=3)
    assert left == {"v": 1, "type": "leave", "channel": "lobby",
                    "member": {"issuer": issuer, "subject": "bob"}}
    assert (await watcher.request("presence", channel="lobby"))["members"] == [
        {"issuer": issuer, "subject": "alice"}]
    await watcher.close()
    await asyncio.sleep(0.2)
    assert any(e["event"] == "presence" and e["reason"] == "forbidden"
               for e in stack.audit_events(0))


async def test_sockets_per_subject_are_limited_across_processes(stack: Stack) -> None:
    token = service_token(stack.idp.issuer, "svc-publisher", "ws publish", devidp.API_AUDIENCE)
    headers = {"Authorization": f"Bearer {token}"}
    half = SOCKETS_PER_SUBJECT // 2
    sockets = [await open_ws(stack.gateways[i % 2].url, headers=headers)
               for i in range(2 * half)]
    for ws in sockets:
        assert (await asyncio.wait_for(ws.recv(), 3))  # the welcome: the socket is open
    for gateway in stack.gateways:  # one over the limit, on either process
        assert await closed_with(gateway.url, headers=headers) == (4429, "too_many_connections")

    await sockets.pop(0).close()  # a socket on gateway 0 closes: gateway 1 admits one more
    await asyncio.sleep(0.3)
    again = await open_ws(stack.gateways[1].url, headers=headers)
    assert await asyncio.wait_for(again.recv(), 3)
    with pytest.raises(TimeoutError):  # stays open: no close frame follows
        await asyncio.wait_for(again.recv(), 0.5)
    for ws in [*sockets, again]:
        await ws.close()
    await asyncio.sleep(0.2)
    assert any(e["event"] == "connect" and e["reason"] == "too_many_connections"
               for e in stack.audit_events(1))


# --- the ledger on the real Redis: crashed processes leave nothing behind --------------


async def test_a_crashed_process_stops_counting_within_the_ttl() -> None:
    crashed, survivor = RedisLedger(REDIS_URL, ttl=1.0), RedisLedger(REDIS_URL, ttl=1.0)
    who = ("https://idp.example.com", f"crash-{uuid.uuid4().hex}")
    try:
        assert await crashed.acquire_socket(who, "a", 2)
        assert await survivor.acquire_socket(who, "b", 2)
        assert not await survivor.acquire_socket(who, "c", 2)
        assert await crashed.join("crash.room", who, "a")
        other = ("https://idp.example.com", f"stays-{uuid.uuid4().hex}")
        assert await survivor.join("crash.room", other, "b")
        await crashed.close()  # the process dies: no release, no more heartbeats
        await asyncio.sleep(1.6)  # survivor's heartbeat (every ttl/3) keeps "b" alive
        assert await survivor.acquire_socket(who, "c", 2)  # "a" expired, "b" still counts
        assert not await survivor.acquire_socket(who, "d", 2)
        assert await survivor.members("crash.room") == [other]  # no ghost; "b" kept alive
        await survivor.release_socket(who, "b")
        assert await survivor.acquire_socket(who, "d", 2)
    finally:
        await survivor.close()


@pytest.fixture
def private_env(stack: Stack, tmp_path: Path) -> Iterator[Callable[[int], dict[str, str]]]:
    """Env for private gateways: their own Redis, 2 sockets per subject, a 1.5 s ledger TTL."""
    redis = PrivateRedis(free_port(), tmp_path)
    redis.start()

    def env(port: int) -> dict[str, str]:
        return gateway_env(stack.idp.issuer, port, database_file=stack.tmp / "gateway.sqlite3",
                           redis_url=f"redis://127.0.0.1:{redis.port}/0",
                           extra={"GATEWAY_MAX_SOCKETS_PER_SUBJECT": "2",
                                  "GATEWAY_LEDGER_TTL_SECONDS": "1.5"})

    try:
        yield env
    finally:
        redis.stop()


async def test_sockets_of_a_killed_gateway_stop_counting(
        stack: Stack, private_env: Callable[[int], dict[str, str]], tmp_path: Path) -> None:
    token = service_token(stack.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    headers = {"Authorization": f"Bearer {token}"}
    ports = [free_port(), free_port()]
    doomed = start_gateway(ports[0], private_env(ports[0]), tmp_path / "doomed.log")
    try:
        held = [await open_ws(doomed.url, headers=headers) for _ in range(2)]
        for ws in held:
            assert await asyncio.wait_for(ws.recv(), 3)
        assert await closed_with(doomed.url, headers=headers) == (4429, "too_many_connections")
        doomed.process.kill()  # SIGKILL: no disconnect handlers, no release
        doomed.process.wait()
        await asyncio.sleep(1.6)
        heir = start_gateway(ports[1], private_env(ports[1]), tmp_path / "heir.log")
        try:
            fresh = [await open_ws(heir.url, headers=headers) for _ in range(2)]
            for ws in fresh:
                assert await asyncio.wait_for(ws.recv(), 3)
            assert await closed_with(heir.url, headers=headers) == (4429, "too_many_connections")
            for ws in fresh:
                await ws.close()
        finally:
            heir.stop()
    finally:
        doomed.stop()
