"""py-spy of one gateway process during one handshake mode (bench/handshakes.py's modes).

    .venv/bin/python bench/profile_handshakes.py --mode fresh|reused|session|lean \
        [--connections 6000] [--out /tmp/hs.raw]

Writes py-spy's raw (collapsed) stacks of the gateway process while the mode runs.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.handshakes import run_mode, service_tokens
from bench.stack import bench_env, cpu_seconds, raise_file_limit
from devidp.stack import free_port, migrate
from devidp.stack import start_gateway as _start
from tests.e2e.flows import login, service_token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("fresh", "reused", "session", "lean"), required=True)
    parser.add_argument("--connections", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, default=Path("/tmp/hs.raw"))
    args = parser.parse_args()
    raise_file_limit()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", log_file=tmp / "idp.log")
    env = bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3", layer="flat")
    migrate(env)
    gateway = _start(port, env, tmp / "gateway.log", app="bench.asgi:application")
    try:
        ws = gateway.url.replace("http", "ws")
        headers: list[dict[str, str]]
        url = f"{ws}/ws/"
        if args.mode == "fresh":
            tokens = asyncio.run(service_tokens(idp.issuer, 2 * args.connections))
            headers = [{"Authorization": f"Bearer {t}"} for t in tokens]  # each used once
        elif args.mode == "reused":
            token = service_token(idp.issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
            headers = [{"Authorization": f"Bearer {token}"}]
        elif args.mode == "session":
            cookie = login(gateway.url, "bob", "bob-password").cookies["sessionid"]
            headers = [{"Cookie": f"sessionid={cookie}", "Origin": gateway.url}]
        else:
            url, headers = f"{ws}/bench/lean/", [{}]
        asyncio.run(run_mode(f"{ws}/bench/open/", [{}], 300, args.concurrency))  # warm-up
        pid = gateway.process.pid
        cpu = cpu_seconds(pid)
        asyncio.run(run_mode(url, headers, args.connections, args.concurrency))
        cpu_us = (cpu_seconds(pid) - cpu) / args.connections * 1e6
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                                str(gateway.process.pid), "-r", str(args.rate), "-f", "raw",
                                "-o", str(args.out), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rate = asyncio.run(run_mode(url, headers[args.connections:] or headers,
                                    args.connections, args.concurrency))
        spy.send_signal(2)
        spy.wait(timeout=30)
        print(f"{args.mode}: {rate:.0f} handshakes/s, {cpu_us:.0f} us of server CPU each "
              f"(unprofiled run); stacks in {args.out}")
    finally:
        gateway.stop()
        idp.stop()


if __name__ == "__main__":
    main()
