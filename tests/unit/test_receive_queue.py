"""The websocket protocol's receive queue: FIFO, waits, and loses nothing to a cancel."""

from __future__ import annotations

import asyncio

from gateway.api.server import LazyQueue


async def test_items_come_out_in_order_and_the_queue_empties() -> None:
    queue = LazyQueue[object]()
    assert queue.empty()
    for n in range(3):
        queue.put_nowait(n)
    assert not queue.empty() and queue.qsize() == 3
    assert [await queue.get() for _ in range(3)] == [0, 1, 2]
    assert queue.empty()


async def test_a_waiting_receiver_gets_the_next_item() -> None:
    queue = LazyQueue[object]()
    receiver = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not receiver.done()
    queue.put_nowait({"type": "websocket.connect"})
    assert await receiver == {"type": "websocket.connect"}


async def test_a_receiver_cancelled_after_its_wake_up_leaves_the_item_to_the_next() -> None:
    queue = LazyQueue[object]()
    first, second = asyncio.ensure_future(queue.get()), asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("frame")  # wakes the first
    first.cancel()
    assert await second == "frame"
    assert first.cancelled() and queue.empty()


async def test_a_cancelled_receiver_is_forgotten() -> None:
    queue = LazyQueue[object]()
    receiver = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    receiver.cancel()
    await asyncio.sleep(0)
    queue.put_nowait("later")
    assert await queue.get() == "later"
