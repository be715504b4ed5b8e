"""The twins at the shipped defaults of every lifetime knob other tiers shrink to save time.

``test_lifetime.py`` shrinks the expiry notice to 4 s, ``conftest.py`` the JWKS refetch
interval to 1 s, ``test_serve.py`` the keepalive ping to 2 s. Here two gateways run with
``GATEWAY_EXPIRY_NOTICE_SECONDS``, ``GATEWAY_JWKS_MIN_REFETCH_SECONDS`` and
``GATEWAY_WS_PING_SECONDS`` unset (60, 10 and 20 s), each federated with its own stock
oidc-provider: one issuing 60 s tokens, one 5-minute tokens, the lifespans companies set.

One watch of 265 s serves the lifetime tests: a browser session and a bearer socket on each
gateway, and a socket that stops answering pings. 265 s covers the 5-minute token's notice,
due 5/6 of its lifetime in (250 s), and four and a half 60 s lifetimes. The watch mostly
waits, so it starts in a thread as soon as collection has picked this module
(``tests/e2e/conftest.py``) and runs beside the tiers before it; the tests then read what it
saw.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import devidp
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import frames_until, login, open_ws, service_token, session_cookie, ws_url

# What it tests is timing at the defaults, not the database engine: the PostgreSQL pass,
# which would spend another five minutes on it, skips it (test_lifetime.py runs there).
pytestmark = pytest.mark.database_free

LIFESPANS = (60, 300)
WATCH = 265.0  # seconds
NOTICE, PING = 60.0, 20.0  # the shipped defaults, for the arithmetic below
KNOBS = ("GATEWAY_EXPIRY_NOTICE_SECONDS", "GATEWAY_JWKS_MIN_REFETCH_SECONDS",
         "GATEWAY_WS_PING_SECONDS")


@dataclass
class Site:
    lifespan: int
    idp: devidp.DevIdp
    gateway: GatewayProcess

    def token(self) -> str:
        return service_token(self.idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)


@dataclass
class Watch:
    """What one socket saw: frames with their time since the watch began, and its end."""

    frames: list[tuple[float, str]] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)  # when a fresh token went in band
    closed: tuple[float, int, str] | None = None


def _start(lifespan: int, tmp: Path) -> Site:
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", access_token_ttl=lifespan,
                       id_token_ttl=lifespan, log_file=tmp / f"idp-{lifespan}.log")
    env = gateway_env(idp.issuer, port, database_file=tmp / f"gateway-{lifespan}.sqlite3",
                      extra={"GATEWAY_METRICS_NETWORKS": "127.0.0.1/32"})
    assert not set(KNOBS) & set(env), "every lifetime knob at its shipped default"
    migrate(env)
    return Site(lifespan, idp, start_gateway(port, env, tmp / f"gateway-{lifespan}.log"))




async def _watch(ws: ClientConnection, seen: Watch, began: float,
                 answer: Site | None = None) -> None:
    """Record ``ws`` until the watch ends; with ``answer``, reply to each notice with a
    fresh token from that site's provider, as a bearer client should."""
    try:
        async for frame in frames_until(ws, began + WATCH):
            seen.frames.append((time.monotonic() - began, frame["type"]))
            if answer is not None and frame["type"] == "auth.expiring":
                fresh = await asyncio.to_thread(answer.token)
                await ws.send(json.dumps({"v": 1, "type": "auth", "id": len(seen.answered),
                                          "token": fresh}))
                seen.answered.append(time.monotonic() - began)
    except ConnectionClosed as closed:
        code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        seen.closed = (time.monotonic() - began, code, reason)
    finally:
        await ws.close()


async def _deaf(ws: ClientConnection, seen: Watch, began: float) -> None:
    """A client that stops reading: the server's pings go unanswered."""
    ws.transport.pause_reading()
    await asyncio.sleep(2 * PING + 5)
    ws.transport.resume_reading()
    await _watch(ws, seen, began)


async def _observe(sites: dict[int, Site]) -> dict[str, Watch]:
    seen: dict[str, Watch] = {}
    work = []
    clients = {n: await asyncio.to_thread(login, s.gateway.url, "alice", "alice-password")
               for n, s in sites.items()}
    began = time.monotonic()  # the sessions' tokens were issued just now
    for lifespan, site in sites.items():
        url = site.gateway.url
        session = await open_ws(url, headers={"Cookie": session_cookie(clients[lifespan]),
                                              "Origin": url})
        bearer = await open_ws(url, headers={"Authorization": f"Bearer {site.token()}"})
        for name, ws in ((f"session-{lifespan}", session), (f"bearer-{lifespan}", bearer)):
            seen[name] = Watch()
            work.append(_watch(ws, seen[name], began, site if name.startswith("bearer") else None))
    # no keepalive of its own: only the server's pings may end it
    deaf = await connect(ws_url(sites[300].gateway.url),
                         additional_headers={"Authorization": f"Bearer {sites[300].token()}"},
                         ping_interval=None, close_timeout=2)
    seen["deaf"] = Watch()
    work.append(_deaf(deaf, seen["deaf"], time.monotonic()))
    await asyncio.gather(*work)
    return seen


