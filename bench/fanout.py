"""Fan-out: one channel, N subscribers, M messages, for L, R and G in one run.

    .venv/bin/python bench/fanout.py [--subscribers 1000] [--messages 100] [--rate 20]
                                     [--targets L,R,G] [--layer pubsub|core|flat] [--procs 4]

The targets run one after another (L, then R, then G), each with a fresh set of N
sockets, all closed before the next target starts:

- **L**: a bare ``websockets`` server in one process (``bench/bare.py``). Subscribers
  connect to ``/sub``; the publisher sends frames on ``/pub``, which the server hands
  to ``websockets.broadcast`` (the ceiling).
- **R**: the stock Channels fan-out in the gateway processes (``bench/asgi.py``):
  subscribers at ``/bench/fanout/`` join a channel-layer group; every frame the
  publisher sends to ``/bench/fanout-pub/`` (on gateway 0) is one ``group_send``.
  No authentication.
- **G**: the gateway: ``/ws/events/`` with a bearer token, subscribe to ``bench``; the
  publisher sends ``publish`` requests on its own ``/ws/events/`` socket on gateway 0
  (a grant lets ``svc-publisher`` publish), without waiting for the acks, as L's and
  R's publishers do not wait either.

R and G share ``--gateways`` gateway processes (``bench.asgi:deployed``: the production
application, plus R's routes) on Redis DB 9, with the channel layer chosen by ``--layer``
(``GATEWAY_CHANNEL_LAYER``). A grant on the service client's own claim (``client_id`` =
``svc-reader`` may subscribe to ``bench``) is saved through the admin's ``save_model`` in
a separate Django process, as in tests/e2e/test_pubsub.py.

The same ``--procs`` client processes (uvloop, ``bench/process.py``) serve every target,
with the same client (``--client``: by default ``bench/rawws.py``, which parses frames in
place; ``websockets`` for the library's client with a reader task per socket):
each holds its share of the sockets (for R and G split evenly over the gateways) from its own 127.0.0.x source
address. A socket is ready on G's subscribe ack, on L's and R's welcome. Once every
socket is ready, the publisher sends M messages at ``--rate`` per second (0: as fast
as one client can), with the same pacing and the same payload for every target, which
carries its send time (``time.time()``). For L and R the frame is the JSON text of G's
``message`` frame, so the subscribers read all three alike: latency = receive time -
``payload.sent``, found in the frame's raw bytes (``sent_time``).

Reported per target: delivered against expected (N x M; the core layer drops group
messages over a channel's capacity without telling anyone), delivered messages per
second (all deliveries divided by the time from the first publish to the last
delivery), publish-to-receive latency p50/p99/max, server CPU per delivered message
(user plus system from /proc, summed over the target's server processes, from the
first publish until every client has reported, before the sockets close) and the load
average; then each target's messages/s and CPU per delivery as ratios to L and R.
Every wait is bounded; the run stops by itself. Clients and servers share the
machine's cores, so compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
import typing
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Generic, TypeVar

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devidp
from bench.process import run_fast
from bench.rawws import Subscriber, Tally, open_subscriber, sent_time
from bench.stack import BareServer, bench_env, cpu_seconds, load_average, raise_file_limit
from devidp.stack import ROOT, free_port, migrate, start_gateway
from tests.e2e.flows import service_token
from tests.e2e.test_pubsub import ADMIN_SCRIPT

REDIS_URL = "redis://127.0.0.1:6379/9"
CHANNEL = "bench"
SUBSCRIBER_CLIENT = "svc-reader"
PUBLISHER_CLIENT = "svc-publisher"
TARGETS = ("L", "R", "G")
CLOSE_WAIT = 60.0  # seconds for the clients to close a target's sockets
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where one target's subscribers connect and how they know they are subscribed."""

    name: str
    urls: tuple[str, ...]  # websocket URLs; socket i goes to urls[i % len(urls)]
    headers: dict[str, str] = field(default_factory=dict)
    subscribe: bool = False  # G: subscribe and wait for the ack; L, R: wait for the welcome


# --- subscriber processes -----------------------------------------------------------

