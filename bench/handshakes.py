"""Handshakes per second and auth-step latency: no auth vs session cookie vs bearer JWT vs ticket.

    .venv/bin/python bench/handshakes.py [--connections 2000] [--concurrency 50]

The gateway runs with DEBUG off (``bench/stack.py``), and L, a bare ``websockets``
server in its own process (``bench/bare.py``), runs in every round beside the modes.

Starts the dev IdP and one gateway process (uvicorn), logs a user in for a session
cookie, gets a client_credentials token, then opens N websockets per mode against the
same server and prints rates and ratios. Bearer runs twice: one token reused by every
socket (served from the verified-token cache after the first check) and a distinct token
per socket (every handshake pays the full signature and claim checks). Tickets are
minted with the bearer token just before their mode runs (one per socket, outside the
measured window), and each socket presents its own. Each socket
waits for the first message, so a handshake counts only once the consumer ran.
Auth-step latency comes from the server's own ``gateway_auth_seconds`` histogram.
Goal: bearer >= 0.9x no-auth.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.stack import BareServer, bench_env, load_average, raise_file_limit
from devidp.stack import free_port, migrate
from devidp.stack import start_gateway as _start
from tests.e2e.flows import login, service_token


def auth_histogram(gateway: str | None) -> tuple[float, float]:
    if gateway is None:  # L has no histogram
        return 0.0, 0.0
    text = httpx.get(f"{gateway}/metrics").text
    return _metric(text, "gateway_auth_seconds_sum"), _metric(text, "gateway_auth_seconds_count")


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)", text, re.M)
    if found is None:
        raise RuntimeError(f"/metrics has no {name}")
    return float(found.group(1))


async def run_mode(url: str, headers: list[dict[str, str]], n: int, concurrency: int,
                   subprotocols: list[str] | None = None) -> float:
    """Open n sockets (headers used round-robin; ``subprotocols``, if given, one per
    socket), each waiting for its first message."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        offered = None if subprotocols is None else [Subprotocol("gateway.v1"),
                                                     Subprotocol(subprotocols[index])]
        async with semaphore, connect(url, additional_headers=headers[index % len(headers)],
                                      subprotocols=offered, compression=None) as ws:
            await ws.recv()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


async def service_tokens(issuer: str, n: int, concurrency: int = 20) -> list[str]:
    """n distinct client_credentials tokens from the provider (each a new jti)."""
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:
        meta = (await client.get(f"{issuer}/.well-known/openid-configuration")).json()

        async def one() -> str:
            async with semaphore:
                response = await client.post(
                    meta["token_endpoint"], auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
                    data={"grant_type": "client_credentials", "scope": "ws",
                          "resource": devidp.API_AUDIENCE})
            response.raise_for_status()
            return str(response.json()["access_token"])

        return await asyncio.gather(*(one() for _ in range(n)))


