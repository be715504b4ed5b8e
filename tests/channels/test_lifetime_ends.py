"""Issue 20: one notice and at most one refresh per credential lifetime, shared by a
session's sockets, and nothing of a socket left running after its close, at any point of
its lifetime (idle, after a notice, during a refresh, during an in-band ``auth``).

The expiry notice stays at its shipped default (60 s) throughout: short tokens are what
made it storm.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.base import SessionBase

from config.asgi import application
from consumers.base import LIVE, GatewayConsumer, _closed_socket_work
from gateway.login import refresh
from gateway.login.sessions import AUTH_KEY, session_store_class
from tests.channels.conftest import ISSUER, ORIGIN, token

pytestmark = pytest.mark.django_db(transaction=True)

LIFETIME = 6.5  # s: the shortest token the 5 s refresh spacing lets live on


class Provider:
    """The token endpoint, in process: counts exchanges; ``gate`` holds them."""

    def __init__(self, lifetime: float = LIFETIME) -> None:
        self.lifetime = lifetime
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def exchange(self, refresh_token: str) -> dict[str, Any]:
        self.calls.append(refresh_token)
        if self.gate is not None:
            await self.gate.wait()
        return {"access_token": f"at-{len(self.calls)}", "expires_in": self.lifetime,
                "refresh_token": f"rt-{len(self.calls) + 1}", "scope": "openid ws"}


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Provider:
    fake = Provider()
    monkeypatch.setattr(refresh, "_exchange", fake.exchange)
    return fake


async def _session(lifetime: float, *, issued_ago: float = 0.0) -> str:
    now = time.time()
    expires_at = now - issued_ago + lifetime
    store: SessionBase = session_store_class()()
    await store.aset("_auth_user_id", "1")
    await store.aset(AUTH_KEY, {
        "expires_at": expires_at, "issued_at": now - issued_ago, "refresh_token": "rt-1",
        "access_token": "at", "id_token": "it",
        "claims": {"issuer": ISSUER, "subject": "carol", "sid": "s-1", "groups": ["engineering"],
                   "roles": [], "scopes": ["ws"], "expires_at": expires_at, "client_id": "gateway"}})
    await store.asave()
    assert store.session_key is not None
    return store.session_key


async def _session_socket(key: str) -> tuple[WebsocketCommunicator, GatewayConsumer]:
    comm = WebsocketCommunicator(application, "/ws/", headers=[
        (b"cookie", f"sessionid={key}".encode()), (b"origin", ORIGIN.encode())])
    return await _opened(comm)


async def _bearer_socket(raw: str) -> tuple[WebsocketCommunicator, GatewayConsumer]:
    comm = WebsocketCommunicator(application, "/ws/", headers=[
        (b"authorization", f"Bearer {raw}".encode())])
    return await _opened(comm)


async def _opened(comm: WebsocketCommunicator) -> tuple[WebsocketCommunicator, GatewayConsumer]:
    before = set(LIVE)
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    (consumer,) = set(LIVE) - before
    return comm, consumer


async def _frame(comm: WebsocketCommunicator, timeout: float) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await comm.receive_from(timeout=timeout))
    return frame


def _belongs(task: asyncio.Task[Any], consumer: GatewayConsumer) -> bool:
    """Whether any coroutine in the task's await chain is a method of ``consumer``."""
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and frame.f_locals.get("self") is consumer:
            return True
        coro = getattr(coro, "cr_await", None)
    return False


async def leftovers(consumer: GatewayConsumer) -> list[str]:
    """The socket's timers and tasks still pending on this loop, after it settles."""
    await asyncio.sleep(0.2)
    loop = asyncio.get_running_loop()
    owners = (consumer, consumer.lifetime)
    timers = [f"timer {handle}" for handle in getattr(loop, "_scheduled", ())
              if not handle.cancelled()
              and getattr(handle._callback, "__self__", None) in owners]
    tasks = [f"task {task.get_coro()}" for task in asyncio.all_tasks()
             if not task.done() and _belongs(task, consumer)]
    return timers + tasks + [f"own task {task}" for task in consumer.lifetime.tasks
                             if not task.done()]


async def test_closed_while_idle_leaves_nothing(provider: Provider) -> None:
    comm, consumer = await _session_socket(await _session(300))
    await comm.disconnect()
    assert await leftovers(consumer) == []


async def test_closed_after_the_notice_leaves_nothing() -> None:
    now = time.time()
    comm, consumer = await _bearer_socket(token(sub="dora", iat=now - 3600, exp=now + 30))
    assert (await _frame(comm, 2))["type"] == "auth.expiring"
    await comm.disconnect()
    assert await leftovers(consumer) == []