async def open_socket(target: Target, index: int, source: str) -> ClientConnection:
    ws = await connect(target.urls[index % len(target.urls)], additional_headers=target.headers,
                       compression=None, open_timeout=30, close_timeout=2, max_queue=None,
                       local_addr=(source, 0))
    try:
        if target.subscribe:
            await ws.send(json.dumps({"v": 1, "type": "subscribe", "id": 1, "channel": CHANNEL}))
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if not target.subscribe and reply.get("type") == "welcome":
                return ws
            if target.subscribe and reply.get("id") == 1:
                if reply.get("type") != "ack":
                    raise RuntimeError(f"subscribe refused: {reply}")
                return ws
    except BaseException:
        await ws.close()
        raise


async def open_all(count: int, first: int, concurrency: int,
                   opener: Callable[[int], Awaitable[T]]) -> tuple[list[T], list[str]]:
    semaphore = asyncio.Semaphore(concurrency)
    sockets: list[T] = []
    failures: list[str] = []

    async def open_one(index: int) -> None:
        try:
            async with semaphore:
                sockets.append(await opener(index))
        except Exception as exc:  # counted and reported, never fatal for the run
            failures.append(f"{type(exc).__name__}: {exc}"[:200])

    await asyncio.gather(*(open_one(first + i) for i in range(count)))
    return sockets, failures


async def receive_all(sockets: list[ClientConnection], args: argparse.Namespace,
                      done: Any) -> dict[str, Any]:
    """Read every socket until it has M messages; a watchdog stops the rest (bounded)."""
    latencies = array("d")
    counts = {"received": 0, "complete": 0}
    first_at, last_at = [float("inf")], [0.0]

    async def read(ws: ClientConnection) -> None:
        got = 0
        try:
            while got < args.messages:
                frame = await ws.recv(decode=False)  # no per-frame timeout: the watchdog bounds it
                now = time.time()
                sent = sent_time(frame)
                if sent is None:
                    continue
                got += 1
                latencies.append(now - sent)
                first_at[0] = min(first_at[0], now)
                last_at[0] = now
        except Exception:  # closed: this socket is done
            pass
        finally:  # also when the watchdog cancels it
            counts["received"] += got
            counts["complete"] += got == args.messages

    readers = [asyncio.ensure_future(read(ws)) for ws in sockets]
    await watchdog(readers, args, done, last_at)
    return {**counts, "sockets": len(sockets), "first": first_at[0], "last": last_at[0],
            "latencies": latencies}


class Patience:
    """When a client process stops waiting: after --max-seconds, or once the publisher has
    finished and nothing has arrived for --idle seconds (missing messages are lost)."""

    def __init__(self, args: argparse.Namespace, done: Any) -> None:
        self.args, self.done = args, done
        self.hard_deadline = time.monotonic() + args.max_seconds
        self.finished_at = 0.0  # when this process first saw the publisher done

    def over(self, last_received: float) -> bool:
        if self.done.is_set() and not self.finished_at:
            self.finished_at = time.time()
        quiet = self.finished_at and time.time() - max(last_received, self.finished_at) >= self.args.idle
        return bool(quiet) or time.monotonic() >= self.hard_deadline


async def watchdog(readers: Sequence[asyncio.Future[None]], args: argparse.Namespace, done: Any,
                   last_at: list[float]) -> None:
    """Wait for the readers; stop them once ``Patience`` runs out."""
    patience = Patience(args, done)
    pending = set(readers)
    while pending:
        _, pending = await asyncio.wait(pending, timeout=1.0)
        if pending and patience.over(last_at[0]):
            for reader in pending:
                reader.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return


async def run_job(worker: int, source: str, job: tuple[Target, int, int], args: argparse.Namespace,
                  queues: tuple[Any, Any], flags: tuple[Any, Any, Any]) -> None:
    """One target in one client process: open, report ready, receive, report, close."""
    target, count, first = job
    ready, results = queues
    go, done, measured = flags
    client: Subscribers[Any] = (RawClient if args.client == "raw" else LibraryClient)(
        target, source, args)
    failures = await client.connect(count, first)
    ready.put((target.name, worker, len(client.sockets), failures[:3], len(failures)))
    result: dict[str, Any] = {"received": 0, "complete": 0, "sockets": len(client.sockets),
                              "first": float("inf"), "last": 0.0, "latencies": array("d")}
    if await asyncio.to_thread(go.wait, args.setup_timeout):
        result = await client.receive(done)
    results.put((target.name, worker, result))
    await asyncio.to_thread(measured.wait, args.setup_timeout)  # server CPU is read first
    await client.close()
    results.put((target.name, worker, None))  # closed


