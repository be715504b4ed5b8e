"""The collector policy (gateway/ops/gcpolicy.py) and the assumption it rests on.

Freezing survivors is safe only if closed sockets leave no cyclic garbage among frozen
objects: reference counting must free them. These tests count objects, never time.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from gateway.ops.gcpolicy import MAX_HELD_ROUNDS, freeze_survivors, request_in_flight
from tests.channels.conftest import token

pytestmark = pytest.mark.django_db(transaction=True)


class Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def clean_collector() -> Iterator[None]:
    gc.collect()
    was = gc.get_freeze_count()
    yield
    gc.set_debug(0)
    gc.garbage.clear()
    if gc.get_freeze_count() != was:
        gc.unfreeze()


def test_freeze_survivors_collects_young_cycles_then_freezes_the_rest(clean_collector: None) -> None:
    gc.unfreeze()
    cycle = Node()
    del cycle  # unreachable, only a collection frees it
    kept = [Node() for _ in range(100)]
    frozen_before = gc.get_freeze_count()
    assert freeze_survivors() >= 1  # the dead cycle
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    scanned = {id(o) for o in gc.get_objects()}  # every generation, never the frozen
    assert not any(id(node) in scanned for node in kept)


async def _open(count: int) -> list[WebsocketCommunicator]:
    opened = []
    headers = [(b"authorization", f"Bearer {token()}".encode())]
    for _ in range(count):
        comm = WebsocketCommunicator(application, "/ws/", headers=headers)
        connected, _ = await comm.connect()
        assert connected
        assert json.loads(await comm.receive_from())["type"] == "welcome"
        opened.append(comm)
    return opened


async def test_a_closed_socket_leaves_no_cyclic_garbage(clean_collector: None) -> None:
    """Open sockets, freeze them as the policy does, close them: nothing unreachable
    may be left for a full collection to find (it would leak while frozen)."""
    warm = await _open(3)  # first-use caches, loggers and the like
    for comm in warm:
        await comm.disconnect()
    del warm, comm
    sockets = await _open(50)
    freeze_survivors()
    for comm in sockets:
        await comm.disconnect()
    del sockets, comm
    gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    leftovers = [type(o).__name__ for o in gc.garbage]
    assert len(leftovers) < 50, leftovers[:40]  # fewer than one object per closed socket


def test_a_request_in_flight_holds_freezing_for_a_bounded_number_of_rounds(
        clean_collector: None) -> None:
    """Per-request threads and database connections must not be frozen while alive."""
    gc.unfreeze()
    with request_in_flight():
        for _ in range(MAX_HELD_ROUNDS):
            kept = [Node() for _ in range(10)]
            freeze_survivors()
            assert gc.get_freeze_count() == 0, "frozen while a request was in flight"
        freeze_survivors()  # a request that never ends cannot hold it for ever
        assert gc.get_freeze_count() >= len(kept)
    gc.unfreeze()
    freeze_survivors()
    assert gc.get_freeze_count() > 0