async def test_closed_during_a_refresh_leaves_nothing_and_the_session_keeps_the_tokens(
        provider: Provider) -> None:
    provider.gate = asyncio.Event()
    key = await _session(LIFETIME, issued_ago=LIFETIME - 0.5)  # the notice is due at once
    comm, consumer = await _session_socket(key)
    expiring_at = consumer.principal.expires_at
    assert (await _frame(comm, 2))["type"] == "auth.expiring"
    for _ in range(100):
        if provider.calls:
            break
        await asyncio.sleep(0.02)
    assert provider.calls == ["rt-1"], "the refresh is in flight"
    await comm.disconnect()
    provider.gate.set()  # the provider answers after the close
    assert await leftovers(consumer) == []
    assert _closed_socket_work() == 0  # what /metrics reports (bench/soak.py reads it)
    assert consumer.principal.expires_at == expiring_at, "a closed socket adopts nothing"
    store = session_store_class()(key)
    stored = await store.aget(AUTH_KEY)
    assert stored["refresh_token"] == "rt-2", "the session keeps the rotated refresh token"
    await asyncio.sleep(LIFETIME)
    assert provider.calls == ["rt-1"], "no refresh chain after the close"


async def test_closed_during_an_in_band_auth_leaves_nothing() -> None:
    now = time.time()
    comm, consumer = await _bearer_socket(token(sub="dora", iat=now, exp=now + 300))
    fresh = token(sub="dora", iat=now, exp=now + 600)
    await comm.send_to(text_data=json.dumps({"v": 1, "type": "auth", "id": 1, "token": fresh}))
    await comm.disconnect()
    assert await leftovers(consumer) == []


async def _refreshed(comm: WebsocketCommunicator, timeout: float) -> None:
    """A notice, then the refresh and the new welcome (``/ws/`` greets a new principal)."""
    kinds = [(await _frame(comm, timeout))["type"] for _ in range(3)]
    assert kinds == ["auth.expiring", "auth.refreshed", "welcome"]


async def test_short_session_tokens_are_refreshed_once_per_lifetime(provider: Provider) -> None:
    """The storm of issue 20: 60 s notice on short tokens refreshed at once, for ever."""
    comm, consumer = await _session_socket(await _session(LIFETIME))
    await _refreshed(comm, LIFETIME)
    assert await comm.receive_nothing(timeout=LIFETIME / 2), "refreshed again at once"
    assert provider.calls == ["rt-1"], f"one refresh per lifetime, not {provider.calls}"
    assert consumer.open
    await comm.disconnect()


async def test_the_sockets_of_one_session_share_one_refresh(provider: Provider) -> None:
    key = await _session(LIFETIME, issued_ago=LIFETIME - 2.5)  # noticed in 1.4 s
    sockets = [await _session_socket(key) for _ in range(3)]  # all open before that
    for comm, _ in sockets:
        await _refreshed(comm, 3)
    assert provider.calls == ["rt-1"]
    for comm, _ in sockets:
        await comm.disconnect()


async def test_a_session_is_not_refreshed_again_within_the_spacing(provider: Provider) -> None:
    """A provider that issues 2 s tokens gets one refresh per 5 s from a session at most:
    the socket then ends at expiry (4401 expired) instead of hammering the provider."""
    provider.lifetime = 2.0
    comm, _ = await _session_socket(await _session(3600.5, issued_ago=3600))
    await _refreshed(comm, 3)
    assert (await _frame(comm, 3))["type"] == "auth.expiring"
    closing = await comm.receive_output(timeout=4)
    assert (closing["code"], closing["reason"]) == (4401, "expired")
    assert provider.calls == ["rt-1"]


async def test_a_bearer_socket_gets_one_notice_per_token() -> None:
    """Every in-band auth with a short token was answered at once by a new notice."""
    lifetime = 1.8
    now = time.time()
    comm, _ = await _bearer_socket(token(sub="dora", iat=now, exp=now + lifetime))
    for n in range(3):
        assert (await _frame(comm, 3))["type"] == "auth.expiring"
        issued = time.time()
        fresh = token(sub="dora", iat=issued, exp=issued + lifetime, jti=f"j-{n}")
        await comm.send_to(text_data=json.dumps({"v": 1, "type": "auth", "id": n, "token": fresh}))
        assert (await _frame(comm, 3))["type"] == "welcome"
        # the next notice is due (1 - 1/6) of the new token's lifetime later, not at once
        assert await comm.receive_nothing(timeout=lifetime / 2), "noticed again at once"
    await comm.disconnect()
