"""Handshakes per second and auth-step latency: no auth vs session cookie vs bearer JWT.

    .venv/bin/python bench/handshakes.py [--connections 2000] [--concurrency 50]

Starts the dev IdP and one gateway process (uvicorn), logs a user in for a session
cookie, gets a client_credentials token, then opens N websockets per mode against the
same server and prints rates and ratios. Bearer runs twice: one token reused by every
socket (served from the verified-token cache after the first check) and a distinct token
per socket (every handshake pays the full signature and claim checks). Each socket
waits for the first message, so a handshake counts only once the consumer ran.
Auth-step latency comes from the server's own ``gateway_auth_seconds`` histogram.
Goal: bearer >= 0.9x no-auth.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from devidp.stack import free_port, gateway_env, migrate
from devidp.stack import start_gateway as _start
from tests.e2e.flows import login


def auth_histogram(gateway: str) -> tuple[float, float]:
    text = httpx.get(f"{gateway}/metrics").text
    total = float(re.search(r"^gateway_auth_seconds_sum (\S+)", text, re.M).group(1))
    count = float(re.search(r"^gateway_auth_seconds_count (\S+)", text, re.M).group(1))
    return total, count


async def run_mode(url: str, headers: list[dict[str, str]], n: int, concurrency: int) -> float:
    """Open n sockets (headers used round-robin), each waiting for its first message."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with semaphore, connect(url, additional_headers=headers[index % len(headers)],
                                      compression=None) as ws:
            await ws.recv()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


def service_token(issuer: str) -> str:
    meta = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    response = httpx.post(meta["token_endpoint"], auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
                          data={"grant_type": "client_credentials", "scope": "ws",
                                "resource": devidp.API_AUDIENCE})
    response.raise_for_status()
    return response.json()["access_token"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", log_file=tmp / "idp.log")
    env = gateway_env(idp.issuer, port, database_file=tmp / "db.sqlite3")
    migrate(env)
    env_bench = {**env, "BENCH": "1"}
    gateway = _start(port, env_bench, tmp / "gateway.log", app="bench.asgi:application")
    try:
        cookie = f"sessionid={login(gateway.url, 'bob', 'bob-password').cookies['sessionid']}"
        token = service_token(idp.issuer)
        distinct = [{"Authorization": f"Bearer {service_token(idp.issuer)}"}
                    for _ in range(args.connections)]
        ws = gateway.url.replace("http", "ws")
        modes = {
            "no auth": (f"{ws}/bench/open/", [{}]),
            "session cookie": (f"{ws}/ws/", [{"Cookie": cookie, "Origin": gateway.url}]),
            "bearer, same token": (f"{ws}/ws/", [{"Authorization": f"Bearer {token}"}]),
            "bearer, distinct": (f"{ws}/ws/", distinct),
        }
        asyncio.run(run_mode(modes["no auth"][0], [{}], 200, args.concurrency))  # warm-up
        rates: dict[str, float] = {}
        for name, (url, headers) in modes.items():
            before = auth_histogram(gateway.url)
            rates[name] = asyncio.run(run_mode(url, headers, args.connections, args.concurrency))
            after = auth_histogram(gateway.url)
            count = after[1] - before[1]
            latency = (after[0] - before[0]) / count * 1e6 if count else 0.0
            print(f"{name:20} {rates[name]:8.0f} handshakes/s   auth step {latency:8.1f} us")
        base = rates["no auth"]
        for name in list(modes)[1:]:
            print(f"ratio {name:20} {rates[name] / base:5.2f}x of no-auth")
    finally:
        gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
