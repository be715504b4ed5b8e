"""The gateway's ASGI app plus unauthenticated routes, for like-for-like benchmarks.

The routes are plain Channels consumers with no gateway middleware, served by the same
process as the gateway:

- ``/bench/open/`` is stock ``AsyncWebsocketConsumer``. Channels 4.3 hops to the
  database thread before every handler (three hops per socket).
- ``/bench/lean/`` is the same consumer with the gateway's dispatch, which skips those
  hops (``consumers.base.GatewayConsumer.dispatch``). Against it, the only difference
  left is what the gateway adds: authentication, policy, audit and addressing.
- ``/bench/fanout/`` and ``/bench/fanout-pub/`` are R of ``bench/fanout.py``: the stock
  Channels fan-out. A subscriber joins the channel-layer group ``bench-fanout`` (the
  consumer's ``groups``), is welcomed, and forwards every group message's text as a
  frame; every text frame a publisher sends is one ``group_send`` to that group.

``application`` serves the bench routes beside the gateway's websocket stack (no drain
wrapper). ``deployed`` puts them in front of the production application
(``config.asgi.application``, drain outermost), so the gateway beside them runs exactly
as deployed (``bench/fanout.py`` measures G and R in the same processes).
"""

import asyncio
import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import tracemalloc
import types
from collections import Counter
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter

from config.asgi import application as production
from config.asgi import django_http, router, websocket
from consumers.base import GatewayConsumer
from gateway.ops.drain import Receive, Scope, Send
from gateway.ops.gcpolicy import requests_in_flight

FANOUT_GROUP = "bench-fanout"
WELCOME = '{"type":"welcome"}'


class OpenConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=WELCOME)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)  # echo (latency probes)


class LeanConsumer(OpenConsumer):
    dispatch = GatewayConsumer.dispatch
    websocket_disconnect = GatewayConsumer.websocket_disconnect

    async def disconnect(self, code: int) -> None:
        pass


class FanoutSubscriber(AsyncWebsocketConsumer):
    groups = [FANOUT_GROUP]  # joined by Channels before connect(), left on disconnect

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=WELCOME)  # a member of the group from here on

    async def bench_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class FanoutPublisher(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.channel_layer.group_send(FANOUT_GROUP, {"type": "bench.message",
                                                               "text": text_data})


_baseline: list[Any] = []  # the last probe's tracemalloc snapshot (PYTHONTRACEMALLOC=1)


def _grown_since_last_probe() -> list[str]:
    """Where allocations grew since the previous probe, by line (when tracemalloc runs)."""
    if not tracemalloc.is_tracing():
        return []
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])
    grown = ([str(stat) for stat in snapshot.compare_to(_baseline[0], "lineno")
              if stat.size_diff > 0][:12] if _baseline else [])
    _baseline[:] = [snapshot]
    return grown


class MemoryProbe(AsyncWebsocketConsumer):
    """``/bench/memory/``: live allocations by line (tracemalloc, ``PYTHONTRACEMALLOC=1``)
    grown since the previous probe, after a collection: what the sockets opened between
    two probes hold (``bench/memory_per_socket.py`` divides by their number)."""

    async def connect(self) -> None:
        await self.accept()
        gc.collect()
        grown: list[tuple[str, int, int]] = []
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)])
            if _memory_baseline:
                grown = [(str(stat.traceback), stat.size_diff, stat.count_diff) for stat in
                         snapshot.compare_to(_memory_baseline[0], "lineno")[:60]]
            _memory_baseline[:] = [snapshot]
        gc.freeze()
        await self.send(text_data=json.dumps({"grown": grown}))
        await self.close()


_memory_baseline: list[Any] = []


def _tracked_by_type() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects())


