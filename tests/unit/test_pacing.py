"""A burst of handshake work is spread over loop turns; a lone handshake never waits, and
the line of waiting work moves every turn."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

import pytest

from gateway.handshake.pacing import TurnBudget
from tests.unit.factories import FakeClock


class Turns:
    """Marks every loop turn with "|" in ``trace`` until ``stop``."""

    def __init__(self, trace: list[str]) -> None:
        self.trace = trace
        self.stopped = False
        asyncio.get_running_loop().call_soon(self.tick)

    def tick(self) -> None:
        self.trace.append("|")
        if not self.stopped:
            asyncio.get_running_loop().call_soon(self.tick)


def _turns(trace: list[str]) -> list[list[str]]:
    return [turn.split() for turn in " ".join(trace).split("|") if turn.split()]


async def _burst(budget: TurnBudget, clock: FakeClock, count: int, cost: float,
                 before: Callable[[], None] = lambda: None) -> list[list[str]]:
    """``count`` request heads arriving in the same turn, each costing ``cost`` seconds."""
    trace: list[str] = []
    done = asyncio.Event()

    def head(number: int) -> None:
        clock.now += cost
        trace.append(str(number))
        if number == count - 1:
            done.set()

    turns = Turns(trace)
    await asyncio.sleep(0)
    before()
    for number in range(count):
        budget.run(functools.partial(head, number))
    await asyncio.wait_for(done.wait(), 1)
    turns.stopped = True
    return _turns(trace)


async def test_a_burst_runs_a_budget_of_heads_per_turn_in_arrival_order() -> None:
    clock = FakeClock(0.0)
    turns = await _burst(TurnBudget(budget=0.005, clock=clock), clock, count=10, cost=0.002)
    # 0.002 s each within 0.005 s: three per turn (the third starts at 0.004)
    assert [len(turn) for turn in turns] == [3, 3, 3, 1]
    assert [n for turn in turns for n in turn] == [str(n) for n in range(10)]


async def test_heads_that_cost_nothing_all_run_at_once() -> None:
    clock = FakeClock(0.0)
    turns = await _burst(TurnBudget(budget=0.005, clock=clock), clock, count=50, cost=0.0)
    assert [len(turn) for turn in turns] == [50]


async def test_a_head_longer_than_the_budget_still_runs_one_per_turn() -> None:
    clock = FakeClock(0.0)
    turns = await _burst(TurnBudget(budget=0.005, clock=clock), clock, count=3, cost=0.05)
    assert [len(turn) for turn in turns] == [1, 1, 1]


async def test_charged_work_leaves_less_of_the_turn_for_heads() -> None:
    """The gateway's authentication is charged to the turn: heads parsed after it wait."""
    clock = FakeClock(0.0)
    budget = TurnBudget(budget=0.005, clock=clock)

    def authentication() -> None:
        budget.charge()
        clock.now += 0.004

    turns = await _burst(budget, clock, count=4, cost=0.002, before=authentication)
    assert [len(turn) for turn in turns] == [1, 3]


async def test_the_line_moves_every_turn_even_when_other_work_spends_each_turn() -> None:
    clock = FakeClock(0.0)
    budget = TurnBudget(budget=0.005, clock=clock)
    loop = asyncio.get_running_loop()
    stop = False

    def hog() -> None:  # every turn, charged handshake work that spends the whole budget
        budget.charge()
        clock.now += 0.01
        if not stop:
            loop.call_soon(hog)

    hog()
    try:
        turns = await _burst(budget, clock, count=3, cost=0.001)
    finally:
        stop = True
    assert [len(turn) for turn in turns] == [1, 1, 1]


async def test_a_failing_head_does_not_stop_the_line(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(0.0)
    budget = TurnBudget(budget=0.005, clock=clock)
    ran: list[int] = []

    def fails() -> None:
        raise RuntimeError("parser blew up")

    budget.charge()
    clock.now += 1.0  # this turn is spent: what follows is deferred
    budget.run(fails)
    budget.run(lambda: ran.append(1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert ran == [1] and not budget.line
    assert "deferred handshake work failed" in caplog.text


def test_a_line_left_by_a_closed_loop_does_not_hold_the_next_loop() -> None:
    clock = FakeClock(0.0)
    budget = TurnBudget(budget=0.005, clock=clock)

    gone = asyncio.new_event_loop()
    gone.close()
    # work queued in a loop that closed before its drainer ran
    budget.line.append(lambda: None)
    budget.line_loop, budget.draining = gone, True
    ran: list[int] = []

    async def next_head() -> None:
        budget.run(lambda: ran.append(1))

    asyncio.run(next_head())
    assert ran == [1]
