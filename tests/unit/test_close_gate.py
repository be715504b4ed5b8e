"""gateway/ops/closegate.py: the work of sockets that close together is spread over
loop turns, at most ``per_turn`` in each, oldest first; a lone close never waits."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.ops.closegate import TurnGate


class TurnCounter:
    """Counts loop turns: a callback that queues itself again runs once per turn."""

    def __init__(self) -> None:
        self.turn = 0
        self.running = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        if self.running:
            asyncio.get_running_loop().call_soon(self._tick)


async def test_a_lone_close_passes_without_yielding() -> None:
    gate, counter = TurnGate("test", per_turn=3), TurnCounter()
    before = counter.turn
    await gate.wait()
    assert counter.turn == before  # no turn passed: it did not wait
    counter.running = False


async def test_many_closes_pass_at_most_per_turn_in_each_turn_in_order() -> None:
    gate, counter = TurnGate("test", per_turn=10), TurnCounter()
    admitted: list[tuple[int, int]] = []  # (close, turn it passed in)

    async def close(number: int) -> None:
        await gate.wait()
        admitted.append((number, counter.turn))

    await asyncio.gather(*(close(n) for n in range(95)))
    counter.running = False
    assert [number for number, _ in admitted] == list(range(95))
    per_turn: dict[int, int] = {}
    for _, turn in admitted:
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) <= 10
    assert len(per_turn) >= 10  # 95 closes needed at least ten turns


async def test_a_waiter_cancelled_in_line_does_not_hold_the_others() -> None:
    gate = TurnGate("test", per_turn=1)
    first, second, third = (asyncio.ensure_future(gate.wait()) for _ in range(3))
    await asyncio.sleep(0)  # first passes in this turn; second and third wait in line
    assert first.done() and len(gate.waiting) == 2
    second.cancel()
    await asyncio.wait_for(third, 1)
    assert second.cancelled()


async def test_callbacks_run_at_once_while_the_turn_has_room_then_in_later_turns_in_order() -> None:
    gate, counter = TurnGate("test", per_turn=10), TurnCounter()
    ran: list[tuple[int, int]] = []  # (callback, turn it ran in)
    start = counter.turn
    for number in range(35):
        gate.run(lambda number=number: ran.append((number, counter.turn)))  # type: ignore[misc]
    assert [n for n, _ in ran] == list(range(10))  # the first ten ran inside run()
    assert {turn for _, turn in ran} == {start}
    while len(ran) < 35:
        await asyncio.sleep(0)
    counter.running = False
    assert [n for n, _ in ran] == list(range(35))
    per_turn: dict[int, int] = {}
    for _, turn in ran:
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) <= 10 and len(per_turn) >= 4


async def test_a_callback_and_an_awaiter_share_one_line() -> None:
    gate, loop = TurnGate("test", per_turn=1), asyncio.get_running_loop()
    order: list[str] = []

    async def awaiter() -> None:
        await gate.wait()
        order.append("awaiter")

    gate.run(lambda: order.append("a"))  # takes this turn's one place
    gate.run(lambda: order.append("b"))  # waits for the next turn's
    waiting = asyncio.ensure_future(awaiter())  # next turn: finds it full, waits behind b
    loop.call_soon(gate.run, lambda: order.append("callback"))  # then behind the awaiter
    await asyncio.wait_for(waiting, 1)
    while len(order) < 4:
        await asyncio.sleep(0)
    assert order == ["a", "b", "awaiter", "callback"]


async def test_a_failing_callback_in_line_is_logged_and_the_line_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    gate = TurnGate("test", per_turn=1)
    ran: list[int] = []

    def fail() -> None:
        raise RuntimeError("boom")

    gate.run(lambda: ran.append(0))
    gate.run(fail)
    gate.run(lambda: ran.append(2))
    with caplog.at_level(logging.ERROR, logger="gateway.pacing"):
        while len(ran) < 2:
            await asyncio.sleep(0)
    assert ran == [0, 2]
    assert "deferred test work failed" in caplog.text
