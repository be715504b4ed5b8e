"""K open sockets: handshake cost, message latency, loop lag and memory with K idle sockets held.

    .venv/bin/python bench/open_sockets.py --counts 1000,10000,19000 --layers flat,channels,redis

For each channel layer (``--layers``: ``flat`` = ``FlatInMemoryChannelLayer``,
``channels`` = Channels' ``InMemoryChannelLayer``, ``redis`` = the pub/sub layer on
``--redis-url``), each K (``--counts``) and each target, in one run:

- L: a bare ``websockets`` server (``bench/bare.py``);
- R: the stock Channels consumer (``/bench/open/``, no gateway middleware);
- G: the gateway's ``/ws/`` with one bearer token (authenticated, addressing groups,
  expiry timers, the welcome with the principal).

a fresh server is started (so memory is measured from a clean process), then
``--holders`` client processes, each from its own 127.0.0.x source address, open K
sockets between them and hold them idle. With those open, the script measures:

- a burst of ``--burst`` handshakes (open, first frame, close) at ``--concurrency``:
  the client's rate and the server's CPU per handshake (``/proc``, server and workers);
- round-trip latency of ``--pings`` frames over 20 extra sockets (L and R echo, G
  answers with an error frame), p50 and p99;
- the longest loop stall and the longest collector pause in the server, from connect
  to the end (``GATEWAY_LOOP_LAG_PROBE``; L runs the same probe);
- server memory per held socket: resident memory with K held less before, over K;
- with ``--idle-seconds``, the server's CPU while the K sockets idle: the keepalive pings
  (``--ping-seconds``), since nothing else runs.

Then the holders exit, closing the K sockets at once, and the script reports the longest
loop stall while the server handles those closes.

The gateway runs with DEBUG off (``bench/stack.py: bench_env``). The launcher raises
its file limit to the hard limit; without ``CAP_SYS_RESOURCE`` that caps one server
process at about 20,000 sockets here. For more, run it inside User-Mode Linux:

    bench/in-uml .venv/bin/python bench/open_sockets.py --counts 50000 --layers flat \
        --targets G,L --ping-seconds 600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.stack import ROOT, BareServer, bench_env, cpu_seconds, load_average, raise_file_limit, rss_kib
from devidp.stack import free_port, migrate, start_gateway
from tests.e2e.flows import service_token

PING_SOCKETS = 20


@dataclass
class Row:
    layer: str
    count: int
    target: str
    opened: int = 0
    open_seconds: float = 0.0
    rate: float = 0.0
    cpu_us: float = 0.0
    rtt_p50_ms: float = 0.0
    rtt_p99_ms: float = 0.0
    lag_ms: float = 0.0
    busy_ms: float = 0.0
    gc_ms: float = 0.0
    gc_cpu_ms: float = 0.0
    gc_gen: int = -1
    kib_per_socket: float = 0.0
    idle_cpu_pct: float = -1.0  # server CPU while the K sockets idle (--idle-seconds)
    close_lag_ms: float = 0.0  # worst loop stall while the K held sockets close at once
    close_busy_ms: float = 0.0
    hold_rate: float = 0.0  # handshakes/s while the holders opened K sockets
    hold_cpu_us: float = 0.0  # server CPU per handshake meanwhile (every worker)
    load: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def spawn_holders(url: str, count: int, headers: dict[str, str], holders: int) -> list[Any]:
    share = [count // holders + (1 if i < count % holders else 0) for i in range(holders)]
    return [subprocess.Popen([sys.executable, str(ROOT / "bench" / "holder.py"), url, str(n),
                              f"127.0.0.{11 + i}", json.dumps(headers)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
            for i, n in enumerate(share) if n]


def wait_ready(procs: list[Any]) -> tuple[int, float]:
    opened, slowest = 0, 0.0
    for proc in procs:
        line = proc.stdout.readline().decode().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"holder failed: {line}")
        opened += int(line[1])
        slowest = max(slowest, float(line[3]))
    return opened, slowest


def release(procs: list[Any]) -> None:
    """Let the holders close their sockets and exit (again: nothing happens)."""
    for proc in procs:
        proc.stdin.close()
    for proc in procs:
        proc.wait(timeout=60)


async def burst(url: str, headers: dict[str, str], n: int, concurrency: int) -> float:
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore, connect(url, additional_headers=headers, compression=None,
                                      ping_interval=None, open_timeout=60) as ws:
            await ws.recv()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start)


async def pings(url: str, headers: dict[str, str], total: int) -> list[float]:
    """Round trips over PING_SOCKETS sockets, each sending in turn and awaiting its answer."""
    sockets = [await connect(url, additional_headers=headers, compression=None,
                             ping_interval=None) for _ in range(PING_SOCKETS)]
    for ws in sockets:
        await ws.recv()
    times: list[float] = []

    async def run(ws: Any, n: int) -> None:
        for i in range(n):
            start = time.perf_counter()
            await ws.send(json.dumps({"type": "ping", "id": i}))
            await ws.recv()
            times.append(time.perf_counter() - start)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(run(ws, total // PING_SOCKETS) for ws in sockets))
    for ws in sockets:
        await ws.close()
    return times


PROBED = ("lag_ms", "busy_ms", "gc_ms", "gc_cpu_ms")


def probe_records(path: Path, start: float, end: float) -> list[dict[str, Any]]:
    """The probe's once-a-second records that cover [start, end]."""
    if not path.exists():
        return []
    records = (json.loads(line) for line in path.read_text().splitlines())
    return [record for record in records if start <= record["t"] <= end + 1.0]


