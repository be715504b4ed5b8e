"""Back-channel logout latency: provider logout -> last socket of that session closed.

    .venv/bin/python bench/logout.py [--sockets 200] [--rounds 20]

Starts the dev IdP and two gateway processes sharing Redis. Each round logs alice in,
opens N sockets with her session split across both processes, then confirms logout
at the provider, which calls the gateway's back-channel logout endpoint. The latency
is reported twice, both ending when the last socket has received its 4401 close: from
the moment the gateway received the provider's back-channel call (the goal's measure,
taken from the gateway's audit line), and from just before the user's confirming POST
(which adds the provider's own logout work). Goal: p99 under 100 ms.

The session sockets are ``bench/rawws.py`` subscribers (``--client raw``, the default): they
parse frames in place, echo the close frame and note when the server then closed the
connection, the same end as the ``websockets`` client's ``wait_closed`` (``--client
websockets``). Traced rounds showed that client, a reader task per socket with the
provider's logout running in a thread beside it, adding 20-40 ms after the server's last
close under load: the client, not the gateway, set the slowest rounds.

With ``--trace`` the gateways run ``bench.logout_trace:application`` and every round also
prints where its time went (``bench/logout_trace.py``): the token's checks, the database
work, the broadcasts, each process's first and last socket closed, and any collector pause
or loop stall in the round. ``--json FILE`` writes every round's figures (``bench/run-all``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.rawws import CLOSE, Subscriber, Tally, open_subscriber
from bench.stack import bench_env, load_average, raise_file_limit
from devidp.stack import free_port, migrate, start_gateway
from tests.e2e.flows import login, logout_at_provider, open_ws, session_cookie

REDIS_URL = "redis://127.0.0.1:6379/8"


def last_call_received(log: Path) -> float:
    """When the gateway received the provider's latest back-channel logout call."""
    times = [float(json.loads(line)["received_at"]) for line in log.read_text().splitlines()
             if line.startswith("{") and '"backchannel_logout"' in line and '"allow"' in line]
    return max(times)


class SessionSocket(Subscriber):
    """A session socket (``bench/rawws.py``, frames parsed in place) that notes its close:
    when the close frame arrived and its code, then, after echoing it, when the server
    closed the connection: the closing handshake done, which the ``websockets`` client's
    ``wait_closed`` also waits for."""

    code: int | None = None
    frame_at = 0.0
    closed_at = 0.0

    def _frame(self, opcode: int, payload: bytes) -> None:
        if opcode != CLOSE:
            super()._frame(opcode, payload)
            return
        self.frame_at, self.code = time.time(), int.from_bytes(payload[:2], "big")
        self.send(CLOSE, payload[:2])  # and wait for the server to close the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed_at = time.time()
        super().connection_lost(exc)


async def open_raw(url: str, cookie: str) -> SessionSocket:
    ws = url.replace("http://", "ws://") + "/ws/"
    socket, _ = await open_subscriber(ws, {"Cookie": cookie, "Origin": url}, None,
                                      lambda _: True, Tally(0), "127.0.0.1", SessionSocket)
    assert isinstance(socket, SessionSocket)
    return socket


async def closes_raw(urls: list[str], cookie: str, sockets: int,
                     logout: Callable[[], Awaitable[None]]) -> list[float]:
    """When each socket's server closed it (the closing handshake done) after ``logout``."""
    opened = [await open_raw(urls[i % 2], cookie) for i in range(sockets)]
    await logout()
    await asyncio.wait_for(asyncio.gather(*(asyncio.shield(s.closed) for s in opened)), 10)
    assert all(s.code == 4401 for s in opened), {s.code for s in opened}
    return [s.closed_at for s in opened]


async def closes_websockets(urls: list[str], cookie: str, sockets: int,
                            logout: Callable[[], Awaitable[None]]) -> list[float]:
    """The same with the ``websockets`` client (a reader task per socket)."""
    opened = [await open_ws(urls[i % 2], headers={"Cookie": cookie, "Origin": urls[i % 2]})
              for i in range(sockets)]
    for ws in opened:
        await ws.recv()  # welcome
    closed_at: list[float] = []

    async def wait_closed(ws: ClientConnection) -> None:
        await ws.wait_closed()
        assert ws.close_code == 4401, ws.close_code
        closed_at.append(time.time())

    waiters = [asyncio.create_task(wait_closed(ws)) for ws in opened]
    await logout()
    await asyncio.wait_for(asyncio.gather(*waiters), 10)
    return closed_at


CLIENTS = {"raw": closes_raw, "websockets": closes_websockets}


