"""Grant changes on live sockets: what an admin's edit costs the process holding N subscribers.

    .venv/bin/python bench/grant_change.py [--sockets 2000,5000]

One gateway process on Redis (the pub/sub layer; the admin's edit comes from another
process, as from another gateway's admin page) and the dev IdP. For each N: N ``/ws/events/``
sockets of the service client ``svc-reader`` subscribe to ``bench`` under a grant on its
``client_id``. Then two edits are saved through the admin's ``save_model`` and
``delete_model`` in a separate Django process, as an administrator's would be:

1. **unrelated**: a grant for another group and channel is added. Every ``/ws/events/``
   socket still re-checks its subscriptions; none loses one. Reported: the gateway's CPU
   over the 3 s after the save, less its CPU in the 3 s before (idle background), per socket.
2. **revoke**: the grant the sockets subscribe under is deleted. Every socket gets
   ``{"type": "unsubscribed", "reason": "revoked"}``. Reported: from the commit (the
   admin process's clock after the save) to each socket's notice, p50 / p99 / last, and
   the gateway's CPU from before the save to the last notice, less idle background, per
   socket.

The client runs in this process (uvloop); the gateway's CPU is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.fanout import CHANNEL, SUBSCRIBER_CLIENT, Target, open_all, open_socket, save_grants
from bench.process import run_fast
from bench.stack import bench_env, cpu_seconds, load_average
from devidp.stack import GatewayProcess, free_port, migrate, start_gateway
from tests.e2e.flows import service_token

REDIS_URL = "redis://127.0.0.1:6379/10"
WINDOW = 3.0  # seconds of CPU sampled around the unrelated edit
SOURCE = "127.0.0.10"


def reader_grant(issuer: str) -> dict[str, Any]:
    return {"issuer": issuer, "claim": "client_id", "value": SUBSCRIBER_CLIENT,
            "target": CHANNEL, "subscribe": True}


def unrelated_grant(issuer: str, n: int) -> dict[str, Any]:
    return {"issuer": issuer, "claim": "groups", "value": f"other-{n}", "target": f"other-{n}",
            "subscribe": True}


async def cpu_over(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - before


async def notice_time(ws: Any) -> float:
    """When this socket is told its subscription was revoked."""
    while True:
        frame = await ws.recv()
        if '"unsubscribed"' in frame and '"revoked"' in frame:
            return time.time()


async def one_size(gateway: GatewayProcess, env: dict[str, str], issuer: str, token: str,
                   count: int) -> dict[str, Any]:
    target = Target("G", (f"{gateway.url.replace('http://', 'ws://')}/ws/events/",),
                    {"Authorization": f"Bearer {token}"}, subscribe=True)
    sockets, failures = await open_all(count, 0, 100, lambda i: open_socket(target, i, SOURCE))
    if failures:
        raise RuntimeError(f"{len(failures)} sockets failed, e.g. {failures[0]}")
    pid = gateway.process.pid
    await asyncio.sleep(2.0)  # the connect burst's tail
    idle = await cpu_over(pid, WINDOW)
    edit = asyncio.ensure_future(asyncio.to_thread(
        save_grants, env, [("add", unrelated_grant(issuer, count))]))
    before = cpu_seconds(pid)
    committed = await edit
    await asyncio.sleep(WINDOW)
    unrelated = cpu_seconds(pid) - before - idle / WINDOW * (time.time() - committed + WINDOW)

    notices = [asyncio.ensure_future(notice_time(ws)) for ws in sockets]
    started, before = time.time(), cpu_seconds(pid)
    committed = await asyncio.to_thread(save_grants, env, [("delete", reader_grant(issuer))])
    times = await asyncio.wait_for(asyncio.gather(*notices), 120)
    spent = cpu_seconds(pid) - before - idle / WINDOW * (max(times) - started)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    await asyncio.to_thread(save_grants, env, [("add", reader_grant(issuer))])  # next size
    latencies = sorted(t - committed for t in times)
    return {"sockets": count, "unrelated_us": unrelated / count * 1e6,
            "revoke_us": spent / count * 1e6,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000,
            "last_ms": latencies[-1] * 1000, "load": load_average()}


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-grants-"))
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", access_token_ttl=3600,
                       log_file=tmp / "idp.log")
    gateway = None
    try:
        env = bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3", layer="redis",
                        redis_url=REDIS_URL, extra={"GATEWAY_MAX_SOCKETS_PER_SUBJECT": "0"})
        migrate(env)
        save_grants(env, [("add", reader_grant(idp.issuer))])
        gateway = start_gateway(port, env, tmp / "gateway.log")
        token = service_token(idp.issuer, SUBSCRIBER_CLIENT, "ws", devidp.API_AUDIENCE)
        print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()}")
        print("| sockets | unrelated edit: CPU/socket | revoke: CPU/socket | notice p50 / p99 / "
              "last ms | load |\n|---|---|---|---|---|")
        for count in args.sockets:
            row = await one_size(gateway, env, idp.issuer, token, count)
            print(f"| {row['sockets']:,} | {row['unrelated_us']:.0f} µs | {row['revoke_us']:.0f} µs"
                  f" | {row['p50_ms']:.0f} / {row['p99_ms']:.0f} / {row['last_ms']:.0f} "
                  f"| {row['load']} |", flush=True)
    finally:
        if gateway is not None:
            gateway.stop()
        idp.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", default=[2000, 5000],
                        type=lambda s: [int(n) for n in s.split(",")])
    run_fast(main(parser.parse_args()))
