"""gateway/sockets/closegate.py: the cleanups of sockets that close together are spread
over loop turns, at most ``per_turn`` in each, oldest first; a lone close never waits."""

from __future__ import annotations

import asyncio

from gateway.sockets.closegate import TurnGate


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
    gate, counter = TurnGate(per_turn=3), TurnCounter()
    before = counter.turn
    await gate.wait()
    assert counter.turn == before  # no turn passed: it did not wait
    counter.running = False


async def test_many_closes_pass_at_most_per_turn_in_each_turn_in_order() -> None:
    gate, counter = TurnGate(per_turn=10), TurnCounter()
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
    gate = TurnGate(per_turn=1)
    first, second, third = (asyncio.ensure_future(gate.wait()) for _ in range(3))
    await asyncio.sleep(0)  # first passes in this turn; second and third wait in line
    assert first.done() and len(gate.waiting) == 2
    second.cancel()
    await asyncio.wait_for(third, 1)
    assert second.cancelled()
