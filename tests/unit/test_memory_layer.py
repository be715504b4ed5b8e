"""The flat in-memory channel layer (#13 point 1): Channels' semantics, and work per
call that does not grow with the number of channels (counted, not timed)."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

from gateway.bus import memory
from gateway.bus.memory import FlatInMemoryChannelLayer

from .factories import FakeClock

LAYERS = [InMemoryChannelLayer, FlatInMemoryChannelLayer]
EXPIRY, GROUP_EXPIRY = 60, 86400


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(now=1_000_000.0)


@pytest.fixture
def layer(clock: FakeClock) -> FlatInMemoryChannelLayer:
    return FlatInMemoryChannelLayer(capacity=3, clock=clock)


async def nothing_arrives(layer: Any, channel: str) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), timeout=0.05)
    except TimeoutError:
        return True
    return False


# -- parity with Channels' InMemoryChannelLayer -------------------------------------------

@pytest.mark.parametrize("cls", LAYERS)
async def test_send_receive_in_order_with_copies(cls: type[Any]) -> None:
    layer = cls()
    message: dict[str, Any] = {"type": "a", "body": [1]}
    await layer.send("c", message)
    await layer.send("c", {"type": "b"})
    message["body"].append(2)  # the layer holds its own copy
    assert await layer.receive("c") == {"type": "a", "body": [1]}
    assert await layer.receive("c") == {"type": "b"}


@pytest.mark.parametrize("cls", LAYERS)
async def test_receive_waits_for_a_send(cls: type[Any]) -> None:
    layer = cls()
    waiting = asyncio.ensure_future(layer.receive("c"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await layer.send("c", {"type": "x"})
    assert await waiting == {"type": "x"}


@pytest.mark.parametrize("cls", LAYERS)
async def test_capacity_raises_channel_full(cls: type[Any]) -> None:
    layer = cls(capacity=2)
    await layer.send("c", {"type": "1"})
    await layer.send("c", {"type": "2"})
    with pytest.raises(ChannelFull):
        await layer.send("c", {"type": "3"})
    assert await layer.receive("c") == {"type": "1"}
    await layer.send("c", {"type": "3"})  # room again


@pytest.mark.parametrize("cls", LAYERS)
async def test_groups_add_send_discard(cls: type[Any]) -> None:
    layer = cls()
    await layer.group_add("g", "a")
    await layer.group_add("g", "b")
    await layer.group_send("g", {"type": "hello"})
    assert await layer.receive("a") == await layer.receive("b") == {"type": "hello"}
    await layer.group_discard("g", "a")
    await layer.group_send("g", {"type": "again"})
    assert await layer.receive("b") == {"type": "again"}
    assert await nothing_arrives(layer, "a")
    assert "g" in layer.groups and "a" not in layer.groups["g"]
    await layer.group_discard("g", "b")
    assert "g" not in layer.groups
    await layer.group_send("nobody", {"type": "void"})  # an unknown group is a no-op


@pytest.mark.parametrize("cls", LAYERS)
async def test_group_send_skips_a_full_member(cls: type[Any]) -> None:
    layer = cls(capacity=1)
    await layer.group_add("g", "full")
    await layer.group_add("g", "free")
    await layer.send("full", {"type": "first"})
    await layer.group_send("g", {"type": "fan"})
    assert await layer.receive("full") == {"type": "first"}
    assert await layer.receive("free") == {"type": "fan"}


@pytest.mark.parametrize("cls", LAYERS)
async def test_new_channel_names(cls: type[Any]) -> None:
    layer = cls()
    names = {await layer.new_channel() for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"specific\.\.inmemory![A-Za-z]{12}", n) for n in names)
    name = next(iter(names))
    await layer.send(name, {"type": "x"})
    assert await layer.receive(name) == {"type": "x"}


@pytest.mark.parametrize("cls", LAYERS)
async def test_flush_forgets_everything(cls: type[Any]) -> None:
    layer = cls()
    await layer.send("c", {"type": "x"})
    await layer.group_add("g", "c")
    await layer.flush()
    assert layer.groups == {} and not layer.channels
    assert await nothing_arrives(layer, "c")


@pytest.mark.parametrize("cls", LAYERS)
@pytest.mark.parametrize("call", [
    lambda layer: layer.send("bad name", {"type": "x"}),
    lambda layer: layer.receive("x" * 200),
    lambda layer: layer.group_add("bad/group", "c"),
    lambda layer: layer.group_send("bad group", {"type": "x"}),
    lambda layer: layer.group_discard("g", "bad channel"),
])
async def test_invalid_names_raise_type_error(cls: type[Any], call: Callable[[Any], Awaitable[Any]]) -> None:
    with pytest.raises(TypeError):
        await call(cls())


@pytest.mark.parametrize("bad", [["not", "a", "dict"], {"__asgi_channel__": "c"}])
async def test_bad_messages_refused(layer: FlatInMemoryChannelLayer, bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        await layer.send("c", bad)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises((TypeError, ValueError)):
        await layer.group_send("g", bad)  # type: ignore[arg-type]  # a wrong type on purpose


async def test_channel_capacity_globs() -> None:
    """Compiled here; Channels' in-memory layer iterates the raw dict and fails."""
    layer = FlatInMemoryChannelLayer(capacity=5, channel_capacity={"small.*": 1})
    await layer.send("small.one", {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send("small.one", {"type": "y"})
    for _ in range(5):
        await layer.send("big", {"type": "x"})


# -- expiry, with an injected clock ------------------------------------------------------

async def test_expired_message_is_not_delivered(layer: FlatInMemoryChannelLayer, clock: FakeClock) -> None:
    await layer.send("c", {"type": "old"})
    clock.now += EXPIRY + 1
    await layer.send("c", {"type": "new"})
    assert await layer.receive("c") == {"type": "new"}


async def test_message_just_before_expiry_is_delivered(
        layer: FlatInMemoryChannelLayer, clock: FakeClock) -> None:
    await layer.send("c", {"type": "x"})
    clock.now += EXPIRY
    assert await layer.receive("c") == {"type": "x"}


async def test_expired_messages_free_capacity(layer: FlatInMemoryChannelLayer, clock: FakeClock) -> None:
    for i in range(3):
        await layer.send("c", {"type": str(i)})
    clock.now += EXPIRY + 1
    await layer.send("c", {"type": "fresh"})  # Channels' layer would say ChannelFull here
    assert await layer.receive("c") == {"type": "fresh"}


async def test_a_channel_that_let_a_message_expire_leaves_its_groups(
        layer: FlatInMemoryChannelLayer, clock: FakeClock) -> None:
    """As in Channels: nobody reads it, so group messages stop piling up there."""
    await layer.group_add("g1", "dead")
    await layer.group_add("g2", "dead")
    await layer.group_add("g1", "alive")
    await layer.send("dead", {"type": "unread"})
    clock.now += EXPIRY + 1
    await layer.group_send("g1", {"type": "fan"})
    assert layer.groups == {"g1": {"alive": clock.now - EXPIRY - 1}}
    assert "dead" not in layer.memberships and "dead" not in layer.channels
    assert await layer.receive("alive") == {"type": "fan"}


async def test_membership_expires_after_group_expiry(
        layer: FlatInMemoryChannelLayer, clock: FakeClock) -> None:
    await layer.group_add("g", "c")
    clock.now += GROUP_EXPIRY + 1
    await layer.group_send("g", {"type": "late"})
    assert layer.groups == {} and layer.memberships == {}
    assert await nothing_arrives(layer, "c")


async def test_group_add_renews_a_membership(layer: FlatInMemoryChannelLayer, clock: FakeClock) -> None:
    await layer.group_add("g", "c")
    clock.now += GROUP_EXPIRY - 10
    await layer.group_add("g", "c")
    clock.now += 20
    await layer.group_send("g", {"type": "still"})
    assert await layer.receive("c") == {"type": "still"}


async def test_the_sweep_frees_channels_nobody_touches_again(clock: FakeClock) -> None:
    """Each new queue or first membership looks at two old ones, in turn."""
    layer = FlatInMemoryChannelLayer(clock=clock, sweep_per_call=2)
    for i in range(10):
        await layer.group_add(f"g{i}", f"dead{i}")
        await layer.send(f"dead{i}", {"type": "unread"})
    await layer.group_add("old", "quiet")  # a membership nobody sends to
    await layer.send("read", {"type": "x"})
    await layer.receive("read")  # read once, then never again: an empty queue
    clock.now += GROUP_EXPIRY + 1
    for i in range(6):  # 11 old queues and 11 old membership sets, 2 per new one
        await layer.send(f"new{i}", {"type": "x"})
        await layer.group_add("fresh", f"new{i}")
    assert set(layer.channels) == {f"new{i}" for i in range(6)}
    assert set(layer.groups) == {"fresh"} and set(layer.memberships) == set(layer.channels)


async def test_a_waiting_receiver_keeps_its_channel(layer: FlatInMemoryChannelLayer) -> None:
    waiting = asyncio.ensure_future(layer.receive("c"))
    await asyncio.sleep(0)
    for _ in range(5):  # sweeps pass over the empty queue with a receiver on it
        await layer.send("d", {"type": "x"})
        await layer.receive("d")
    await layer.send("c", {"type": "for-the-waiter"})
    assert await waiting == {"type": "for-the-waiter"}
    assert "c" in layer.channels  # kept for the consumer's next receive, until swept


async def test_a_cancelled_receive_leaves_nothing_behind(layer: FlatInMemoryChannelLayer) -> None:
    waiting = asyncio.ensure_future(layer.receive("c"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert "c" not in layer.channels


# -- work per call does not grow with the number of channels -----------------------------

class Counted(FlatInMemoryChannelLayer):
    """Counts every queue and membership set the layer inspects."""

    inspected = 0

    def _expire(self, channel: str, inbox: Any, now: float) -> bool:
        self.inspected += 1
        return super()._expire(channel, inbox, now)

    def _expire_memberships(self, channel: str, groups: set[str], now: float) -> None:
        self.inspected += 1
        super()._expire_memberships(channel, groups, now)


@contextmanager
def lines_run_in(module: Any) -> Iterator[list[int]]:
    """Count the Python lines executed in ``module``'s file: any loop over channels,
    however written, shows up here."""
    filename = module.__file__
    count = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            count[0] += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == filename else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield count
    finally:
        sys.settrace(previous)


async def connect_and_leave(layer: Any, channel: str) -> None:
    """What a consumer does to the layer: join groups and receive, then go."""
    await layer.group_add(f"user{channel}", channel)
    receiving = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    receiving.cancel()
    await asyncio.gather(receiving, return_exceptions=True)
    await layer.group_discard(f"user{channel}", channel)


async def work_per_call(open_channels: int, rounds: int = 100, **options: Any) -> tuple[int, int]:
    """(queues and membership sets inspected, lines run) for ``rounds`` rounds of send,
    receive, group_send, and a socket that connects and leaves, with ``open_channels``
    idle sockets: each has a receiver waiting and two group memberships, as a consumer."""
    layer = Counted(**options)
    idle = [f"idle{i}" for i in range(open_channels)]
    for channel in idle:
        await layer.group_add(f"user{channel}", channel)
        await layer.group_add(f"session{channel}", channel)
    waiting = [asyncio.ensure_future(layer.receive(channel)) for channel in idle]
    await asyncio.sleep(0)
    await layer.group_add("mine", "me")
    layer.inspected = 0
    with lines_run_in(memory) as lines:
        for r in range(rounds):
            await layer.send("me", {"type": "direct"})
            await layer.receive("me")
            await layer.group_send("mine", {"type": "fan"})
            await layer.receive("me")
            await connect_and_leave(layer, f"new{r}")
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    return layer.inspected, lines[0]


async def test_work_per_call_does_not_grow_from_10_to_10000_channels() -> None:
    """A scan would multiply both counts by about 1,000. They may differ a little,
    because with 10 channels the sweep comes round to the busy channels more often."""
    few, many = await work_per_call(10), await work_per_call(10_000)
    assert few[0] > 0 and few[1] > 0
    assert many[0] < few[0] * 1.05 and many[1] < few[1] * 1.05


async def test_the_count_would_catch_a_full_scan() -> None:
    """The same counts, on a layer told to sweep everything each call, grow with channels."""
    few = await work_per_call(10, rounds=10, sweep_per_call=10**9)
    many = await work_per_call(200, rounds=10, sweep_per_call=10**9)
    assert many[0] > 10 * few[0] and many[1] > 10 * few[1]
