"""Issue 10: the production launch (``config.serve``) with two workers and Redis.

Every gateway here starts the way ``scripts/serve`` starts it. Which worker holds a
socket is read from the kernel: the worker process whose descriptors include the
server end of the client's TCP connection (``/proc/net/tcp`` and ``/proc/<pid>/fd``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import devidp
from devidp.stack import ROOT, GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import first_message, open_ws, user_tokens

REDIS_URL = "redis://127.0.0.1:6379/11"
CHANNEL = "serve-test"
DRAIN_SECONDS = 5
HANDSHAKE_TIMEOUT = 1.0
PING_SECONDS = 2  # GATEWAY_WS_PING_SECONDS: a ping every 2 s, and 2 s to answer it
GRANT_SCRIPT = f"""
import sys
from gateway.models import Grant
Grant.objects.get_or_create(issuer=sys.argv[-1], claim="groups", value="engineering",
                            target="{CHANNEL}", defaults={{"subscribe": True, "publish": True}})
"""


@dataclass
class Served:
    idp: devidp.DevIdp
    tmp: Path

    def start(self, name: str) -> GatewayProcess:
        port = free_port()
        env = gateway_env(self.idp.issuer, port, database_file=self.tmp / "db.sqlite3",
                          redis_url=REDIS_URL,
                          extra={"GATEWAY_DRAIN_SECONDS": str(DRAIN_SECONDS),
                                 "GATEWAY_HANDSHAKE_TIMEOUT_SECONDS": str(HANDSHAKE_TIMEOUT),
                                 # twin at the default: tests/e2e/test_defaults.py,
                                 # test_a_socket_that_stops_answering_pings_closes_at_the_default_interval
                                 "GATEWAY_WS_PING_SECONDS": str(PING_SECONDS),
                                 "GATEWAY_MAX_SOCKETS_PER_SUBJECT": "0"})
        migrate(env)
        grant = subprocess.run([sys.executable, "-c", "import django; django.setup()\n"
                                + GRANT_SCRIPT, self.idp.issuer], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=60)
        assert grant.returncode == 0, grant.stderr[-2000:]
        return start_gateway(port, env, self.tmp / f"{name}.log", workers=2)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    idp = devidp.start(free_port(), "http://127.0.0.1:1", log_file=tmp / "idp.log")
    try:
        yield Served(idp, tmp)
    finally:
        idp.stop()


@pytest.fixture(scope="module")
def gateway(served: Served) -> Iterator[GatewayProcess]:
    process = served.start("gateway")
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def bob_token(served: Served) -> str:
    """A fresh token per test: the provider's 300 s lifetime is shorter than this module
    under load, and an expired token closes the socket right after its welcome."""
    return str(user_tokens(served.idp.issuer, "http://127.0.0.1:1", "bob",
                           "bob-password")["access_token"])


# --- which worker holds a socket --------------------------------------------------


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def workers(gateway: GatewayProcess) -> set[int]:
    """The server's worker processes (not multiprocessing's resource tracker)."""
    found = set()
    for pid in _children(gateway.process.pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


def _tcp_inode(server_port: int, client_port: int) -> str:
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    raise AssertionError(f"no server end for client port {client_port}")


def worker_of(gateway: GatewayProcess, ws: ClientConnection) -> int:
    for _ in range(20):  # a worker's descriptor table may be read mid-update: look again
        with contextlib.suppress(AssertionError):
            return _worker_of(gateway, ws)
        time.sleep(0.05)
    raise AssertionError(f"no worker holds this socket (closed by the server: code "
                         f"{ws.close_code}, reason {ws.close_reason!r}); "
                         f"gateway log: {gateway.log()[-1500:]}")


def _worker_of(gateway: GatewayProcess, ws: ClientConnection) -> int:
    inode = f"socket:[{_tcp_inode(gateway.port, ws.local_address[1])}]"
    for pid in workers(gateway):
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir():
            try:
                if os.readlink(fd) == inode:
                    return pid
            except OSError:
                continue
    raise AssertionError("no worker holds this socket")


async def sockets_on_both_workers(gateway: GatewayProcess, token: str, path: str = "/ws/events/",
                                  ) -> dict[int, list[ClientConnection]]:
    """Open sockets until each of the two workers holds at least two."""
    by_worker: dict[int, list[ClientConnection]] = {}
    for _ in range(60):
        ws = await open_ws(gateway.url, path=path, headers={"Authorization": f"Bearer {token}"})
        by_worker.setdefault(worker_of(gateway, ws), []).append(ws)
        if len(by_worker) == 2 and all(len(s) >= 2 for s in by_worker.values()):
            return by_worker
    raise AssertionError(f"sockets landed on {len(by_worker)} worker(s) only")


async def request(ws: ClientConnection, type_: str, **fields: object) -> dict[str, Any]:
    await ws.send(json.dumps({"v": 1, "type": type_, "id": 1, **fields}))
    while True:
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if reply.get("id") == 1:
            return reply


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame.get("type") == "message":
            return frame


# --- workers and Redis ------------------------------------------------------------


async def test_sockets_land_on_both_workers_and_hear_what_the_other_publishes(
        gateway: GatewayProcess, bob_token: str) -> None:
    by_worker = await sockets_on_both_workers(gateway, bob_token)
    everyone = [ws for sockets in by_worker.values() for ws in sockets]
    for ws in everyone:
        assert (await request(ws, "subscribe", channel=CHANNEL))["type"] == "ack"
    for publisher_pid, sockets in by_worker.items():
        payload = {"from": publisher_pid}
        assert (await request(sockets[0], "publish", channel=CHANNEL,
                              payload=payload))["type"] == "ack"
        for pid, receivers in by_worker.items():
            for ws in receivers:
                got = await next_message(ws)
                assert (got["channel"], got["payload"]) == (CHANNEL, payload), (pid, got)
    for ws in everyone:
        await ws.close()


async def test_permessage_deflate_is_declined_unless_configured(gateway: GatewayProcess,
                                                                bob_token: str) -> None:
    """Browsers offer compression; the gateway writes each frame once, uncompressed."""
    from websockets.asyncio.client import connect

    url = gateway.url.replace("http://", "ws://") + "/ws/events/"
    async with connect(url, compression="deflate", open_timeout=5,
                       additional_headers={"Authorization": f"Bearer {bob_token}"}) as ws:
        assert ws.response is not None
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert (await request(ws, "ping"))["type"] == "ack"


async def test_sigterm_drains_every_socket_of_both_workers_with_1001(served: Served,
                                                                    bob_token: str) -> None:
    doomed = served.start("doomed")
    try:
        by_worker = await sockets_on_both_workers(doomed, bob_token, path="/ws/")
        sockets = [ws for group in by_worker.values() for ws in group]
        for ws in sockets:
            await first_message(ws)
        doomed.process.terminate()
        closes = await asyncio.gather(*(_close_of(ws) for ws in sockets))
        assert set(closes) == {(1001, "shutdown")}, closes
        assert doomed.process.wait(timeout=DRAIN_SECONDS + 10) == 0
        assert "Traceback" not in doomed.log(), doomed.log()[-3000:]
    finally:
        doomed.stop()


async def _close_of(ws: ClientConnection) -> tuple[int, str]:
    try:
        frame = await asyncio.wait_for(ws.recv(), DRAIN_SECONDS + 5)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError(f"socket still open, got {frame!r}")


async def test_a_socket_that_stops_answering_pings_is_closed_with_1011(
        gateway: GatewayProcess, bob_token: str) -> None:
    bearer = {"Authorization": f"Bearer {bob_token}"}
    silent, answering = await open_ws(gateway.url, headers=bearer), await open_ws(
        gateway.url, headers=bearer)
    for ws in (silent, answering):
        assert (await first_message(ws))["type"] == "welcome"
    silent.transport.pause_reading()  # its pings go unread, so no pong goes back
    await asyncio.sleep(2 * PING_SECONDS + 2)  # uvicorn's default would wait 40 s
    silent.transport.resume_reading()
    assert await _close_of(silent) == (1011, "keepalive ping timeout")
    await asyncio.wait_for(await answering.ping(), GENEROUS)  # answered pings keep it open
    await answering.close()


# --- request-head limits ----------------------------------------------------------


async def test_a_12_kib_bearer_token_opens_a_socket_through_the_authorization_header(
        served: Served, gateway: GatewayProcess) -> None:
    groups = [f"enterprise-group-{i:04d}-with-a-long-descriptive-name" for i in range(170)]
    served.idp.set_groups("bob", ["engineering", *groups], ["developer"])
    try:
        token = user_tokens(served.idp.issuer, "http://127.0.0.1:1", "bob",
                            "bob-password")["access_token"]
    finally:
        served.idp.set_groups("bob", ["engineering"], ["developer"])
    assert 12 * 1024 <= len(token) < 16 * 1024, len(token)
    ws = await open_ws(gateway.url, headers={"Authorization": f"Bearer {token}"})
    welcome = await first_message(ws)
    assert welcome["type"] == "welcome"
    assert welcome["principal"]["subject"] == "bob"
    await ws.close()


HANDSHAKE = (b"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n")
GENEROUS = 15.0  # fails a server that leaves the connection open; not a timing budget


def exchange(port: int, payload: bytes) -> tuple[bytes, bool]:
    """Send ``payload`` (as much as the server takes), read until the server closes.

    Returns (what the server answered, whether it closed the connection).
    """
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(GENEROUS)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)  # the server may stop reading: its answer still waits
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            return answer, False
        except ConnectionResetError:
            pass
        return answer, True


PLAIN = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


def refusals(gateway: GatewayProcess, since: int,
             wait: float = 3.0) -> list[tuple[str, str | None]]:
    """(reason, detail) of the server's ``http`` denials in the gateway's audit log after
    its first ``since`` characters (the log file outlives one test), waiting a little for
    the first (the audit writer runs every 50 ms)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for line in gateway.log()[since:].splitlines():
            start = line.find('{"ts"')
            if start >= 0 and '"event": "http"' in line:
                event = json.loads(line[start:])
                found.append((event["reason"], event.get("detail")))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024])
