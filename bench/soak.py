"""Soak: thousands of sockets churn for a long time with short tokens, every knob at its default.

    .venv/bin/python bench/soak.py [--minutes 30] [--sessions 40] [--per-session 20]
                                   [--bearers 1000] [--token-ttl 60] [--sample 30]

One gateway process (production settings, in-memory layer, SQLite) and the dev provider
issuing ``--token-ttl`` second access and ID tokens. The load, from this process:
- ``--sessions`` browser sessions (alice and bob, logged in through the provider's form),
  each holding ``--per-session`` sockets on ``/ws/events/`` subscribed to a granted
  channel. The gateway refreshes them server-side. Every few minutes a session logs out
  at the provider (back-channel logout closes its sockets with 4401) and logs in again;
- ``--bearers`` service sockets (``svc-reader`` tokens) that answer each ``auth.expiring``
  with a fresh token in band;
- every socket closes after 20-120 s and opens again.

Every ``--sample`` seconds it prints one row from the gateway's ``/metrics`` and ``/proc``:
its RSS, open sockets, tasks on its loop, the timers and tasks of closed sockets still
pending (``gateway_closed_socket_work``, which must be 0), and refresh-token exchanges per
session and lifetime. At the end all sockets close and a last row is taken: memory is
compared with where it levelled off (the median of the rows in the second third of the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.fanout import save_grants
from bench.stack import bench_env, descendants, garbage_report, heap_report, load_average, raise_file_limit
from devidp.stack import free_port, migrate, start_gateway
from tests.e2e.flows import login, logout_at_provider, open_ws, service_token, session_cookie

CHANNEL = "soak"
USERS = (("alice", "alice-password"), ("bob", "bob-password"))


@dataclass
class Counts:
    opened: int = 0
    closed_by_server: dict[int, int] = field(default_factory=dict)
    notices: int = 0
    reauths: int = 0
    refreshed_frames: int = 0
    logouts: int = 0
    errors: int = 0


class Tokens:
    """One svc-reader token shared by every bearer socket, renewed when half-spent."""

    def __init__(self, issuer: str, ttl: float) -> None:
        self.issuer, self.ttl = issuer, ttl
        self.value, self.at = "", 0.0
        self.lock = asyncio.Lock()

    async def get(self) -> str:
        async with self.lock:
            if time.monotonic() - self.at > self.ttl / 2:
                self.value = await asyncio.to_thread(service_token, self.issuer, "svc-reader",
                                                     "ws", "urn:wsgateway:api")
                self.at = time.monotonic()
            return self.value


async def _subscribe(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"v": 1, "type": "subscribe", "id": 1, "channel": CHANNEL}))


async def _live(ws: ClientConnection, seconds: float, counts: Counts,
                tokens: Tokens | None) -> None:
    """Hold ``ws`` for ``seconds``, answering notices; then close it."""
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), left))
            except TimeoutError:
                break
            kind = frame.get("type")
            if kind == "auth.expiring":
                counts.notices += 1
                if tokens is not None:
                    counts.reauths += 1
                    await ws.send(json.dumps({"v": 1, "type": "auth", "id": 2,
                                              "token": await tokens.get()}))
            elif kind == "auth.refreshed":
                counts.refreshed_frames += 1
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else 1006
        counts.closed_by_server[code] = counts.closed_by_server.get(code, 0) + 1
    finally:  # also when the run stops (cancelled): the server must see every close
        with contextlib.suppress(Exception):
            await ws.close()


async def bearer_loop(url: str, tokens: Tokens, counts: Counts, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            ws = await open_ws(url, path="/ws/events/",
                               headers={"Authorization": f"Bearer {await tokens.get()}"})
            counts.opened += 1
            await _subscribe(ws)
            await _live(ws, random.uniform(20, 120), counts, tokens)
        except Exception:
            counts.errors += 1
            await asyncio.sleep(1)


async def session_sockets(url: str, cookie: str, until: float, counts: Counts,
                          stop: asyncio.Event) -> None:
    """One socket of a session, reopened after each close until ``until``."""
    while not stop.is_set() and time.monotonic() < until:
        try:
            ws = await open_ws(url, path="/ws/events/", headers={"Cookie": cookie, "Origin": url})
        except Exception:
            counts.errors += 1
            return
        counts.opened += 1
        await _subscribe(ws)
        await _live(ws, min(random.uniform(20, 120), max(1.0, until - time.monotonic())),
                    counts, None)


async def session_loop(url: str, issuer: str, per_session: int, counts: Counts,
                       stop: asyncio.Event, index: int) -> None:
    user, password = USERS[index % len(USERS)]
    while not stop.is_set():
        client = await asyncio.to_thread(login, url, user, password)
        until = time.monotonic() + random.uniform(120, 360)  # then log out, log in again
        await asyncio.gather(*(session_sockets(url, session_cookie(client), until, counts, stop)
                               for _ in range(per_session)))
        if not stop.is_set():
            await asyncio.to_thread(logout_at_provider, issuer, client)
            counts.logouts += 1


def _metrics(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("gateway_") and " " in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _worker_pid(gateway_pid: int) -> int:
    return descendants(gateway_pid)[-1]


def sample(url: str, pid: int, started: float) -> dict[str, float]:
    m = _metrics(url)
    return {"minute": (time.monotonic() - started) / 60, "rss": _rss_mib(pid),
            "open": m.get("gateway_open_connections", 0),
            "tasks": m.get("gateway_event_loop_tasks", 0),
            "closed_work": m.get("gateway_closed_socket_work", 0),
            "refreshes": sum(v for k, v in m.items()
                             if k.startswith("gateway_session_refreshes_total{"))}


def row(s: dict[str, float], counts: Counts) -> str:
    return (f"{s['minute']:6.1f} min  rss {s['rss']:7.1f} MiB  open {s['open']:6.0f}  "
            f"loop tasks {s['tasks']:6.0f}  closed-socket work {s['closed_work']:3.0f}  "
            f"refreshes {s['refreshes']:5.0f}  notices {counts.notices}  "
            f"reauths {counts.reauths}  logouts {counts.logouts}  opened {counts.opened}  "
            f"errors {counts.errors}")


async def drive(args: argparse.Namespace, url: str, issuer: str, pid: int) -> None:
    counts, stop = Counts(), asyncio.Event()
    tokens = Tokens(issuer, args.token_ttl)
    started = time.monotonic()
    load = [asyncio.create_task(bearer_loop(url, tokens, counts, stop))
            for _ in range(args.bearers)]
    load += [asyncio.create_task(session_loop(url, issuer, args.per_session, counts, stop, i))
             for i in range(args.sessions)]
    samples: list[dict[str, float]] = []
    while time.monotonic() - started < args.minutes * 60:
        await asyncio.sleep(args.sample)
        samples.append(await asyncio.to_thread(sample, url, pid, started))
        print(row(samples[-1], counts), flush=True)
        if args.heap:
            print(f"    heap: {await heap_report(url)}", flush=True)
        if args.trace:  # the first is the baseline; later ones say where memory grew since
            for line in (await garbage_report(url))["grown"]:
                print(f"    grew: {line}", flush=True)
    stop.set()
    for task in load:
        task.cancel()
    await asyncio.gather(*load, return_exceptions=True)
    if args.heap:
        for _ in range(2):
            print(f"    heap after the load: {await heap_report(url)}", flush=True)
            await asyncio.sleep(5)
        print(f"    garbage: {await garbage_report(url)}", flush=True)
        print(f"    heap after that: {await heap_report(url)}", flush=True)
    await asyncio.sleep(15)  # every close handled, the collector has run
    final = await asyncio.to_thread(sample, url, pid, started)
    print(row(final, counts))
    print(f"unreachable objects (frozen ones included): {await garbage_report(url)}")
    report(samples, final, counts, args)


def report(samples: list[dict[str, float]], final: dict[str, float], counts: Counts,
           args: argparse.Namespace) -> None:
    third = max(1, len(samples) // 3)
    level = statistics.median(s["rss"] for s in samples[third:2 * third] or samples)
    peak_work = max(s["closed_work"] for s in samples)
    session_lifetimes = args.sessions * args.minutes * 60 / args.token_ttl
    print(f"\nRSS levelled at {level:.1f} MiB (median of the second third), under load at the "
          f"end {samples[-1]['rss']:.1f} MiB ({(samples[-1]['rss'] / level - 1) * 100:+.1f}%), "
          f"idle after the run {final['rss']:.1f} MiB")
    print(f"closed-socket timers and tasks: at most {peak_work:.0f} in any sample, "
          f"{final['closed_work']:.0f} at the end; loop tasks at the end {final['tasks']:.0f}")
    print(f"refresh-token exchanges: {final['refreshes']:.0f} for {args.sessions} sessions over "
          f"{args.minutes} min, {final['refreshes'] / session_lifetimes:.2f} per session and "
          f"{args.token_ttl:.0f} s token lifetime")
    print(f"server closes by code: {counts.closed_by_server}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--per-session", type=int, default=20)
    parser.add_argument("--bearers", type=int, default=1000)
    parser.add_argument("--token-ttl", type=int, default=60)
    parser.add_argument("--sample", type=float, default=30)
    parser.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the gateway (e.g. MALLOC_ARENA_MAX=2)")
    parser.add_argument("--heap", action="store_true",
                        help="print where the gateway's memory is, by allocator, at each sample")
    parser.add_argument("--trace", action="store_true",
                        help="run the gateway under tracemalloc and print where memory grew "
                             "between the first sample and the end (slow: diagnosis only)")
    args = parser.parse_args()
    raise_file_limit()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()} command: {' '.join(sys.argv)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = devidp.start(free_port(), url, log_file=tmp / "idp.log",
                       access_token_ttl=args.token_ttl, id_token_ttl=args.token_ttl)
    extra = dict(item.split("=", 1) for item in args.gateway_env)
    if args.trace:
        extra["PYTHONTRACEMALLOC"] = "1"
    env = bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3", extra=extra)
    migrate(env)
    save_grants(env, [("add", {"issuer": idp.issuer, "claim": "groups", "value": "engineering",
                               "target": CHANNEL, "subscribe": True}),
                      ("add", {"issuer": idp.issuer, "claim": "client_id", "value": "svc-reader",
                               "target": CHANNEL, "subscribe": True})])
    gateway = start_gateway(port, env, tmp / "gateway.log", app="bench.asgi:application")
    try:
        asyncio.run(drive(args, url, idp.issuer, _worker_pid(gateway.process.pid)))
    finally:
        gateway.stop()
        idp.stop()
    print(f"logs in {tmp}")


if __name__ == "__main__":
    main()