class Closable(typing.Protocol):
    async def close(self) -> None: ...


S = TypeVar("S", bound=Closable)


class Subscribers(Generic[S]):
    """One client process's subscribers to one target."""

    def __init__(self, target: Target, source: str, args: argparse.Namespace) -> None:
        self.target, self.source, self.args = target, source, args
        self.sockets: list[S] = []

    async def connect(self, count: int, first: int) -> list[str]:
        """Open sockets ``first``.. ``first + count - 1``; returns why some failed."""
        self.sockets, failures = await open_all(count, first, self.args.connect_concurrency,
                                                self.open)
        return failures

    async def close(self) -> None:
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)

    async def open(self, index: int) -> S:
        raise NotImplementedError

    async def receive(self, done: Any) -> dict[str, Any]:
        raise NotImplementedError


class LibraryClient(Subscribers[ClientConnection]):
    """Subscribers on the ``websockets`` client: a reader task per socket."""

    async def open(self, index: int) -> ClientConnection:
        return await open_socket(self.target, index, self.source)

    async def receive(self, done: Any) -> dict[str, Any]:
        return await receive_all(self.sockets, self.args, done)


class RawClient(Subscribers[Subscriber]):
    """Subscribers parsing frames in place (``bench/rawws.py``): no task per socket or frame."""

    def __init__(self, target: Target, source: str, args: argparse.Namespace) -> None:
        super().__init__(target, source, args)
        self.tally = Tally(args.messages)

    async def open(self, index: int) -> Subscriber:
        subscribe = (json.dumps({"v": 1, "type": "subscribe", "id": 1, "channel": CHANNEL}).encode()
                     if self.target.subscribe else None)
        subscriber, reply = await open_subscriber(
            self.target.urls[index % len(self.target.urls)], self.target.headers, subscribe,
            self.is_ready, self.tally, self.source)
        if self.target.subscribe and reply.get("type") != "ack":
            await subscriber.close()
            raise RuntimeError(f"subscribe refused: {reply}")
        return subscriber

    def is_ready(self, reply: dict[str, Any]) -> bool:
        return reply.get("id") == 1 if self.target.subscribe else reply.get("type") == "welcome"

    async def receive(self, done: Any) -> dict[str, Any]:
        """Count until every socket has M messages, or ``Patience`` runs out."""
        sockets = self.sockets
        for subscriber in sockets:
            subscriber.counting = True
        patience = Patience(self.args, done)
        while True:
            if self.tally.complete >= len(sockets) or patience.over(self.tally.last):
                return self.tally.result(len(sockets))
            await asyncio.sleep(0.05)


def subscriber_process(worker: int, source: str, args: argparse.Namespace, commands: Any,
                       queues: tuple[Any, Any], flags: tuple[Any, Any, Any]) -> None:
    """Runs the targets it is sent, one at a time, until told to stop (None) or idle too long."""
    while True:
        try:
            job = commands.get(timeout=args.setup_timeout + args.max_seconds + 2 * CLOSE_WAIT)
        except Empty:
            return
        if job is None:
            return
        run_fast(run_job(worker, source, job, args, queues, flags))