@pytest.mark.parametrize("head", [HANDSHAKE, PLAIN], ids=["handshake", "plain request"])
def test_an_oversized_header_line_gets_431_and_a_closed_connection(
        gateway: GatewayProcess, size: int, head: bytes) -> None:
    mark = len(gateway.log())
    answer, closed = exchange(gateway.port, head + b"X-Big: " + b"a" * size + b"\r\n\r\n")
    assert closed, "the connection was left open"
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 431 Request Header Fields Too Large",
                                           b"HTTP/1.1 400 Bad Request"), answer[:200]
    assert [reason for reason, _ in refusals(gateway, mark)] == ["head_too_large"]


@pytest.mark.parametrize("head", [
    HANDSHAKE.replace(b"/ws/", b"/ws/caf\xc3\xa9") + b"\r\n",
    HANDSHAKE + b"X-Odd: a\x01b\r\n\r\n",
    b"GET /ws/ HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
], ids=["non-ASCII target", "control character in a value", "header line without a colon"])
def test_a_malformed_head_gets_400_and_is_audited(gateway: GatewayProcess, head: bytes) -> None:
    mark = len(gateway.log())
    answer, closed = exchange(gateway.port, head)
    assert closed, "the connection was left open"
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 400 Bad Request", answer[:200]
    assert [reason for reason, _ in refusals(gateway, mark)] in (["bad_request"], ["bad_handshake"])


