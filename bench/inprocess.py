"""N authenticated sockets in one process, without the network: collector pauses and memory.

    .venv/bin/python bench/inprocess.py --sockets 50000 [--policy default|freeze] [--tracemalloc]

One process can hold more sockets here than its file limit allows (20,000 on the
development machines, with no ``CAP_SYS_RESOURCE`` to raise it), so this drives the
gateway's real ASGI stack (``config.asgi``: origin guard, handshake, bearer check,
policy, ``PrincipalConsumer`` on the flat in-memory layer) through Channels'
``WebsocketCommunicator``: the same consumers, scopes, tasks and layer state as behind a
server, minus the server's transport objects. It opens ``--sockets`` sockets with one
bearer token, holds them idle for ``--idle`` seconds, sends a frame on 1% of them, then
closes half and idles again. Throughout, the loop-lag probe (``gateway/ops/loopwatch.py``) records the
longest loop stall and collector pause each second; the summary gives them per phase.

``--policy``: ``default`` is the collector tuning before issue 13 (startup freeze and
thresholds only); ``freeze`` is ``gateway.ops.gcpolicy`` (what the lifespan runs now).
``--tracemalloc`` diffs snapshots at N/2 and N sockets and prints where the memory of
the second half went, by line, so per-socket cost can be attributed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.update({
    "DJANGO_SETTINGS_MODULE": "bench.settings", "BENCH_CHANNEL_LAYER": "flat",
    "GATEWAY_DEV": "false", "GATEWAY_SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijkl",
    "GATEWAY_OIDC_ISSUER": "http://127.0.0.1:9/test-issuer", "GATEWAY_OIDC_CLIENT_ID": "gateway",
    "GATEWAY_OIDC_CLIENT_SECRET": "gateway-secret", "GATEWAY_OIDC_AUDIENCES": "urn:wsgateway:api",
    "GATEWAY_PUBLIC_URL": "http://127.0.0.1:8000", "GATEWAY_ALLOWED_ORIGINS": "http://127.0.0.1:8000",
    "GATEWAY_SQLITE_PATH": str(Path(tempfile.mkdtemp(prefix="bench-inproc-")) / "db.sqlite3"),
})
os.environ.pop("GATEWAY_DATABASE_URL", None)
os.environ.pop("GATEWAY_REDIS_URL", None)

import django  # noqa: E402

django.setup()

from channels.testing import WebsocketCommunicator  # noqa: E402

from config.asgi import application  # noqa: E402
from gateway.issuers.registry import registry  # noqa: E402
from gateway.ops import loopwatch  # noqa: E402
from gateway.ops.lifespan import tune_garbage_collector  # noqa: E402
from oidc.jwks import JwksCache  # noqa: E402
from tests.unit.factories import AT_HEADER, KEY1, encode, jwks_of  # noqa: E402

ISSUER = "http://127.0.0.1:9/test-issuer"


def bearer() -> list[tuple[bytes, bytes]]:
    now = time.time()
    token = encode(AT_HEADER, {"iss": ISSUER, "sub": "svc-1", "aud": "urn:wsgateway:api",
                               "client_id": "svc-1", "exp": now + 3600, "iat": now - 5,
                               "jti": "j-1", "scope": "ws"})
    return [(b"authorization", f"Bearer {token}".encode())]


async def open_sockets(count: int, headers: list[tuple[bytes, bytes]],
                       held: list[WebsocketCommunicator], batch: int = 200) -> None:
    async def one() -> None:
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        connected, code = await communicator.connect(timeout=30)
        assert connected, code
        await communicator.receive_from(timeout=30)  # the welcome
        held.append(communicator)

    for start in range(0, count, batch):
        await asyncio.gather(*(one() for _ in range(min(batch, count - start))))


async def settle() -> None:
    """A gap between phases longer than one probe window, so no window spans two phases."""
    await asyncio.sleep(loopwatch.WINDOW * 1.1)


def phase_summary(path: Path, start: float, end: float) -> dict[str, Any]:
    """The worst of the probe windows that overlap the phase."""
    worst: dict[str, float] = {"lag_ms": 0.0, "busy_ms": 0.0, "gc_ms": 0.0, "gc_cpu_ms": 0.0}
    generation, runs = -1, [0, 0, 0]
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["t"] > start and record["t"] - loopwatch.WINDOW < end:
            runs = [a + b for a, b in zip(runs, record["gc_runs"], strict=True)]
            if record["gc_ms"] > worst["gc_ms"]:
                generation = record["gc_gen"]
            for key in worst:
                worst[key] = max(worst[key], record[key])
    return {**{f"max_{key}": value for key, value in worst.items()}, "gc_gen": generation,
            "gc_runs": runs}


def top_lines(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, per: int) -> None:
    stats = after.compare_to(before, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"tracemalloc: {total / per:.0f} bytes per socket over the second half")
    for stat in stats[:25]:
        frame = stat.traceback[0]
        print(f"  {stat.size_diff / per:8.0f} B/socket {stat.count_diff / per:6.2f} blocks "
              f"{frame.filename.replace(str(ROOT), '.')}:{frame.lineno}")


async def main(args: argparse.Namespace) -> None:
    registry.keys[ISSUER] = JwksCache.from_keys(jwks_of(KEY1), jwks_uri="static:test")
    probe_file = Path(tempfile.mkdtemp(prefix="bench-probe-")) / "probe.jsonl"
    tune_garbage_collector()
    policy_task = None
    if args.policy == "freeze":
        from gateway.ops.gcpolicy import keep_collections_young

        policy_task = asyncio.create_task(keep_collections_young())
    probe = asyncio.create_task(loopwatch.probe(probe_file))
    headers = bearer()
    held: list[WebsocketCommunicator] = []
    phases: dict[str, tuple[float, float]] = {}
    rss0 = loopwatch.rss_kib()

    start = time.time()
    if args.tracemalloc:
        await open_sockets(args.sockets // 2, headers, held, args.batch)
        gc.collect(1)
        tracemalloc.start(1)
        first = tracemalloc.take_snapshot()
        await open_sockets(args.sockets - len(held), headers, held, args.batch)
        second = tracemalloc.take_snapshot()
        tracemalloc.stop()
        top_lines(first, second, args.sockets - args.sockets // 2)
    else:
        await open_sockets(args.sockets, headers, held, args.batch)
    phases["connect"] = (start, time.time())
    await settle()
    rss1 = loopwatch.rss_kib()

    start = time.time()
    await asyncio.sleep(args.idle)
    phases["idle"] = (start, time.time())
    await settle()

    start = time.time()
    for communicator in held[:: 100]:
        await communicator.send_to(text_data="hello")
        await communicator.receive_from(timeout=30)
    phases["receive"] = (start, time.time())
    await settle()

    start = time.time()
    for _ in range(0, len(held) // 2, args.batch):
        # pop batch by batch: freeing 10,000 communicators at once is a stall of the
        # harness (~160 ms), not of the gateway
        batch = [held.pop() for _ in range(min(args.batch, len(held)))]
        await asyncio.gather(*(c.disconnect() for c in batch))
        del batch
    phases["close half"] = (start, time.time())
    await settle()

    start = time.time()
    await asyncio.sleep(args.idle)
    phases["idle after"] = (start, time.time())

    await asyncio.sleep(1.2)
    print(json.dumps({"sockets": args.sockets, "policy": args.policy,
                      "rss_kib_per_socket": round((rss1 - rss0) / args.sockets, 2),
                      "phases": {name: phase_summary(probe_file, *window)
                                 for name, window in phases.items()}}), file=sys.stderr)
    probe.cancel()
    if policy_task is not None:
        policy_task.cancel()
    os._exit(0)  # tearing down N communicators one by one is not what is measured


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=50_000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--policy", choices=("default", "freeze"), default="freeze")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--batch", type=int, default=200,
                        help="sockets opened (and closed) together in one gather")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args))
