"""Calls made in the same loop turn are sent together; each caller gets its own result."""

from __future__ import annotations

import asyncio

import pytest

from gateway.ops.heartbeat import TurnBatches


class Sender:
    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.fail_on = fail_on

    async def __call__(self, items: list[int]) -> list[object]:
        self.calls.append(items)
        if self.fail_on in items:
            raise ConnectionError("redis went away")
        return [ValueError(f"bad {n}") if n < 0 else n * 10 for n in items]


async def test_one_turns_calls_are_sent_together_in_chunks_and_answered_each() -> None:
    sender = Sender()
    batches = TurnBatches(sender, size=4)
    results = await asyncio.gather(*(batches.submit(n) for n in range(10)))
    assert results == [n * 10 for n in range(10)]
    assert sender.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    await batches.submit(42)  # a later turn: a send of its own
    assert sender.calls[-1] == [42]


async def test_an_items_error_reaches_only_its_caller() -> None:
    batches = TurnBatches(Sender(), size=10)
    results = await asyncio.gather(batches.submit(1), batches.submit(-1), batches.submit(2),
                                   return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], ValueError)


async def test_a_failed_send_reaches_its_chunk_and_the_next_chunk_is_still_sent() -> None:
    sender = Sender(fail_on=1)
    batches = TurnBatches(sender, size=2)
    results = await asyncio.gather(*(batches.submit(n) for n in range(4)), return_exceptions=True)
    assert [type(r) for r in results[:2]] == [ConnectionError, ConnectionError]
    assert results[2:] == [20, 30]


async def test_a_cancelled_caller_does_not_stop_the_others() -> None:
    batches = TurnBatches(Sender(), size=10)
    doomed = asyncio.ensure_future(batches.submit(1))
    kept = asyncio.ensure_future(batches.submit(2))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await kept == 20
    with pytest.raises(asyncio.CancelledError):
        await doomed