@dataclass
class Clients:
    """The ``--procs`` subscriber processes, shared by every target."""

    args: argparse.Namespace
    processes: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.commands = [ctx.Queue() for _ in range(self.args.procs)]
        self.ready, self.results = ctx.Queue(), ctx.Queue()
        self.go, self.done, self.measured = ctx.Event(), ctx.Event(), ctx.Event()
        for worker in range(self.args.procs):
            process = ctx.Process(target=subscriber_process, daemon=True, args=(
                worker, f"127.0.0.{10 + worker}", self.args, self.commands[worker],
                (self.ready, self.results), (self.go, self.done, self.measured)))
            process.start()
            self.processes.append(process)

    def share(self, worker: int) -> tuple[int, int]:
        """(count, first index) of this worker's sockets."""
        n, procs = self.args.subscribers, self.args.procs
        counts = [n // procs + (i < n % procs) for i in range(procs)]
        return counts[worker], sum(counts[:worker])

    def collect(self, queue: Any, name: str, want: int, seconds: float,
                keep: Callable[[Any], bool]) -> list[Any]:
        """Up to ``want`` messages of target ``name`` (stale ones skipped), within ``seconds``."""
        found: list[Any] = []
        deadline = time.monotonic() + seconds
        while len(found) < want and time.monotonic() < deadline:
            try:
                message = queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                break
            if message[0] == name and keep(message):
                found.append(message)
        return found

    def stop(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()


# --- publishers ------------------------------------------------------------------------

def payload(seq: int, args: argparse.Namespace) -> dict[str, Any]:
    return {"sent": time.time(), "seq": seq, "pad": "x" * args.payload_bytes}


def pace(start: float, seq: int, rate: float) -> float:
    """Seconds to wait before message ``seq`` (0 when unpaced or late)."""
    return max(0.0, start + seq / rate - time.time()) if rate > 0 else 0.0


def relayed(seq: int, args: argparse.Namespace) -> str:
    """L, R: the JSON text of G's ``message`` frame, which their servers relay as is."""
    return json.dumps({"v": 1, "type": "message", "channel": CHANNEL, "payload": payload(seq, args)})


def publish_request(seq: int, args: argparse.Namespace) -> str:
    """G: a ``publish`` request on the publisher's own /ws/events/ socket."""
    return json.dumps({"v": 1, "type": "publish", "id": seq, "channel": CHANNEL,
                       "payload": payload(seq, args)})


async def publish_frames(url: str, args: argparse.Namespace, go: Any,
                         frame: Callable[[int, argparse.Namespace], str] = relayed,
                         headers: dict[str, str] | None = None,
                         acked: bool = False) -> tuple[float, float, int]:
    """Send M frames over one websocket at the same pacing for every target, without
    waiting for replies (acks are counted in the background); with ``acked`` (G), wait
    up to 10 s for the M acks before closing, so no request is cut off by the close."""
    failures = 0
    async with connect(url, compression=None, open_timeout=30, close_timeout=2,
                       additional_headers=headers, max_queue=None) as ws:
        drain = asyncio.ensure_future(_discard_replies(ws, args.messages))
        go.set()
        await asyncio.sleep(0.2)  # let the workers' readers start
        start = time.time()
        for seq in range(args.messages):
            await asyncio.sleep(pace(start, seq, args.rate))
            try:
                await ws.send(frame(seq, args))
            except Exception:
                failures += 1
        finished = time.time()
        if acked:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(drain), 10)
        drain.cancel()
        return start, finished, failures


async def _discard_replies(ws: Any, expected: int) -> None:
    """Read the publisher's replies; done after ``expected`` acks (G) or at the close."""
    acks = 0
    async for reply in ws:
        acks += '"type":"ack"' in reply
        if acks >= expected:
            return


# --- one target ------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    label: str
    sockets: int
    expected: int
    received: int
    rate: float  # delivered messages per second
    p50: float
    p99: float
    worst: float
    cpu_per_message: float  # server CPU seconds per delivered message
    load: str


def measure(clients: Clients, target: Target, label: str, pids: list[int],
            publish: Callable[[], tuple[float, float, int]]) -> Row:
    args = clients.args
    for event in (clients.go, clients.done, clients.measured):
        event.clear()
    started = time.perf_counter()
    for worker, commands in enumerate(clients.commands):
        commands.put((target, *clients.share(worker)))
    ready = clients.collect(clients.ready, target.name, args.procs, args.setup_timeout,
                            lambda _: True)
    connected = sum(r[2] for r in ready)
    for _, worker, _, samples, bad in ready:
        if samples:
            print(f"  worker {worker}: {bad} sockets failed, e.g. {samples[0]}")
    print(f"{label}: {connected} subscribed ({sum(r[4] for r in ready)} failed, "
          f"{len(ready)}/{args.procs} client processes ready) in "
          f"{time.perf_counter() - started:.1f} s")

    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    first_sent, last_sent, failures = publish()
    clients.done.set()
    reported = clients.collect(clients.results, target.name, len(ready),
                               args.max_seconds + 30, lambda m: m[2] is not None)
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    load = load_average()
    clients.measured.set()
    closed = clients.collect(clients.results, target.name, len(reported), CLOSE_WAIT,
                             lambda m: m[2] is None)
    results = [m[2] for m in reported]
    complete = sum(r["complete"] for r in results)
    print(f"  published {args.messages} in {last_sent - first_sent:.2f} s "
          f"({args.messages / max(last_sent - first_sent, 1e-9):.0f}/s offered, {failures} failed); "
          f"{complete}/{connected} sockets got every message; {len(reported)}/{len(ready)} "
          f"client processes reported, {len(closed)} closed their sockets")
    return row(label, connected * args.messages, results, first_sent, cpu, load)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] if values else 0.0