async def one_round(urls: list[str], issuer: str, sockets: int, log: Path,
                    client_kind: str) -> tuple[float, float]:
    """(ms from the user's confirming POST, ms from the provider's back-channel call)."""
    client = login(urls[0], "alice", "alice-password")
    started = 0.0

    async def logout() -> None:
        nonlocal started
        started = time.time()
        await asyncio.to_thread(logout_at_provider, issuer, client)

    closed_at = await CLIENTS[client_kind](urls, session_cookie(client), sockets, logout)
    await asyncio.sleep(0.2)  # let the audit writer thread flush the log line
    received = last_call_received(log)
    assert received >= started
    return (max(closed_at) - started) * 1000, (max(closed_at) - received) * 1000


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def percentiles(values: list[float]) -> str:
    return (f"p50 {statistics.median(values):.1f} ms, p99 {p99(values):.1f} ms, "
            f"max {max(values):.1f} ms")


def trace_lines(trace: Path, start: float, end: float) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in trace.read_text().splitlines() if line]
    return [m for m in lines if start <= m["t"] <= end]


def breakdown(marks: list[dict[str, Any]], received: float) -> str:
    """One round's trace, in ms from the back-channel call received."""
    def at(what: str, pid: int | None = None, last: bool = False) -> str:
        times = [m["t"] for m in marks if m["what"] == what and pid in (None, m["pid"])]
        return f"{((max(times) if last else min(times)) - received) * 1000:.0f}" if times else "-"

    parts = [f"verified {at('verified')}", f"db {at('announce')}",
             f"announced {at('announced')}", f"sent {at('ended')}"]
    for pid in sorted({m["pid"] for m in marks if m["what"] == "closed"}):
        parts.append(f"pid {pid}: revoke {at('revoke', pid)}-{at('revoke', pid, True)} "
                     f"closed {at('closed', pid, True)} lost {at('lost', pid, True)}")
    pauses = [f"{m['what']} {m.get('gen', '')}{' ' if 'gen' in m else ''}{m['ms']} ms "
              f"@{(m['t'] - received) * 1000:.0f} (pid {m['pid']})"
              for m in marks if m["what"] in ("gc", "stall")]
    return "; ".join(parts + pauses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--trace", action="store_true",
                        help="print where each round's time went (bench/logout_trace.py)")
    parser.add_argument("--json", type=Path, help="write the rounds to this file")
    parser.add_argument("--client", choices=tuple(CLIENTS), default="raw",
                        help="session sockets: RFC 6455 parsed in place (bench/rawws.py), or "
                             "the websockets library's client with a reader task per socket")
    args = parser.parse_args()
    raise_file_limit()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()} command: {' '.join(sys.argv)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-logout-"))
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    idp = devidp.start(free_port(), urls[0], extra_gateway_urls=urls[1:], log_file=tmp / "idp.log")
    gateways = []
    trace = tmp / "trace.jsonl"
    app = "bench.logout_trace:application" if args.trace else "config.asgi:application"
    try:
        for index, port in enumerate(ports):
            env = bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3", layer="redis",
                            redis_url=REDIS_URL,
                            extra={"GATEWAY_ALLOWED_ORIGINS": ",".join(urls),
                                   "BENCH_LOGOUT_TRACE": str(trace)})
            if index == 0:
                migrate(env)
            gateways.append(start_gateway(port, env, tmp / f"gateway{index}.log",
                                          app=app))
        rounds = []
        for number in range(1, args.rounds + 1):
            rounds.append(asyncio.run(one_round(urls, idp.issuer, args.sockets,
                                                tmp / "gateway0.log", args.client)))
            print(f"round {number:3}: {rounds[-1][1]:7.1f} ms from the back-channel call, "
                  f"{rounds[-1][0]:7.1f} ms from the confirmation", flush=True)
            if args.trace:
                received = last_call_received(tmp / "gateway0.log")
                marks = trace_lines(trace, received - 0.1, received + rounds[-1][1] / 1000 + 0.05)
                print(f"    {breakdown(marks, received)}", flush=True)
        calls, confirmations = [r[1] for r in rounds], [r[0] for r in rounds]
        print(f"{args.sockets} sockets over 2 processes, {args.rounds} rounds, {args.client} "
              f"client, load {load_average()}")
        print(f"  from the provider's back-channel call: {percentiles(calls)}")
        print(f"  from the user's logout confirmation:   {percentiles(confirmations)}")
        if args.json:
            args.json.write_text(json.dumps({"sockets": args.sockets, "rounds": calls,
                                             "from_confirmation": confirmations,
                                             "p50": statistics.median(calls), "p99": p99(calls),
                                             "load": load_average()}))
    finally:
        for gateway in gateways:
            gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
