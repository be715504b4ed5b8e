"""Fan-out: one channel, N subscribers over two gateway processes, M messages published.

    .venv/bin/python bench/fanout.py [--subscribers 1000] [--messages 100] [--rate 20]
                                     [--layer pubsub|core] [--procs 4]

Starts the dev IdP and two gateway processes sharing Redis, with the channel layer
chosen by ``--layer`` (``GATEWAY_CHANNEL_LAYER``). A grant on the service client's own
claim (``client_id`` = ``svc-reader`` may subscribe to ``bench``) is saved through the
admin's ``save_model`` in a separate Django process, as in tests/e2e/test_pubsub.py.
Subscribers are ``--procs`` client processes, each holding its share of the sockets
(split evenly over both gateways) from its own 127.0.0.x source address; they all use
one svc-reader token. Once every socket has its subscribe acknowledged, the publisher
POSTs M messages to ``/api/publish`` on gateway 0 at ``--rate`` per second (0: as fast
as one client can), each payload carrying its send time (``time.time()``).

Reported: delivered messages per second (all deliveries divided by the time from the
first publish to the last delivery), publish-to-receive latency p50/p99/max, and
delivered against expected (N x M); the core layer drops group messages over a
channel's capacity without telling anyone. Every wait is bounded; the run stops by itself.
Clients and servers share the machine's cores, so compare layers, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from queue import Empty
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.stack import bench_env, cpu_seconds, load_average, raise_file_limit
from devidp.stack import ROOT, free_port, migrate, start_gateway
from tests.e2e.flows import service_token
from tests.e2e.test_pubsub import ADMIN_SCRIPT

REDIS_URL = "redis://127.0.0.1:6379/9"
CHANNEL = "bench"
SUBSCRIBER_CLIENT = "svc-reader"


# --- subscriber processes -----------------------------------------------------------

async def _subscriber_main(worker: int, urls: list[str], token: str, count: int, first: int,
                           source: str, args: argparse.Namespace, ready: Any, flags: tuple[Any, Any],
                           ) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    semaphore = asyncio.Semaphore(args.connect_concurrency)
    sockets: list[Any] = []
    failures: list[str] = []

    async def open_one(index: int) -> None:
        url = urls[index % len(urls)].replace("http://", "ws://") + "/ws/events/"
        try:
            async with semaphore:
                ws = await connect(url, additional_headers=headers, compression=None,
                                   open_timeout=30, close_timeout=2, max_queue=None,
                                   local_addr=(source, 0))
                await ws.send(json.dumps({"v": 1, "type": "subscribe", "id": 1,
                                          "channel": CHANNEL}))
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if reply.get("id") == 1:
                        break
                if reply.get("type") != "ack":
                    await ws.close()
                    raise RuntimeError(f"subscribe refused: {reply}")
                sockets.append(ws)
        except Exception as exc:  # counted and reported, never fatal for the run
            failures.append(f"{type(exc).__name__}: {exc}"[:200])

    await asyncio.gather(*(open_one(first + i) for i in range(count)))
    ready.put((worker, len(sockets), failures[:3], len(failures)))
    go, done = flags
    started = await asyncio.to_thread(go.wait, args.setup_timeout)
    hard_deadline = time.monotonic() + args.max_seconds

    latencies = array("d")
    received = [0]
    first_at, last_at = [float("inf")], [0.0]
    complete = [0]

    async def read(ws: Any) -> None:
        got, quiet = 0, 0.0
        while got < args.messages and time.monotonic() < hard_deadline:
            try:
                frame = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                # Stop after --idle quiet seconds once the publisher has finished.
                quiet = quiet + 1.0 if done.is_set() else 0.0
                if quiet >= args.idle:
                    break
                continue
            except Exception:  # closed: this socket is done
                break
            quiet = 0.0
            now = time.time()
            event = json.loads(frame)
            if event.get("type") != "message":
                continue
            got += 1
            latencies.append(now - event["payload"]["sent"])
            first_at[0] = min(first_at[0], now)
            last_at[0] = max(last_at[0], now)
        received[0] += got
        complete[0] += got == args.messages

    if started:
        await asyncio.gather(*(read(ws) for ws in sockets))
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"received": received[0], "complete": complete[0], "sockets": len(sockets),
            "first": first_at[0], "last": last_at[0], "latencies": latencies}


def subscriber_process(worker: int, urls: list[str], token: str, count: int, first: int,
                       source: str, args: argparse.Namespace, ready: Any, flags: tuple[Any, Any],
                       results: Any) -> None:
    result = asyncio.run(_subscriber_main(worker, urls, token, count, first, source, args,
                                          ready, flags))
    results.put((worker, result))


# --- orchestration ---------------------------------------------------------------------

def save_grants(env: dict[str, str], changes: list[tuple[str, dict]]) -> None:
    """Apply grant changes through the admin's save_model (script from the e2e tests)."""
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + ADMIN_SCRIPT,
                           json.dumps(changes)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"grant setup failed:\n{done.stderr[-3000:]}")


def publish_all(url: str, token: str, args: argparse.Namespace) -> tuple[float, float, int]:
    """POST M messages at the given rate; returns (first send, last send, failures)."""
    failures = 0
    pad = "x" * args.payload_bytes
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        start = time.time()
        for seq in range(args.messages):
            if args.rate > 0:
                delay = start + seq / args.rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            body = {"channel": CHANNEL, "payload": {"sent": time.time(), "seq": seq, "pad": pad}}
            try:
                if client.post(f"{url}/api/publish", json=body).status_code != 202:
                    failures += 1
            except httpx.HTTPError:
                failures += 1
        return start, time.time(), failures


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else 0.0


