"""Closed connections leave no cyclic garbage in the real server (issue 20, the soak).

The collector policy (``gateway/ops/gcpolicy.py``) freezes what survives each 0.1 s
round, so anything that becomes a reference cycle after being frozen is never freed. Over
real sockets the soak (``bench/soak.py``) found two such cycles per connection, each
holding the whole connection (about 12 KiB): the scope's ``gateway.write_now`` extension
bound to the websocket protocol, and uvicorn's HTTP parser bound to the HTTP protocol it
upgraded from. And one per session read: asgiref re-raises the ``AttributeError`` that
Django's lazy session load was handling, leaving a traceback cycle; and one per plain HTTP
request, Django's ``RequestAborted`` re-raised and ignored (``gateway/ops/httpapp.py``).
A third per connection hid from the first probe: websockets' ``ServerProtocol`` and its
parser generator, whose frame holds the protocol (``config.hardening`` ends the generator
when the connection is lost). A collection frees such a cycle while finalizing the
generator, so it never reaches ``gc.garbage``: the probe counts what the collection freed.

The probe waits, as the policy's rounds do, until no plain HTTP request is in flight: a
request's thread, with its database connection's wrapper (a cycle of its own), ends only
when the request's context has joined it, after its client has the response. Under load
a probe that froze before that stranded the wrapper, and this test saw it (3 runs in 4
with two CPU burners beside it, none in 5 since); the rounds do not freeze while a
request is in flight (`gateway.ops.gcpolicy`). The requests are probed
apart, for their own cycles, before the sockets.

The gateway here runs ``bench.asgi:application``, whose ``/bench/garbage/`` reports what a
full collection, frozen objects included, would find unreachable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

import devidp
from bench.stack import garbage_report
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import login, open_ws, service_token, session_cookie

SOCKETS = 60
CONNECTION_TYPES = {"WebSocketProtocol", "HttpToolsProtocol", "ServerProtocol",
                    "TCPTransport", "HttpRequestParser"}


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[devidp.DevIdp,
                                                                       GatewayProcess]]:
    tmp = tmp_path_factory.mktemp("collector")
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", log_file=tmp / "idp.log")
    env = gateway_env(idp.issuer, port, database_file=tmp / "db.sqlite3")
    migrate(env)
    gateway = start_gateway(port, env, tmp / "gateway.log", app="bench.asgi:application")
    try:
        yield idp, gateway
    finally:
        gateway.stop()
        idp.stop()


async def test_closed_connections_leave_no_cycles_for_the_frozen_generation(
        probed: tuple[devidp.DevIdp, GatewayProcess]) -> None:
    idp, gateway = probed
    token = service_token(idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
    await garbage_report(gateway.url)  # start from a clean slate: startup leftovers freed
    for _ in range(10):  # plain HTTP requests too
        assert httpx.get(f"{gateway.url}/healthz").status_code == 200
    cookie = session_cookie(login(gateway.url, "alice", "alice-password"))
    requests = await garbage_report(gateway.url)
    assert not {"ASGIRequest", "CallbackView"} & set(dict(requests["by_type"])), requests
    assert not {"AttributeError", "RequestAborted"} & set(dict(requests["exceptions"])), requests
    for n in range(SOCKETS):
        headers = ({"Cookie": cookie, "Origin": gateway.url} if n % 2
                   else {"Authorization": f"Bearer {token}"})
        ws = await open_ws(gateway.url, headers=headers)
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.close()
    found = await garbage_report(gateway.url)
    by_type = dict(found["by_type"])
    assert not CONNECTION_TYPES & set(by_type), found
    assert not {"AttributeError", "RequestAborted"} & set(dict(found["exceptions"])), found
    assert "DatabaseWrapper" not in by_type, found
    assert found["unreachable"] < SOCKETS, found
