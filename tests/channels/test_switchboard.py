"""One layer channel per process (gateway.sockets.switchboard) and the sockets' outbox."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from channels.layers import get_channel_layer

import consumers.protocol
import consumers.pubsub
from consumers.base import OUTBOX_FRAMES
from consumers.pubsub import PubSubConsumer
from gateway.sockets.addressing import revoke, subject_group
from gateway.sockets.envelope import message_event
from gateway.sockets.switchboard import Switchboard, switchboard
from oidc.channels import group_name
from oidc.types import ChannelName
from tests.channels.test_pubsub import BOB, ISS, connect, grants, request  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYS = ChannelName("deploys")


async def _subscribed(count: int) -> list[Any]:
    sockets = [await connect(BOB) for _ in range(count)]
    for comm in sockets:
        assert (await request(comm, type="subscribe", id="s", channel="deploys"))["type"] == "ack"
    return sockets


async def test_many_local_subscribers_are_one_layer_member_and_one_encoding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[dict[str, Any]] = []
    real_encode = consumers.protocol.encode  # what consumers.pubsub calls, until patched below

    def counting(frame: dict[str, Any]) -> str:
        encoded.append(frame)
        return real_encode(frame)

    monkeypatch.setattr(consumers.pubsub, "encode", counting)
    sockets = await _subscribed(3)
    layer = get_channel_layer()
    assert list(layer.groups[group_name(DEPLOYS)]) == [switchboard().channel]
    await layer.group_send(group_name(DEPLOYS), message_event(DEPLOYS, {"n": 1}))
    for comm in sockets:
        got = json.loads(await comm.receive_from())
        assert (got["type"], got["payload"]) == ("message", {"n": 1})
    assert [frame["type"] for frame in encoded] == ["message"]
    for comm in sockets:
        await comm.disconnect()


async def test_the_last_socket_to_leave_takes_the_process_out_of_the_group() -> None:
    first, second = await _subscribed(2)
    layer = get_channel_layer()
    await request(first, type="unsubscribe", id="u", channel="deploys")
    assert group_name(DEPLOYS) in layer.groups
    await second.disconnect()
    assert group_name(DEPLOYS) not in layer.groups
    assert group_name(DEPLOYS) not in switchboard().members
    await first.disconnect()


async def test_an_event_that_names_no_group_is_dropped_and_counted() -> None:
    comm = await connect(BOB)
    board = switchboard()
    dropped = board.dropped
    group = subject_group(ISS, "bob")
    unnamed = {k: v for k, v in revoke(group, "logged_out").items() if k != "group"}
    await get_channel_layer().group_send(group, unnamed)
    assert await comm.receive_nothing(timeout=0.2)
    assert board.dropped == dropped + 1
    await get_channel_layer().group_send(group, revoke(group, "logged_out"))
    assert (await comm.receive_output(timeout=1))["code"] == 4401
    await comm.disconnect()


async def test_a_backends_message_without_its_group_is_routed_by_channel() -> None:
    (comm,) = await _subscribed(1)
    event = {k: v for k, v in message_event(DEPLOYS, "hi").items() if k != "group"}
    await get_channel_layer().group_send(group_name(DEPLOYS), event)
    assert json.loads(await comm.receive_from())["payload"] == "hi"
    await comm.disconnect()


class _Member:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def deliver(self, event: dict[str, Any], shared: dict[str, Any]) -> None:
        self.events.append(event)


class _GatedLayer:
    """A layer whose group_add waits for ``gate`` and may fail."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.fail = False
        self.added: list[str] = []

    async def new_channel(self, prefix: str) -> str:
        return prefix + "test"

    async def group_add(self, group: str, channel: str) -> None:
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("bus down")
        self.added.append(group)

    async def group_discard(self, group: str, channel: str) -> None:
        self.added.remove(group)

    async def receive(self, channel: str) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError


async def test_members_joining_meanwhile_wait_for_the_layer_membership() -> None:
    layer = _GatedLayer()
    board = Switchboard(layer)
    first, second = _Member(), _Member()
    joining = [asyncio.ensure_future(board.join("g", m)) for m in (first, second)]
    await asyncio.sleep(0.01)
    assert not any(task.done() for task in joining)
    layer.gate.set()
    await asyncio.gather(*joining)
    assert layer.added == ["g"] and board.members["g"] == {first, second}
    board.listener.cancel()  # type: ignore[union-attr]