class EarlyWatch:
    """The sites and the watch, run in a thread from the end of collection."""

    def __init__(self) -> None:
        self.sites: dict[int, Site] = {}
        self.seen: dict[str, Watch] = {}
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="defaults-watch", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            tmp = Path(tempfile.mkdtemp(prefix="e2e-defaults-"))
            for lifespan in LIFESPANS:
                self.sites[lifespan] = _start(lifespan, tmp)
            self.seen = asyncio.run(_observe(self.sites))
        except BaseException as exc:  # reported by the tests that wait for it
            self.error = exc

    def result(self) -> EarlyWatch:
        self.start()  # not started yet when the module runs without the hook's session
        assert self.thread is not None
        self.thread.join(WATCH + 300)
        if self.error is not None:
            raise self.error
        assert not self.thread.is_alive(), "the watch at the defaults did not finish"
        return self

    def stop(self) -> None:
        for site in self.sites.values():
            site.gateway.stop()
            site.idp.stop()
        self.sites = {}


EARLY = EarlyWatch()


@pytest.fixture(scope="module")
def early() -> Iterator[EarlyWatch]:
    try:
        yield EARLY.result()
    finally:
        EARLY.stop()


@pytest.fixture(scope="module")
def sites(early: EarlyWatch) -> dict[int, Site]:
    return early.sites


@pytest.fixture(scope="module")
def watched(early: EarlyWatch) -> dict[str, Watch]:
    return early.seen


def _exchanges(site: Site) -> float:
    """Refresh-token exchanges the gateway made at its provider (its /metrics)."""
    text = httpx.get(f"{site.gateway.url}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('gateway_session_refreshes_total{outcome="refreshed"}'))


def _kinds(watch: Watch, prefix: str = "auth.") -> list[str]:
    return [kind for _, kind in watch.frames if kind.startswith(prefix)]


def _times(watch: Watch, kind: str) -> list[float]:
    return [at for at, seen in watch.frames if seen == kind]


@pytest.mark.parametrize("lifespan", LIFESPANS)
def test_a_session_is_refreshed_once_per_token_lifetime_at_the_default_notice(
        sites: dict[int, Site], watched: dict[str, Watch], lifespan: int) -> None:
    watch = watched[f"session-{lifespan}"]
    due = lifespan - min(NOTICE, lifespan / 6)  # 50 s and 250 s after the token was issued
    refreshes = int((WATCH - 1) // due)  # one per due period: 5 for 60 s tokens, 1 for 5 min
    assert watch.closed is None, f"the session socket closed: {watch.closed}"
    assert _kinds(watch) == ["auth.expiring", "auth.refreshed"] * refreshes, watch.frames
    notices = _times(watch, "auth.expiring")
    assert due - 3 <= notices[0] <= due + 5, notices
    assert all(later - earlier >= due - 3 for earlier, later in pairwise(notices)), notices
    assert _exchanges(sites[lifespan]) == refreshes


@pytest.mark.parametrize("lifespan", LIFESPANS)
def test_a_bearer_socket_hears_one_notice_per_token_at_the_default_notice(
        watched: dict[str, Watch], lifespan: int) -> None:
    watch = watched[f"bearer-{lifespan}"]
    due = lifespan - min(NOTICE, lifespan / 6)
    assert watch.closed is None, f"the bearer socket closed: {watch.closed}"
    notices = _times(watch, "auth.expiring")
    assert len(notices) == len(watch.answered) == int((WATCH - 1) // due), watch.frames
    gaps = [notice - answered for answered, notice in zip([0.0, *watch.answered], notices,
                                                          strict=False)]
    assert all(due - 5 <= gap <= due + 5 for gap in gaps), gaps  # the token was minted just before


def test_a_socket_that_stops_answering_pings_closes_at_the_default_interval(
        watched: dict[str, Watch]) -> None:
    """A ping every 20 s, 20 s to answer it: closed with 1011 within 40 s; the sockets
    that answer were open for the whole watch (above)."""
    closed = watched["deaf"].closed
    assert closed is not None and closed[1:] == (1011, "keepalive ping timeout"), closed


@pytest.mark.parametrize("lifespan", LIFESPANS)
async def test_two_rotations_five_seconds_apart_are_accepted_at_the_default_refetch(
        sites: dict[int, Site], lifespan: int) -> None:
    site = sites[lifespan]
    for _ in range(2):
        site.idp.rotate_keys()
        ws = await open_ws(site.gateway.url,
                           headers={"Authorization": f"Bearer {await asyncio.to_thread(site.token)}"})
        try:
            assert json.loads(await ws.recv())["type"] == "welcome"
        finally:
            await ws.close()
        await asyncio.sleep(5)