def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    ports = [free_port() for _ in range(args.gateways)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    idp = devidp.start(free_port(), urls[0], extra_gateway_urls=urls[1:],
                       access_token_ttl=3600, log_file=tmp / "idp.log")
    gateways = []
    workers: list[Any] = []
    try:
        envs = [bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3", layer="redis",
                          redis_url=REDIS_URL,
                          extra={"GATEWAY_ALLOWED_ORIGINS": ",".join(urls),
                                 "GATEWAY_CHANNEL_LAYER": args.layer})
                for port in ports]
        migrate(envs[0])
        save_grants(envs[0], [("add", {"issuer": idp.issuer, "claim": "client_id",
                                       "value": SUBSCRIBER_CLIENT, "target": CHANNEL,
                                       "subscribe": True})])
        for index, port in enumerate(ports):
            gateways.append(start_gateway(port, envs[index], tmp / f"gateway{index}.log"))
        reader = service_token(idp.issuer, SUBSCRIBER_CLIENT, "ws", devidp.API_AUDIENCE)
        publisher = service_token(idp.issuer, "svc-publisher", "ws publish", devidp.API_AUDIENCE)

        ctx = mp.get_context("spawn")
        ready, results, go, done = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
        share = [args.subscribers // args.procs + (i < args.subscribers % args.procs)
                 for i in range(args.procs)]
        setup_started = time.perf_counter()
        for worker in range(args.procs):
            process = ctx.Process(target=subscriber_process, daemon=True, args=(
                worker, urls, reader, share[worker], sum(share[:worker]),
                f"127.0.0.{10 + worker}", args, ready, (go, done), results))
            process.start()
            workers.append(process)
        connected, failed = 0, 0
        for _ in workers:
            worker, ok, samples, bad = ready.get(timeout=args.setup_timeout)
            connected, failed = connected + ok, failed + bad
            if samples:
                print(f"worker {worker}: {bad} sockets failed, e.g. {samples[0]}")
        setup = time.perf_counter() - setup_started
        print(f"layer {args.layer}: {connected} subscribed ({failed} failed) over "
              f"{len(gateways)} processes in {setup:.1f} s")

        cpu_before = sum(cpu_seconds(g.process.pid) for g in gateways)
        go.set()
        time.sleep(0.2)  # let the workers' readers start
        first_sent, last_sent, publish_failures = publish_all(urls[0], publisher, args)
        done.set()
        collected: list[dict[str, Any]] = []
        budget = time.monotonic() + args.max_seconds + 30
        while len(collected) < len(workers) and time.monotonic() < budget:
            try:
                collected.append(results.get(timeout=max(0.1, budget - time.monotonic()))[1])
            except Empty:
                break
        cpu = sum(cpu_seconds(g.process.pid) for g in gateways) - cpu_before
        report(args, connected, collected, first_sent, last_sent, publish_failures)
        received = sum(r["received"] for r in collected)
        print(f"gateway CPU: {cpu:.2f} s over {len(gateways)} processes, "
              f"{1e6 * cpu / max(received, 1):.1f} us per delivered message")
    finally:
        for process in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        for gateway in gateways:
            gateway.stop()
        idp.stop()


def report(args: argparse.Namespace, connected: int, collected: list[dict[str, Any]],
           first_sent: float, last_sent: float, publish_failures: int) -> None:
    received = sum(r["received"] for r in collected)
    complete = sum(r["complete"] for r in collected)
    expected = connected * args.messages
    last = max((r["last"] for r in collected), default=first_sent)
    latencies = sorted(x for r in collected for x in r["latencies"])
    span = max(last - first_sent, 1e-9)
    print(f"published {args.messages} in {last_sent - first_sent:.2f} s "
          f"({args.messages / max(last_sent - first_sent, 1e-9):.0f}/s offered, "
          f"{publish_failures} failed), {len(collected)}/{args.procs} client processes reported")
    print(f"delivered {received}/{expected} ({100 * received / max(expected, 1):.2f}%), "
          f"{complete}/{connected} sockets got every message")
    print(f"delivered {received / span:.0f} msgs/s over {span:.2f} s "
          f"(first publish to last delivery)")
    if latencies:
        print(f"publish-to-receive latency: p50 {1000 * statistics.median(latencies):.1f} ms, "
              f"p99 {1000 * percentile(latencies, 0.99):.1f} ms, "
              f"max {1000 * latencies[-1]:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="messages published per second; 0 for as fast as possible")
    parser.add_argument("--layer", choices=("pubsub", "core"), default="pubsub")
    parser.add_argument("--procs", type=int, default=4, help="subscriber client processes")
    parser.add_argument("--gateways", type=int, default=2, help="gateway processes")
    parser.add_argument("--payload-bytes", type=int, default=64)
    parser.add_argument("--connect-concurrency", type=int, default=50,
                        help="handshakes in flight per client process")
    parser.add_argument("--setup-timeout", type=float, default=120.0)
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="hard limit on the publish-and-receive phase")
    parser.add_argument("--idle", type=float, default=15.0,
                        help="after the last publish, a socket stops after this long without "
                             "a message (its missing messages count as lost)")
    args = parser.parse_args()
    raise_file_limit()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()} command: {' '.join(sys.argv)}")
    run(args)
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