def probe_window(path: Path, start: float, end: float, row: Row) -> None:
    """The worst loop lag (wall, busy), collector pause (wall, CPU) in [start, end]."""
    for record in probe_records(path, start, end):
        if record["gc_ms"] > row.gc_ms:
            row.gc_gen = record["gc_gen"]
        for key in PROBED:
            setattr(row, key, max(getattr(row, key), record[key]))


def settle(pid: int, quiet: float = 0.03, period: float = 0.5, limit: float = 30.0) -> None:
    """Wait until the server uses less than ``quiet`` CPU seconds per ``period``."""
    deadline = time.monotonic() + limit
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(period)
        now = cpu_seconds(pid)
        if now - before < quiet:
            return
        before = now


def measure(row: Row, pid: int, url: str, headers: dict[str, str], probe: Path,
            args: argparse.Namespace) -> Row:
    settle(pid)
    rss_before, started, cpu_start = rss_kib(pid), time.time(), cpu_seconds(pid)
    holders = spawn_holders(url, row.count, headers, args.holders)
    try:
        row.opened, row.open_seconds = wait_ready(holders)
        row.hold_cpu_us = (cpu_seconds(pid) - cpu_start) / max(row.opened, 1) * 1e6
        row.hold_rate = row.opened / max(row.open_seconds, 1e-9)
        settle(pid)
        row.kib_per_socket = (rss_kib(pid) - rss_before) / max(row.opened, 1)
        if args.idle_seconds:
            idle_from = cpu_seconds(pid)
            time.sleep(args.idle_seconds)
            row.idle_cpu_pct = (cpu_seconds(pid) - idle_from) / args.idle_seconds * 100
        cpu_before = cpu_seconds(pid)
        row.rate = asyncio.run(burst(url, headers, args.burst, args.concurrency))
        row.cpu_us = (cpu_seconds(pid) - cpu_before) / args.burst * 1e6
        times = sorted(asyncio.run(pings(url, headers, args.pings)))
        row.rtt_p50_ms = statistics.median(times) * 1e3
        row.rtt_p99_ms = times[int(len(times) * 0.99) - 1] * 1e3
        time.sleep(1.2)  # the probe writes once a second
        probe_window(probe, started, time.time(), row)
        row.load = load_average()
        released = time.time()
        release(holders)
        settle(pid)
        time.sleep(1.2)
        closing = probe_records(probe, released, time.time())
        row.close_lag_ms = max((r["lag_ms"] for r in closing), default=0.0)
        row.close_busy_ms = max((r["busy_ms"] for r in closing), default=0.0)
    finally:
        release(holders)
    return row


def run_layer(layer: str, args: argparse.Namespace, issuer: str, tmp: Path,
              port: int) -> list[Row]:
    rows: list[Row] = []
    for count in args.counts:
        for target in args.targets:
            probe = tmp / f"probe-{layer}-{count}-{target}.jsonl"
            row = Row(layer, count, target)
            if target == "L":
                server = BareServer.start(probe)
                try:
                    asyncio.run(burst(server.url, {}, 200, args.concurrency))
                    rows.append(measure(row, server.process.pid, server.url, {}, probe, args))
                finally:
                    server.stop()
            else:
                env = bench_env(issuer, port, database_file=tmp / "db.sqlite3", layer=layer,
                                redis_url=args.redis_url, probe_file=probe,
                                extra={"GATEWAY_WORKERS": str(args.workers),
                                       "GATEWAY_SERVER": args.server,
                                       "GATEWAY_WS_PING_SECONDS": str(args.ping_seconds)})
                gateway = start_gateway(port, env, tmp / f"gateway-{layer}.log",
                                        app="bench.asgi:application")
                try:
                    ws = gateway.url.replace("http", "ws")
                    token = service_token(issuer, "svc-reader", "ws", devidp.API_AUDIENCE)
                    bearer = {"Authorization": f"Bearer {token}"}
                    url, headers = ((f"{ws}/bench/open/", {}) if target == "R"
                                    else (f"{ws}/ws/", bearer))
                    asyncio.run(burst(url, headers, 200, args.concurrency))  # warm-up
                    rows.append(measure(row, gateway.process.pid, url, headers, probe, args))
                finally:
                    gateway.stop()
            print(format_row(rows[-1]), flush=True)
    return rows