def row(label: str, expected: int, results: list[dict[str, Any]], first_sent: float,
        cpu: float, load: str) -> Row:
    received = sum(r["received"] for r in results)
    last = max((r["last"] for r in results), default=first_sent)
    latencies = sorted(x for r in results for x in r["latencies"])
    return Row(label, sum(r["sockets"] for r in results), expected, received,
               received / max(last - first_sent, 1e-9),
               statistics.median(latencies) if latencies else 0.0,
               percentile(latencies, 0.99), latencies[-1] if latencies else 0.0,
               cpu / max(received, 1), load)


def print_rows(rows: dict[str, Row]) -> None:
    print(f"\n{'target':<34} {'sockets':>7} {'delivered':>9} {'msgs/s':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'max ms':>7} {'CPU us/msg':>10}  load")
    for r in rows.values():
        print(f"{r.label:<34} {r.sockets:>7} {100 * r.received / max(r.expected, 1):>8.2f}% "
              f"{r.rate:>8.0f} {1000 * r.p50:>7.1f} {1000 * r.p99:>7.1f} {1000 * r.worst:>7.1f} "
              f"{1e6 * r.cpu_per_message:>10.1f}  {r.load}")
    bases = [b for b in ("L", "R") if b in rows]
    if not bases:
        return
    heads = [f"msgs/s vs {b}" for b in bases] + [f"CPU/msg vs {b}" for b in bases]
    print(f"\n{'ratios':<34} " + " ".join(f"{h:>13}" for h in heads))
    for r in rows.values():
        cells = [r.rate / max(rows[b].rate, 1e-9) for b in bases]
        cells += [r.cpu_per_message / max(rows[b].cpu_per_message, 1e-12) for b in bases]
        print(f"{r.label:<34} " + " ".join(f"{c:>12.2f}x" for c in cells))


# --- orchestration ---------------------------------------------------------------------

def save_grants(env: dict[str, str], changes: list[tuple[str, dict[str, Any]]]) -> float:
    """Apply grant changes through the admin's save_model (script from the e2e tests);
    returns when they were committed (the admin process's clock)."""
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + ADMIN_SCRIPT,
                           json.dumps(changes)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"grant setup failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["committed_at"])