async def mint_tickets(gateway: str, token: str, n: int, concurrency: int = 20) -> list[str]:
    """n one-time tickets minted with a bearer token (``POST /ws/ticket``), as subprotocols."""
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient() as client:
        async def one() -> str:
            async with semaphore:
                response = await client.post(f"{gateway}/ws/ticket",
                                             headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()
            return f"gateway.ticket.{response.json()['ticket']}"

        return await asyncio.gather(*(one() for _ in range(n)))


from bench.stack import cpu_seconds  # noqa: E402 - server and its workers, from /proc


@dataclass
class Sample:
    rate: float  # handshakes per second, client side
    server_cpu_us: float  # gateway CPU time per handshake
    auth_us: float  # mean of the gateway's own auth-step histogram


def measure(metrics: str | None, pid: int, url: str, headers: list[dict[str, str]], n: int,
            concurrency: int, subprotocols: list[str] | None = None) -> Sample:
    hist_before, cpu_before = auth_histogram(metrics), cpu_seconds(pid)
    rate = asyncio.run(run_mode(url, headers, n, concurrency, subprotocols))
    hist_after, cpu_after = auth_histogram(metrics), cpu_seconds(pid)
    count = hist_after[1] - hist_before[1]
    auth = (hist_after[0] - hist_before[0]) / count * 1e6 if count else 0.0
    return Sample(rate, (cpu_after - cpu_before) / n * 1e6, auth)


def report(samples: dict[str, list[Sample]]) -> None:
    """Medians over rounds; ratios are taken within each round, then the median."""
    base = samples["no auth"]
    ceiling = samples.get("L (bare websockets)")
    print(f"\n{'mode':22} {'handshakes/s':>12} {'vs R':>6} {'server CPU/handshake':>21} "
          f"{'CPU vs R':>9} {'auth step':>10} {'vs L':>6} {'CPU vs L':>8}")
    for name, runs in samples.items():
        rate = statistics.median(r.rate for r in runs)
        ratio = statistics.median(r.rate / b.rate for r, b in zip(runs, base, strict=True))
        cpu = statistics.median(r.server_cpu_us for r in runs)
        cpu_ratio = statistics.median(r.server_cpu_us / b.server_cpu_us
                                      for r, b in zip(runs, base, strict=True))
        auth = statistics.median(r.auth_us for r in runs)
        to_l = cpu_to_l = 0.0
        if ceiling:
            to_l = statistics.median(r.rate / c.rate for r, c in zip(runs, ceiling, strict=True))
            cpu_to_l = statistics.median(r.server_cpu_us / c.server_cpu_us
                                         for r, c in zip(runs, ceiling, strict=True))
        print(f"{name:22} {rate:12.0f} {ratio:5.2f}x {cpu:18.0f} us {cpu_ratio:8.2f}x "
              f"{auth:7.0f} us {to_l:5.2f}x {cpu_to_l:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=None,
                        help="run the gateway on the Redis channel layer (e.g. redis://127.0.0.1:6379/5)")
    parser.add_argument("--server", default="uvicorn", choices=("uvicorn", "granian"),
                        help="GATEWAY_SERVER for the gateway process")
    parser.add_argument("--json", type=Path, help="write every round's samples to this file")
    args = parser.parse_args()
    raise_file_limit()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()} command: {' '.join(sys.argv)}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", log_file=tmp / "idp.log")
    env = bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3",
                    layer="redis" if args.redis_url else "flat", redis_url=args.redis_url,
                    extra={"GATEWAY_SERVER": args.server})
    migrate(env)
    gateway = _start(port, env, tmp / "gateway.log", app="bench.asgi:application")
    bare = BareServer.start()
    try:
        cookie = f"sessionid={login(gateway.url, 'bob', 'bob-password').cookies['sessionid']}"
        token = service_token(idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
        fresh = asyncio.run(service_tokens(idp.issuer, args.connections * args.rounds))
        ws = gateway.url.replace("http", "ws")
        asyncio.run(run_mode(f"{ws}/bench/open/", [{}], 200, args.concurrency))  # warm-up
        samples: dict[str, list[Sample]] = {}
        for round_ in range(args.rounds):
            batch = fresh[round_ * args.connections:(round_ + 1) * args.connections]
            modes: dict[str, tuple[str, list[dict[str, str]]]] = {
                "L (bare websockets)": (bare.url, [{}]),
                "no auth": (f"{ws}/bench/open/", [{}]),
                "no auth, lean": (f"{ws}/bench/lean/", [{}]),
                "session cookie": (f"{ws}/ws/", [{"Cookie": cookie, "Origin": gateway.url}]),
                "bearer, same token": (f"{ws}/ws/", [{"Authorization": f"Bearer {token}"}]),
                "bearer, distinct": (f"{ws}/ws/", [{"Authorization": f"Bearer {t}"} for t in batch]),
                "ticket": (f"{ws}/ws/", [{}]),  # minted just before it runs (they live 30 s)
            }
            names = list(modes)
            first = round_ % len(names)  # rotate, so no mode always runs after another
            for name in names[first:] + names[:first]:
                url, headers = modes[name]
                is_l = url == bare.url
                tickets = (asyncio.run(mint_tickets(gateway.url, token, args.connections))
                           if name == "ticket" else None)
                sample = measure(None if is_l else gateway.url,
                                 bare.process.pid if is_l else gateway.process.pid,
                                 url, headers, args.connections, args.concurrency, tickets)
                samples.setdefault(name, []).append(sample)
                print(f"round {round_ + 1} {name:20} {sample.rate:6.0f}/s "
                      f"server {sample.server_cpu_us:5.0f} us/handshake", flush=True)
        report(samples)
        print(f"load {load_average()}")
        if args.json:
            args.json.write_text(json.dumps({name: [asdict(s) for s in runs]
                                             for name, runs in samples.items()}))
    finally:
        bare.stop()
        gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