def format_row(r: Row) -> str:
    return (f"{r.layer:8} K={r.count:6} {r.target}: opened {r.opened} in {r.open_seconds:.1f}s, "
            f"{r.rate:6.0f} hs/s, {r.cpu_us:6.0f} us/hs, rtt p50 {r.rtt_p50_ms:.1f} "
            f"p99 {r.rtt_p99_ms:.1f} ms, lag {r.lag_ms:.0f} (busy {r.busy_ms:.0f}) ms, "
            f"gc {r.gc_ms:.0f} (cpu {r.gc_cpu_ms:.0f}) ms (gen {r.gc_gen}), "
            f"{r.kib_per_socket:.1f} KiB/socket, idle CPU {idle_cpu(r)}%, "
            f"close stall {r.close_lag_ms:.0f} "
            f"(busy {r.close_busy_ms:.0f}) ms, holders {r.hold_rate:.0f} hs/s at "
            f"{r.hold_cpu_us:.0f} us/hs, load {r.load}")


def table(rows: list[Row]) -> None:
    """Markdown, each gateway row as a ratio to L and R of the same layer run and K."""
    print("\n| layer | K | target | hs/s | vs L | vs R | CPU/hs | vs L | vs R | rtt p50/p99 ms "
          "| max lag ms wall / busy | max GC ms wall / CPU (gen) | KiB/socket | vs L "
          "| idle CPU % | K closing: max lag ms wall / busy | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    index = {(r.layer, r.count, r.target): r for r in rows}
    for r in rows:
        base_l, base_r = index.get((r.layer, r.count, "L")), index.get((r.layer, r.count, "R"))

        def ratio(value: float, base: Row | None, attr: str) -> str:
            other = getattr(base, attr) if base else 0
            return f"{value / other:.2f}x" if other else "-"

        print(f"| {r.layer} | {r.count:,} | {r.target} | {r.rate:,.0f} | "
              f"{ratio(r.rate, base_l, 'rate')} | {ratio(r.rate, base_r, 'rate')} | "
              f"{r.cpu_us:,.0f} µs | {ratio(r.cpu_us, base_l, 'cpu_us')} | "
              f"{ratio(r.cpu_us, base_r, 'cpu_us')} | {r.rtt_p50_ms:.1f} / {r.rtt_p99_ms:.1f} | "
              f"{r.lag_ms:.0f} / {r.busy_ms:.0f} | {r.gc_ms:.0f} / {r.gc_cpu_ms:.0f} ({r.gc_gen}) | "
              f"{r.kib_per_socket:.1f} | "
              f"{ratio(r.kib_per_socket, base_l, 'kib_per_socket')} | "
              f"{idle_cpu(r)} | {r.close_lag_ms:.0f} / {r.close_busy_ms:.0f} | {r.load} |")


def idle_cpu(r: Row) -> str:
    return f"{r.idle_cpu_pct:.1f}" if r.idle_cpu_pct >= 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1000,10000",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--layers", default="flat,channels", type=lambda s: s.split(","))
    parser.add_argument("--targets", default="L,R,G", type=lambda s: s.split(","))
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--pings", type=int, default=400)
    parser.add_argument("--holders", type=int, default=4)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--workers", type=int, default=1,
                        help="gateway worker processes (GATEWAY_WORKERS; Redis layer for >1)")
    parser.add_argument("--server", default="uvicorn", choices=("uvicorn", "granian"))
    parser.add_argument("--ping-seconds", type=float, default=20.0,
                        help="GATEWAY_WS_PING_SECONDS for R and G (L never pings); raise it "
                             "under bench/in-uml, where each ping costs several times more")
    parser.add_argument("--idle-seconds", type=float, default=0.0,
                        help="with the K sockets held, measure the server's idle CPU (the "
                             "keepalive pings) over this many seconds; 0 skips it")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args()
    limit = raise_file_limit()
    if max(args.counts) + args.burst > limit - 200:
        print(f"note: the file limit is {limit}; one server process cannot hold more "
              f"than about {limit - 200} sockets", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="bench-open-"))
    port = free_port()
    idp = devidp.start(free_port(), f"http://127.0.0.1:{port}", access_token_ttl=3600,
                       log_file=tmp / "idp.log")
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()} "
          f"command: {' '.join(sys.argv)}", flush=True)
    try:
        migrate(bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3"))
        rows: list[Row] = []
        for layer in args.layers:
            rows += run_layer(layer, args, idp.issuer, tmp, port)
        table(rows)
        if args.json:
            args.json.write_text(json.dumps([asdict(r) for r in rows]))
    finally:
        idp.stop()


if __name__ == "__main__":
    main()
