"""Presence and limits in process: who may ask, who is listed, join/leave, 4429 closes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

import consumers.base
from gateway.grants.store import cache
from gateway.ops.ledger import MemoryLedger, use_ledger
from gateway.sockets.closecodes import CloseCode
from tests.channels.test_pubsub import ALICE, BOB, ISS, add_grant, connect, principal, request

pytestmark = pytest.mark.django_db(transaction=True)

CAROL = principal("carol", "ops")  # may subscribe to deploys, no presence


@pytest.fixture(autouse=True)
async def grants() -> AsyncIterator[None]:
    cache.clear()
    use_ledger(MemoryLedger())
    await add_grant("engineering", "deploys")
    await add_grant("ops", "deploys")
    await add_grant("admins", "deploys", presence=True)
    yield
    cache.clear()
    use_ledger(None)


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []

    def record(event: str, outcome: str, reason: str, **fields: Any) -> dict[str, Any]:
        seen.append((event, outcome, reason))
        return {}

    monkeypatch.setattr(consumers.base, "audit", record)
    return seen


@pytest.fixture
def limits() -> Iterator[Any]:
    """Call with limit=value pairs to change settings.GATEWAY.limits for this test."""
    original = settings.GATEWAY

    def change(**values: Any) -> None:
        settings.GATEWAY = dataclasses.replace(
            original, limits=dataclasses.replace(original.limits, **values))

    yield change
    settings.GATEWAY = original


async def next_frame(comm: WebsocketCommunicator) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await comm.receive_from(timeout=1))
    return frame


async def subscribe(comm: WebsocketCommunicator, channel: str = "deploys") -> None:
    assert (await request(comm, type="subscribe", id="s", channel=channel))["type"] == "ack"


async def closed_with(comm: WebsocketCommunicator) -> tuple[int, str]:
    out = await comm.receive_output(timeout=1)
    assert out["type"] == "websocket.close", out
    return out["code"], out["reason"]


# --- presence ------------------------------------------------------------------------


async def test_presence_needs_the_presence_operation(audits: list[tuple[str, str, str]]) -> None:
    bob = await connect(BOB)
    await subscribe(bob)  # subscribing is not enough
    refused = await request(bob, type="presence", id="p", channel="deploys")
    assert (refused["type"], refused["id"], refused["error"]) == ("error", "p", "forbidden")
    assert ("presence", "deny", "forbidden") in audits
    await bob.disconnect()


async def test_presence_lists_subscribers_once_each() -> None:
    bob1, bob2, carol, alice = (await connect(BOB), await connect(BOB), await connect(CAROL),
                                await connect(ALICE))
    for comm in (bob1, bob2, carol):
        await subscribe(comm)
    listed = await request(alice, type="presence", id=7, channel="Deploys")
    assert listed == {"v": 1, "type": "ack", "id": 7, "channel": "deploys", "members": [
        {"issuer": ISS, "subject": "bob"}, {"issuer": ISS, "subject": "carol"}]}
    await carol.disconnect()
    await request(bob1, type="unsubscribe", id="u", channel="deploys")
    listed = await request(alice, type="presence", id=8, channel="deploys")
    assert listed["members"] == [{"issuer": ISS, "subject": "bob"}]  # bob2 still there
    for comm in (bob1, bob2, alice):
        await comm.disconnect()


async def test_join_and_leave_reach_subscribed_presence_holders_only() -> None:
    alice, carol = await connect(ALICE), await connect(CAROL)
    await subscribe(alice)
    assert (await next_frame(alice))["type"] == "join"  # alice's own join
    await subscribe(carol)
    assert await next_frame(alice) == {"v": 1, "type": "join", "channel": "deploys",
                                       "member": {"issuer": ISS, "subject": "carol"}}
    bob1, bob2 = await connect(BOB), await connect(BOB)
    await subscribe(bob1)
    assert (await next_frame(alice))["member"]["subject"] == "bob"
    await subscribe(bob2)  # bob is already a member: no second join
    await request(bob1, type="unsubscribe", id="u", channel="deploys")  # bob2 remains: no leave
    assert await alice.receive_nothing(timeout=0.2)
    await bob2.disconnect()
    assert await next_frame(alice) == {"v": 1, "type": "leave", "channel": "deploys",
                                       "member": {"issuer": ISS, "subject": "bob"}}
    assert await carol.receive_nothing(timeout=0.1)  # subscribed, but no presence grant
    for comm in (alice, carol, bob1):
        await comm.disconnect()


async def test_revoked_subscription_leaves_the_channel() -> None:
    from gateway.models import Grant

    alice, bob = await connect(ALICE), await connect(BOB)
    await subscribe(alice)
    await next_frame(alice)
    await subscribe(bob)
    assert (await next_frame(alice))["type"] == "join"
    await Grant.objects.filter(value="engineering", target="deploys").adelete()
    assert (await next_frame(bob))["reason"] == "revoked"
    assert (await next_frame(alice))["type"] == "leave"
    assert (await request(alice, type="presence", id=1, channel="deploys"))["members"] == [
        {"issuer": ISS, "subject": "alice"}]
    await alice.disconnect()
    await bob.disconnect()


# --- limits ---------------------------------------------------------------------------


async def test_message_rate_over_the_burst_closes_with_4429(
        limits: Any, audits: list[tuple[str, str, str]]) -> None:
    limits(message_rate=0.5, message_burst=3)
    bob = await connect(BOB)
    for i in range(3):
        assert (await request(bob, type="ping", id=i))["type"] == "ack"
    await bob.send_to(text_data=json.dumps({"v": 1, "type": "ping", "id": "over"}))
    assert await closed_with(bob) == (CloseCode.RATE_LIMITED, "rate_limited")
    assert ("message", "deny", "rate_limited") in audits


async def test_subscriptions_per_connection_follow_the_setting(
        limits: Any, audits: list[tuple[str, str, str]]) -> None:
    limits(subscriptions=1)
    await add_grant("engineering", "builds")
    bob = await connect(BOB)
    await subscribe(bob)
    refused = await request(bob, type="subscribe", id="x", channel="builds")
    assert (refused["error"], refused["detail"]) == ("too_many_subscriptions", "at most 1 per connection")
    assert ("subscribe", "deny", "too_many_subscriptions") in audits
    await request(bob, type="unsubscribe", id="u", channel="deploys")
    await subscribe(bob, "builds")
    await bob.disconnect()


async def test_sockets_per_subject_are_limited_and_counted_down(
        limits: Any, audits: list[tuple[str, str, str]]) -> None:
    limits(sockets_per_subject=2)
    first, second = await connect(BOB), await connect(BOB)
    third = await connect(BOB, greeted=False)  # accepted, then closed at once: browsers can read the code
    assert await closed_with(third) == (CloseCode.RATE_LIMITED, "too_many_connections")
    assert ("connect", "deny", "too_many_connections") in audits
    carol = await connect(CAROL)  # other subjects are not affected
    assert (await request(carol, type="ping", id=1))["type"] == "ack"
    await first.disconnect()
    again = await connect(BOB)
    assert (await request(again, type="ping", id=1))["type"] == "ack"
    for comm in (second, carol, again):
        await comm.disconnect()


async def test_frame_size_and_violations_follow_the_settings(limits: Any) -> None:
    limits(frame_bytes=2048, violations=2)
    bob = await connect(BOB)
    for _ in range(2):
        await bob.send_to(text_data="nope")
        assert (await next_frame(bob))["error"] == "invalid_json"
    assert await closed_with(bob) == (CloseCode.POLICY_VIOLATION, "too_many_protocol_errors")
    carol = await connect(CAROL)
    await carol.send_to(text_data="x" * 2049)
    assert (await closed_with(carol))[0] == CloseCode.MESSAGE_TOO_BIG
