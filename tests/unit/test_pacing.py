"""A burst of handshakes is spread over loop turns; a lone handshake never waits, and the
line of waiting work always moves."""

from __future__ import annotations

import asyncio

from gateway.handshake.pacing import TurnBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _burst(budget: TurnBudget, clock: FakeClock, count: int, cost: float) -> list[str]:
    """``count`` handshakes ready in the same turn, each costing ``cost`` seconds, and a
    ticker that marks every loop turn with "|"."""
    trace: list[str] = []
    done = asyncio.Event()

    def tick() -> None:
        trace.append("|")
        if not done.is_set():
            asyncio.get_running_loop().call_soon(tick)

    async def handshake(number: int) -> None:
        await budget.wait_turn()
        clock.now += cost  # the handshake's own work
        trace.append(str(number))

    asyncio.get_running_loop().call_soon(tick)
    await asyncio.gather(*(handshake(n) for n in range(count)))
    done.set()
    await asyncio.sleep(0)
    return trace


def _turns(trace: list[str]) -> list[list[str]]:
    return [turn.split() for turn in " ".join(trace).split("|") if turn.split()]


async def test_a_burst_runs_a_budget_of_handshakes_per_turn_in_arrival_order() -> None:
    clock = FakeClock()
    budget = TurnBudget(budget=0.005, clock=clock)
    trace = await _burst(budget, clock, count=10, cost=0.002)
    turns = _turns(trace)
    # 0.002 s each within 0.005 s: three per turn (the third starts at 0.004)
    assert [len(turn) for turn in turns] == [3, 3, 3, 1]
    assert [n for turn in turns for n in turn] == [str(n) for n in range(10)]


async def test_handshakes_that_cost_nothing_all_run_in_one_turn() -> None:
    clock = FakeClock()
    trace = await _burst(TurnBudget(budget=0.005, clock=clock), clock, count=50, cost=0.0)
    assert [len(turn) for turn in _turns(trace)] == [50]


async def test_one_handshake_longer_than_the_budget_still_runs_at_once() -> None:
    clock = FakeClock()
    trace = await _burst(TurnBudget(budget=0.005, clock=clock), clock, count=3, cost=0.05)
    assert [len(turn) for turn in _turns(trace)] == [1, 1, 1]


def test_a_stretch_left_by_a_closed_loop_does_not_hold_the_next_loop() -> None:
    clock = FakeClock()
    budget = TurnBudget(budget=0.005, clock=clock)
    stopped = asyncio.new_event_loop()
    stopped.close()
    budget.loop, clock.now = stopped, 1.0  # its stretch never ended, far over budget

    async def next_handshake() -> None:
        await asyncio.wait_for(budget.wait_turn(), 1)

    asyncio.run(next_handshake())


async def test_work_run_by_the_server_is_paced_in_arrival_order() -> None:
    """``run`` is what the server's protocol uses for request heads (config.hardening)."""
    clock = FakeClock()
    budget = TurnBudget(budget=0.005, clock=clock)
    trace: list[str] = []
    finished = asyncio.Event()

    def tick() -> None:
        trace.append("|")
        if not finished.is_set():
            asyncio.get_running_loop().call_soon(tick)

    def head(number: int) -> None:
        clock.now += 0.002
        trace.append(str(number))
        if number == 9:
            finished.set()

    asyncio.get_running_loop().call_soon(tick)
    await asyncio.sleep(0)
    for number in range(10):
        budget.run(lambda number=number: head(number))
    await asyncio.wait_for(finished.wait(), 1)
    turns = _turns(trace)
    assert [n for turn in turns for n in turn] == [str(n) for n in range(10)]
    assert max(len(turn) for turn in turns) == 3


async def test_the_oldest_waiter_goes_even_when_other_work_fills_every_turn() -> None:
    """A waiter queued ahead of the end of a spent stretch is not starved by work that
    spends each turn's budget before the waiter's turn comes round."""
    clock = FakeClock()
    budget = TurnBudget(budget=0.005, clock=clock)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def hog() -> None:  # every turn, handshake work that spends the whole budget
        budget.has_room()
        clock.now += 0.01
        if not stop.is_set():
            loop.call_soon(hog)

    waiter = asyncio.ensure_future(budget.wait_turn())  # its first step is queued now
    hog()  # starts a stretch whose end is queued behind the waiter, and spends it
    try:
        await asyncio.wait_for(asyncio.shield(waiter), 1)
    finally:
        stop.set()
    assert waiter.done() and budget.line == {}


async def test_a_waiter_cancelled_in_line_leaves_it() -> None:
    clock = FakeClock()
    budget = TurnBudget(budget=0.005, clock=clock)
    waiter = asyncio.ensure_future(budget.wait_turn())  # runs before the stretch ends
    budget.has_room()
    clock.now += 1.0  # this turn is spent
    await asyncio.sleep(0)
    assert len(budget.line) == 1
    waiter.cancel()
    await asyncio.sleep(0)
    assert budget.line == {}
