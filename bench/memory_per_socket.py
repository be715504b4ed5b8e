"""Memory per idle authenticated socket, by allocation site (tracemalloc), in the real server.

    .venv/bin/python bench/memory_per_socket.py [--sockets 2000] [--path /ws/]

Starts the dev IdP and one gateway (``bench.asgi:application``, DEBUG off,
``PYTHONTRACEMALLOC=1``), opens ``--sockets`` sockets with one bearer token and holds them
idle, and prints what the server's allocations grew by between the two probes
(``/bench/memory/``), per socket, largest first. tracemalloc itself slows the server: the
figures are bytes, not time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.stack import bench_env, raise_file_limit
from devidp.stack import free_port, migrate
from devidp.stack import start_gateway as _start
from tests.e2e.flows import service_token


async def probe(ws_url: str) -> list[tuple[str, int, int]]:
    async with connect(f"{ws_url}/bench/memory/") as ws:
        grown: list[tuple[str, int, int]] = json.loads(await ws.recv())["grown"]
        return grown


async def hold(ws_url: str, path: str, headers: dict[str, str], n: int) -> dict[str, Any]:
    await probe(ws_url)
    sockets: list[ClientConnection] = []
    for _ in range(n):
        ws = await connect(f"{ws_url}{path}", additional_headers=headers, compression=None)
        await ws.recv()
        sockets.append(ws)
    await asyncio.sleep(1.0)  # let the collector policy's rounds run
    grown = await probe(ws_url)
    for ws in sockets:
        await ws.close()
    return {"grown": grown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--path", default="/ws/")
    args = parser.parse_args()
    raise_file_limit()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", log_file=tmp / "idp.log")
    env = bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3",
                    extra={"PYTHONTRACEMALLOC": "1"})
    migrate(env)
    gateway = _start(port, env, tmp / "gateway.log", app="bench.asgi:application")
    try:
        token = service_token(idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
        headers = {"Authorization": f"Bearer {token}"}
        ws_url = gateway.url.replace("http", "ws")
        result = asyncio.run(hold(ws_url, args.path, headers, args.sockets))
        total = sum(size for _, size, _ in result["grown"])
        print(f"{args.sockets} idle sockets on {args.path}: {total / args.sockets:.0f} B/socket "
              "in the 60 largest sites (Python allocations only; RSS adds the kernel's and "
              "the allocator's share)")
        print(f"{'B/socket':>8} {'objs/socket':>11}  site")
        for site, size, count in result["grown"]:
            if size / args.sockets >= 8:
                print(f"{size / args.sockets:8.0f} {count / args.sockets:11.2f}  {site}")
    finally:
        gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