class GarbageProbe(AsyncWebsocketConsumer):
    """``/bench/garbage/``: what a full collection of every object, frozen ones included,
    frees (the collector policy would leak it), by type; then freezes again. Counted as
    tracked objects before less after, plus what ``gc.garbage`` saved: a cycle through a
    suspended generator is freed while the generator is finalized, and never saved."""

    async def connect(self) -> None:
        await self.accept()
        await _requests_done()
        # Other threads free objects too (the audit writer drops each event it wrote): with
        # a long switch interval none of them runs until the count is made.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(30)
        gc.unfreeze()
        before = _tracked_by_type()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            saved = Counter(type(o).__name__ for o in gc.garbage)
            # A cycle through a suspended generator ends while it is finalized (the
            # generator closes, its frame lets go): freed then, never saved in gc.garbage.
            found = saved + (before - _tracked_by_type() - saved)
            sys.setswitchinterval(switch_interval)
            frames = Counter(f"{o.f_code.co_filename.rsplit('/', 2)[-1]}:{o.f_code.co_qualname}"
                             for o in gc.garbage if isinstance(o, types.FrameType))
            errors = Counter(type(o).__name__ for o in gc.garbage if isinstance(o, BaseException))
            requests = [o for o in gc.garbage if type(o).__name__ == "ASGIRequest"]
            holders = Counter(k for r in requests for holder in gc.get_referrers(r)
                              if isinstance(holder, dict) for k, v in holder.items() if v is r)
            for r in requests:
                holders.update(f"{type(h).__name__}" for h in gc.get_referrers(r)
                               if not isinstance(h, (dict, list, types.FrameType)))
        finally:
            sys.setswitchinterval(switch_interval)
            gc.set_debug(0)
            gc.garbage.clear()
            gc.collect()
            gc.freeze()
        await self.send(text_data=json.dumps({"grown": _grown_since_last_probe(),
                                              "unreachable": sum(found.values()),
                                              "by_type": found.most_common(15),
                                              "frames": frames.most_common(10),
                                              "exceptions": errors.most_common(10),
                                              "request_holders": holders.most_common(10)}))
        await self.close()


async def _requests_done(limit: float = 10.0) -> None:
    """Wait until no plain HTTP request is in flight, as the policy's rounds do before
    they freeze: a request's thread (and its database connection's wrapper, a cycle)
    may outlive the response its client already read, and ends only when the request's
    context has joined it. Freezing before that would strand the wrapper."""
    deadline = asyncio.get_running_loop().time() + limit
    while requests_in_flight() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110 (a counter, no event)
        await asyncio.sleep(0.01)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _malloc_info() -> dict[str, int]:
    """glibc's own account: heap obtained (arena), in use (uordblks), free but kept
    (fordblks), mmapped blocks (hblkhd); in KiB."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {f"malloc_{name}": getattr(info, name) // 1024
            for name in ("arena", "uordblks", "fordblks", "hblkhd")}


def _pymalloc_arenas() -> dict[str, int]:
    """pymalloc's arenas (``sys._debugmallocstats`` writes to the C stderr)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    wanted = {"arenas allocated current": "pymalloc_arenas",
              "bytes in allocated blocks": "pymalloc_used_kib",
              "bytes in available blocks": "pymalloc_free_kib",
              "unused pools": "pymalloc_unused_pools"}
    found: dict[str, int] = {}
    for line in text.splitlines():
        for label, key in wanted.items():
            if line.startswith(f"# {label}") or line.startswith(label):
                value = int(re.sub(r"[^0-9]", "", line.split("=")[-1]) or 0)
                found[key] = value // 1024 if key.endswith("_kib") else value
    return found


_type_counts: list[Counter[str]] = []  # the last heap probe's count of tracked objects by type


def _grown_types() -> list[tuple[str, int]]:
    """Tracked objects (frozen ones included) whose count grew since the last heap probe."""
    gc.unfreeze()
    try:
        counts = Counter(type(o).__qualname__ for o in gc.get_objects())
    finally:
        if os.environ.get("BENCH_NO_FREEZE") != "1":
            gc.freeze()
    grown = (counts - _type_counts[0]).most_common(12) if _type_counts else []
    _type_counts[:] = [counts]
    return grown


class HeapProbe(AsyncWebsocketConsumer):
    """``/bench/heap/``: where the process's memory is, by allocator (soak.py ``--heap``)."""

    async def connect(self) -> None:
        await self.accept()
        stats = {"blocks": sys.getallocatedblocks(), "frozen": gc.get_freeze_count(),
                 "tracked": len(gc.get_objects()), **_malloc_info(), **_pymalloc_arenas()}
        await self.send(text_data=json.dumps({**stats, "types": _grown_types()}))
        await self.close()


ROUTES = {"/bench/open/": OpenConsumer.as_asgi(), "/bench/lean/": LeanConsumer.as_asgi(),
          "/bench/fanout/": FanoutSubscriber.as_asgi(),
          "/bench/fanout-pub/": FanoutPublisher.as_asgi(),
          "/bench/garbage/": GarbageProbe.as_asgi(), "/bench/heap/": HeapProbe.as_asgi(),
          "/bench/memory/": MemoryProbe.as_asgi()}


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    app = ROUTES.get(scope["path"], websocket)
    await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_http, "websocket": _websocket,
                                  "lifespan": router.application_mapping["lifespan"]})


async def deployed(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket" and scope["path"] in ROUTES:
        await ROUTES[scope["path"]](scope, receive, send)
    else:
        await production(scope, receive, send)