def test_a_handshake_over_http_1_0_is_refused(gateway: GatewayProcess) -> None:
    """RFC 6455 §4.1: the opening handshake is an HTTP/1.1 request."""
    mark = len(gateway.log())
    answer, closed = exchange(gateway.port, HANDSHAKE.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n")
    assert closed, "the connection was left open"
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 505 HTTP Version Not Supported", answer[:200]
    assert refusals(gateway, mark) == [("bad_handshake", "505 HTTP Version Not Supported")]


@pytest.mark.parametrize("head", [HANDSHAKE, PLAIN], ids=["handshake", "plain request"])
def test_a_head_over_the_cap_in_short_lines_sent_at_once_gets_431(
        gateway: GatewayProcess, head: bytes) -> None:
    """Every line is short: the cap is on the whole head (GATEWAY_MAX_HEADER_BYTES, 32 KiB),
    also when it all arrives in one read and parses complete."""
    lines = b"".join(b"X-Line-%d: %s\r\n" % (n, b"a" * 90) for n in range(400))  # 40 KiB
    mark = len(gateway.log())
    answer, closed = exchange(gateway.port, head + lines + b"\r\n")
    assert closed, "the connection was left open"
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 431 Request Header Fields Too Large", \
        answer[:200]
    assert [reason for reason, _ in refusals(gateway, mark)] == ["head_too_large"]


@pytest.mark.parametrize("sent", [HANDSHAKE, b""], ids=["half a handshake", "nothing"])
def test_a_handshake_not_completed_in_time_is_closed(gateway: GatewayProcess,
                                                      sent: bytes) -> None:
    started, mark = time.monotonic(), len(gateway.log())
    answer, closed = exchange(gateway.port, sent)  # the blank line never comes
    assert closed, "the connection was left open"
    assert time.monotonic() - started >= HANDSHAKE_TIMEOUT * 0.9  # closed by the limit
    assert answer in (b"", b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                           b"connection: close\r\n\r\n")
    # a half-sent head is a refused request; a connection that sent nothing is not one
    expected = [("head_timeout", None)] if sent else []
    assert refusals(gateway, mark, wait=1.0 if sent else 0.5) == expected


async def test_sigusr1_restarts_one_worker_closing_its_sockets_with_1012(
        gateway: GatewayProcess, bob_token: str) -> None:
    by_worker = await sockets_on_both_workers(gateway, bob_token, path="/ws/")
    for group in by_worker.values():
        for ws in group:
            await first_message(ws)
    restarted, kept = list(by_worker)
    os.kill(restarted, signal.SIGUSR1)
    closes = await asyncio.gather(*(_close_of(ws) for ws in by_worker[restarted]))
    assert set(closes) == {(1012, "restart")}, closes
    for ws in by_worker[kept]:  # the other worker's sockets stay open
        await ws.send("still there?")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "error"
        await ws.close()
    for _ in range(150):  # the supervisor replaces the worker
        now = workers(gateway)
        if len(now) == 2 and restarted not in now and kept in now:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the restarted worker was not replaced")


def test_static_files_are_served_in_production_mode(served: Served, tmp_path: Path) -> None:
    """DEBUG off: the launcher collects static files and ServeStatic serves them (styled admin),
    asynchronously: the process never logs Django's sync-iterator warning."""
    port = free_port()
    env = gateway_env(served.idp.issuer, port, database_file=tmp_path / "db.sqlite3",
                      extra={"GATEWAY_DEV": "false",
                             "GATEWAY_SECRET_KEY": "e2e-production-mode-secret-key-0123456789-abcdefghij"})
    migrate(env)
    process = start_gateway(port, env, tmp_path / "prod.log", workers=1)
    try:
        css = httpx.get(f"{process.url}/static/admin/css/base.css", timeout=10)
        admin = httpx.get(f"{process.url}/admin/login/", timeout=10)
    finally:
        process.stop()
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert b"body" in css.content
    assert admin.status_code == 200
    assert "/static/admin/css/base." in admin.text  # the page links the collected stylesheet
    assert "StreamingHttpResponse must consume synchronous iterators" not in process.log()


def test_a_large_body_sent_with_its_head_is_not_mistaken_for_a_large_head(
        gateway: GatewayProcess) -> None:
    """A 70 KB POST in one write reaches the view (413 from the publish API), not 431."""
    body = b'{"channel": "deploys", "payload": "' + b"x" * 70_000 + b'"}'
    request = (b"POST /api/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer x\r\nContent-Length: " + str(len(body)).encode()
               + b"\r\nConnection: close\r\n\r\n" + body)
    answer, _ = exchange(gateway.port, request)
    assert not answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert answer.startswith(b"HTTP/1.1 4")
