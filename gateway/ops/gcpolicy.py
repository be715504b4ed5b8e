"""The collector, kept off the live sockets: no full collection ever scans them.

A full (generation 2) collection scans every tracked object in the process. An idle
authenticated socket holds about 100 of them (consumer, scope, principal, tasks,
timers, layer queue), so with 6,000-10,000 sockets open a full collection paused the
loop for 0.55-0.85 s, and every socket of the process with it (issue 13).

Policy, measured in ``bench/inprocess.py`` and ``bench/open_sockets.py``:

1. at startup, ``tune_garbage_collector`` (``gateway.ops.lifespan``) freezes the
   framework and raises the first threshold;
2. every ``PERIOD`` seconds (0.1), :func:`freeze_survivors` collects what is not frozen (the
   objects created since the last round: its cost follows the connection rate, not the
   number of open sockets) and then freezes the survivors (``gc.freeze`` moves them to
   the permanent generation in O(1)). Sockets that stay open are thus scanned once or
   twice, then never again, and automatic full collections only see the last round's
   objects.

The price: a frozen object that later becomes part of an unreachable cycle is never
reclaimed (objects freed by reference counting, the normal case, are freed as usual).
So nothing that ends may leave a cycle behind. Known sources are broken where they arise:
the websocket protocol's ``write_now`` extension, websockets' parser generator and
uvicorn's upgraded HTTP parser (``config.hardening``), Django's lazy session load
(``gateway.login.session_store``), and Django's per-request cycles
(``gateway.ops.httpapp``). Checked in process by ``tests/channels/test_gc_policy.py``
and over real sockets by
``tests/e2e/test_collector.py`` (fewer unreachable objects than connections, frozen ones
included, as reported by ``bench/asgi.py``'s ``/bench/garbage/``); ``bench/soak.py``
watches memory over half an hour of churn.

Plain HTTP requests are the other source: each runs in a thread of its own with its own
database connection (Django's ``ThreadSensitiveContext``), whose wrapper objects refer to
one another. So while a request is in flight (``request_in_flight``), a round collects only
the young generations and does not freeze, for at most ``MAX_HELD_ROUNDS`` rounds in a row
(10 s: a request on a loaded machine with PostgreSQL can outlast 2 s); the first round
after it scans everything held meanwhile, once, and freezes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Iterator

PERIOD = 0.1  # seconds between rounds: a round scans what the last 0.1 s left alive
MAX_HELD_ROUNDS = 100  # rounds in a row that requests in flight may keep from freezing

_in_flight = 0
_held_rounds = 0


@contextlib.contextmanager
def request_in_flight() -> Iterator[None]:
    """Around a plain HTTP request: what it holds is not frozen while it runs."""
    global _in_flight
    _in_flight += 1
    try:
        yield
    finally:
        _in_flight -= 1


def requests_in_flight() -> int:
    """Plain HTTP requests running now (their objects are not frozen meanwhile)."""
    return _in_flight


def freeze_survivors() -> int:
    """Collect the unfrozen objects, then freeze what survived; while a request is in
    flight (a bounded number of rounds), collect the young generations only, and freeze
    nothing. Returns the objects collected."""
    global _held_rounds
    if _in_flight and _held_rounds < MAX_HELD_ROUNDS:
        _held_rounds += 1
        return gc.collect(1)  # what is held grows: it is scanned once, when the hold ends
    _held_rounds = 0
    collected = gc.collect()
    gc.freeze()
    return collected


async def keep_collections_young(period: float = PERIOD) -> None:
    """Run :func:`freeze_survivors` every ``period`` seconds while the process serves."""
    while True:
        await asyncio.sleep(period)
        freeze_survivors()