def run(args: argparse.Namespace, targets: list[str]) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    ports = [free_port() for _ in range(args.gateways)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    ws_urls = [u.replace("http://", "ws://") for u in urls]
    idp, bare, clients = None, None, None
    gateways: list[Any] = []
    rows: dict[str, Row] = {}
    try:
        if "L" in targets:
            bare = BareServer.start(ping_seconds=args.ping_seconds)
        if "R" in targets or "G" in targets:
            idp = devidp.start(free_port(), urls[0], extra_gateway_urls=urls[1:],
                               access_token_ttl=3600, log_file=tmp / "idp.log")
            if args.layer == "flat" and len(ports) > 1:
                raise SystemExit("--layer flat is one process: use --gateways 1")
            envs = [bench_env(idp.issuer, port, database_file=tmp / "db.sqlite3",
                              layer="flat" if args.layer == "flat" else "redis",
                              redis_url=REDIS_URL,
                              extra={"GATEWAY_ALLOWED_ORIGINS": ",".join(urls),
                                     **({} if args.ping_seconds is None else
                                        {"GATEWAY_WS_PING_SECONDS": str(args.ping_seconds)}),
                                     **({} if args.layer == "flat"
                                        else {"GATEWAY_CHANNEL_LAYER": args.layer})})
                    for port in ports]
            migrate(envs[0])
            save_grants(envs[0], [("add", {"issuer": idp.issuer, "claim": "client_id",
                                           "value": SUBSCRIBER_CLIENT, "target": CHANNEL,
                                           "subscribe": True}),
                                  ("add", {"issuer": idp.issuer, "claim": "client_id",
                                           "value": PUBLISHER_CLIENT, "target": CHANNEL,
                                           "publish": True})])
            for index, port in enumerate(ports):
                gateways.append(start_gateway(port, envs[index], tmp / f"gateway{index}.log",
                                              app="bench.asgi:deployed"))
        clients = Clients(args)
        gateway_pids = [g.process.pid for g in gateways]
        procs = f"{len(gateways)} process{'es' * (len(gateways) != 1)}"
        if bare is not None:
            base = bare.url.rstrip("/")
            rows["L"] = measure(clients, Target("L", (f"{base}/sub",)),
                                "L bare websockets, 1 process", [bare.process.pid],
                                lambda: asyncio.run(publish_frames(f"{base}/pub", args, clients.go)))
        if "R" in targets:
            rows["R"] = measure(clients, Target("R", tuple(f"{u}/bench/fanout/" for u in ws_urls)),
                                f"R stock Channels, {procs}", gateway_pids,
                                lambda: asyncio.run(publish_frames(
                                    f"{ws_urls[0]}/bench/fanout-pub/", args, clients.go)))
        if "G" in targets and idp is not None:
            reader = service_token(idp.issuer, SUBSCRIBER_CLIENT, "ws", devidp.API_AUDIENCE)
            publisher = service_token(idp.issuer, PUBLISHER_CLIENT, "ws", devidp.API_AUDIENCE)
            target = Target("G", tuple(f"{u}/ws/events/" for u in ws_urls),
                            {"Authorization": f"Bearer {reader}"}, subscribe=True)
            rows["G"] = measure(clients, target, f"G gateway, {procs}", gateway_pids,
                                lambda: asyncio.run(publish_frames(
                                    f"{ws_urls[0]}/ws/events/", args, clients.go, publish_request,
                                    {"Authorization": f"Bearer {publisher}"}, acked=True)))
        print_rows(rows)
        if args.json:
            args.json.write_text(json.dumps({name: asdict(r) for name, r in rows.items()}))
    finally:
        if clients is not None:
            clients.stop()
        for gateway in gateways:
            gateway.stop()
        if idp is not None:
            idp.stop()
        if bare is not None:
            bare.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0,
                        help="messages published per second; 0 for as fast as possible")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help="comma-separated, run in the order L, R, G")
    parser.add_argument("--layer", choices=("pubsub", "core", "flat"), default="pubsub",
                        help="flat: the in-memory default, one gateway process (--gateways 1)")
    parser.add_argument("--procs", type=int, default=4, help="subscriber client processes")
    parser.add_argument("--client", choices=("raw", "websockets"), default="raw",
                        help="subscribers: RFC 6455 parsed in place (bench/rawws.py), or the "
                             "websockets library's client with a reader task per socket")
    parser.add_argument("--gateways", type=int, default=2, help="gateway processes (R and G)")
    parser.add_argument("--payload-bytes", type=int, default=64)
    parser.add_argument("--connect-concurrency", type=int, default=50,
                        help="handshakes in flight per client process")
    parser.add_argument("--setup-timeout", type=float, default=120.0)
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="hard limit on the publish-and-receive phase")
    parser.add_argument("--idle", type=float, default=15.0,
                        help="after the last publish, a client process stops after this long "
                             "without a message (missing messages count as lost)")
    parser.add_argument("--ping-seconds", type=float,
                        help="keepalive pings every this many seconds on every target (default: "
                             "the gateway's 20 s for R and G, none for L)")
    parser.add_argument("--json", type=Path, help="write the rows to this file")
    args = parser.parse_args()
    targets = [t.strip().upper() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown or not targets:
        parser.error(f"--targets: unknown {unknown}; choose from {','.join(TARGETS)}")
    raise_file_limit()
    print(f"{time.strftime('%Y-%m-%d %H:%M')} load {load_average()} command: {' '.join(sys.argv)}")
    run(args, targets)
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