async def test_a_failed_layer_join_leaves_no_member_and_the_next_join_retries() -> None:
    layer = _GatedLayer()
    layer.gate.set()
    layer.fail = True
    board = Switchboard(layer)
    with pytest.raises(ConnectionError):
        await board.join("g", _Member())
    assert "g" not in board.members and not board.adding
    layer.fail = False
    member = _Member()
    await board.join("g", member)
    assert board.members["g"] == {member} and layer.added == ["g"]
    assert await board.deliver({"type": "x", "group": "g"}) == 1
    assert member.events == [{"type": "x", "group": "g"}]
    board.listener.cancel()  # type: ignore[union-attr]


def _blocked_consumer() -> tuple[PubSubConsumer, asyncio.Event, list[dict[str, Any]]]:
    """A consumer whose client reads nothing until ``gate`` is set."""
    consumer = PubSubConsumer()
    consumer.scope = {"path": "/ws/events/"}
    consumer.principal = BOB
    consumer.open = True
    gate, sent = asyncio.Event(), []

    async def base_send(message: dict[str, Any]) -> None:
        await gate.wait()
        sent.append(message)

    consumer.base_send = base_send
    return consumer, gate, sent


async def test_frames_behind_a_slow_client_keep_their_order_with_notices() -> None:
    consumer, gate, sent = _blocked_consumer()
    for n in range(5):
        consumer.push_frame(f"m{n}")
    await consumer.send_json({"type": "unsubscribed"})  # queued behind, not ahead
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0)
    assert [m["text"] for m in sent] == ["m0", "m1", "m2", "m3", "m4", '{"type":"unsubscribed"}']
    assert consumer.outbox is None


async def test_a_client_too_slow_for_its_outbox_is_closed_1013_and_audited(
        caplog: pytest.LogCaptureFixture) -> None:
    consumer, gate, sent = _blocked_consumer()
    caplog.set_level(logging.INFO, logger="gateway.audit")
    for n in range(OUTBOX_FRAMES + 1):
        consumer.push_frame(f"m{n}")
    assert not consumer.open
    consumer.push_frame("after")  # ignored: the close is decided
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0)
    closes = [m for m in sent if m["type"] == "websocket.close"]
    assert [(m["code"], m["reason"]) for m in closes] == [(1013, "slow_consumer")]
    assert len([m for m in sent if m["type"] == "websocket.send"]) <= 1
    audits = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]
    assert [(a["outcome"], a["reason"]) for a in audits] == [("deny", "slow_consumer")]


async def test_frames_go_out_at_once_when_the_server_can_and_queue_in_order_when_not() -> None:
    consumer, gate, sent = _blocked_consumer()
    written: list[bytes] = []
    writable = [True]

    def write_now(data: bytes) -> bool:
        if writable[0]:
            written.append(data)
        return writable[0]

    consumer.write_now = write_now
    consumer.push_frame("a", b"a")
    assert written == [b"a"] and consumer.outbox is None  # no task, nothing queued
    writable[0] = False
    consumer.push_frame("b")
    writable[0] = True
    consumer.push_frame("c", b"c")  # behind "b", not ahead of it
    assert written == [b"a"]
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0)
    assert [m["text"] for m in sent] == ["b", "c"]


async def test_a_large_group_is_served_in_slices_with_the_loop_free_in_between(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.sockets.switchboard as module

    monkeypatch.setattr(module, "SLICE", 3)
    layer = _GatedLayer()
    layer.gate.set()
    board = Switchboard(layer)
    members = [_Member() for _ in range(7)]
    for member in members:
        await board.join("g", member)
    turns: list[int] = []

    async def count_turns() -> None:
        while True:
            turns.append(sum(len(m.events) for m in members))
            await asyncio.sleep(0)

    counter = asyncio.ensure_future(count_turns())
    await asyncio.sleep(0)
    assert await board.deliver({"type": "x", "group": "g"}) == 7
    counter.cancel()
    assert all(len(m.events) == 1 for m in members)
    assert 3 in turns and 6 in turns  # the loop ran after each slice of three
    board.listener.cancel()  # type: ignore[union-attr]
