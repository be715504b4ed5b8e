"""Back-channel logout latency: provider logout -> last socket of that session closed.

    .venv/bin/python bench/logout.py [--sockets 200] [--rounds 20]

Starts the dev IdP and two gateway processes sharing Redis. Each round logs alice in,
opens N sockets with her session split across both processes, then confirms logout
at the provider, which calls the gateway's back-channel logout endpoint. The latency
runs from just before the confirming POST (so it includes the provider's own work)
to the moment the last socket has received its 4401 close. Goal: p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from devidp.stack import free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import login, logout_at_provider, open_ws, session_cookie

REDIS_URL = "redis://127.0.0.1:6379/8"


async def one_round(urls: list[str], issuer: str, sockets: int) -> float:
    client = login(urls[0], "alice", "alice-password")
    cookie = session_cookie(client)
    opened = [await open_ws(urls[i % 2], headers={"Cookie": cookie, "Origin": urls[i % 2]})
              for i in range(sockets)]
    for ws in opened:
        await ws.recv()  # welcome
    closed_at: list[float] = []

    async def wait_closed(ws) -> None:
        await ws.wait_closed()
        assert ws.close_code == 4401, ws.close_code
        closed_at.append(time.perf_counter())

    waiters = [asyncio.create_task(wait_closed(ws)) for ws in opened]
    started = time.perf_counter()
    await asyncio.to_thread(logout_at_provider, issuer, client)
    await asyncio.wait_for(asyncio.gather(*waiters), 10)
    return (max(closed_at) - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-logout-"))
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    idp = devidp.start(free_port(), urls[0], extra_gateway_urls=urls[1:], log_file=tmp / "idp.log")
    gateways = []
    try:
        for index, port in enumerate(ports):
            env = gateway_env(idp.issuer, port, database_file=tmp / "db.sqlite3",
                              redis_url=REDIS_URL,
                              extra={"GATEWAY_ALLOWED_ORIGINS": ",".join(urls)})
            if index == 0:
                migrate(env)
            gateways.append(start_gateway(port, env, tmp / f"gateway{index}.log"))
        latencies = [asyncio.run(one_round(urls, idp.issuer, args.sockets))
                     for _ in range(args.rounds)]
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(f"{args.sockets} sockets over 2 processes, {args.rounds} rounds: "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, "
              f"max {latencies[-1]:.1f} ms")
    finally:
        for gateway in gateways:
            gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
