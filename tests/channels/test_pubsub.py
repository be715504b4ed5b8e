"""The pub/sub consumer in process: protocol errors, authorisation, live grant changes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from consumers.pubsub import PubSubConsumer
from gateway.grants.store import cache
from gateway.models import Grant
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.envelope import message_event
from oidc.channels import group_name
from oidc.types import ChannelName, CredentialKind, Principal

pytestmark = pytest.mark.django_db(transaction=True)

ISS = "https://idp.example.com"


def principal(subject: str, *groups: str) -> Principal:
    return Principal(issuer=ISS, subject=subject, client_id="gateway", groups=frozenset(groups),
                     roles=frozenset(), scopes=frozenset({"ws"}), claims={}, expires_at=4e9,
                     sid=None, credential=CredentialKind.BEARER)


BOB = principal("bob", "engineering")
ALICE = principal("alice", "engineering", "admins")
LIMITS = settings.GATEWAY.limits
MAX_FRAME_BYTES, MAX_SUBSCRIPTIONS, MAX_VIOLATIONS = (
    LIMITS.frame_bytes, LIMITS.subscriptions, LIMITS.violations)


async def add_grant(value: str, target: str, **ops: bool) -> Grant:
    return await Grant.objects.acreate(issuer=ISS, claim="groups", value=value, target=target,
                                       **({"subscribe": True} | ops))


@pytest.fixture(autouse=True)
async def grants() -> AsyncIterator[None]:
    cache.clear()
    await add_grant("engineering", "deploys")
    await add_grant("admins", "alerts.*")
    await add_grant("admins", "deploys", publish=True)
    yield
    cache.clear()


async def connect(who: Principal, *, greeted: bool = True) -> WebsocketCommunicator:
    """Open a socket as ``who``; with ``greeted``, read and check its welcome frame."""
    comm = WebsocketCommunicator(PubSubConsumer.as_asgi(), "/ws/events/")
    comm.scope["principal"] = who
    connected, _ = await comm.connect()
    assert connected
    if greeted:
        hello = json.loads(await comm.receive_from())
        assert (hello["type"], hello["principal"]["subject"]) == ("welcome", who.subject)
    return comm


async def send_raw(comm: WebsocketCommunicator, *, text: str | None = None,
                   data: bytes | None = None) -> None:
    """Send any frame, including empty ones the communicator's send_to refuses."""
    await comm.send_input({"type": "websocket.receive", "text": text, "bytes": data})


async def request(comm: WebsocketCommunicator, **frame: Any) -> dict[str, Any]:
    await comm.send_to(text_data=json.dumps({"v": 1} | frame))
    reply: dict[str, Any] = json.loads(await comm.receive_from())
    return reply


async def test_bob_subscribes_to_deploys_but_not_alerts() -> None:
    comm = await connect(BOB)
    assert await request(comm, type="subscribe", id="1", channel="deploys") == {
        "v": 1, "type": "ack", "id": "1", "channel": "deploys"}
    refused = await request(comm, type="subscribe", id=2, channel="alerts.critical")
    assert (refused["type"], refused["id"], refused["error"]) == ("error", 2, "forbidden")
    await comm.disconnect()


async def test_alice_gets_both_and_case_is_normalised() -> None:
    comm = await connect(ALICE)
    assert (await request(comm, type="subscribe", id="a", channel="Deploys"))["type"] == "ack"
    ack = await request(comm, type="subscribe", id="b", channel="alerts.critical")
    assert ack == {"v": 1, "type": "ack", "id": "b", "channel": "alerts.critical"}
    await comm.disconnect()


async def test_publish_reaches_only_subscribers_and_needs_publish_grant() -> None:
    alice, bob = await connect(ALICE), await connect(BOB)
    for comm in (alice, bob):
        assert (await request(comm, type="subscribe", id="s", channel="deploys"))["type"] == "ack"
    refused = await request(bob, type="publish", id="p", channel="deploys", payload={"x": 1})
    assert refused["error"] == "forbidden"
    ack = await request(alice, type="publish", id="p", channel="deploys", payload={"v": 42})
    assert ack["type"] == "ack" and ack["mid"]
    for comm in (alice, bob):
        got = json.loads(await comm.receive_from())
        assert got["type"] == "message" and got["channel"] == "deploys"
        assert got["payload"] == {"v": 42} and got["mid"] == ack["mid"] and got["ts"] > 0
    assert await alice.receive_nothing() and await bob.receive_nothing()
    await alice.disconnect()
    await bob.disconnect()


async def test_unsubscribe_stops_messages() -> None:
    comm = await connect(BOB)
    await request(comm, type="subscribe", id=1, channel="deploys")
    assert (await request(comm, type="unsubscribe", id=2, channel="deploys"))["type"] == "ack"
    await get_channel_layer().group_send(group_name(ChannelName("deploys")),
                                         message_event(ChannelName("deploys"), 1))
    assert await comm.receive_nothing()
    await comm.disconnect()


async def test_ping_is_acknowledged() -> None:
    comm = await connect(BOB)
    assert await request(comm, type="ping", id="p") == {"v": 1, "type": "ack", "id": "p"}
    await comm.disconnect()


@pytest.mark.parametrize(("frame", "error", "echo_id"), [
    ("", "invalid_json", None),
    ("   ", "invalid_json", None),
    ("{not json", "invalid_json", None),
    ("[1, 2]", "invalid_frame", None),
    ('"hello"', "invalid_frame", None),
    ('{"v": 1, "type": "ping"}', "invalid_id", None),
    ('{"v": 1, "type": "ping", "id": true}', "invalid_id", None),
    ('{"v": 1, "type": "ping", "id": ""}', "invalid_id", None),
    ('{"v": 2, "type": "ping", "id": "x"}', "unsupported_version", "x"),
    ('{"type": "ping", "id": "x"}', "unsupported_version", "x"),
    ('{"v": 1, "type": "shout", "id": "x"}', "unknown_type", "x"),
    ('{"v": 1, "id": "x"}', "unknown_type", "x"),
    ('{"v": 1, "type": "ping", "id": "x", "extra": 1}', "unknown_field", "x"),
    ('{"v": 1, "type": "subscribe", "id": "x"}', "missing_field", "x"),
    ('{"v": 1, "type": "publish", "id": "x", "channel": "deploys"}', "missing_field", "x"),
    ('{"v": 1, "type": "subscribe", "id": "x", "channel": "alerts.*"}', "wildcard_channel", "x"),
    ('{"v": 1, "type": "subscribe", "id": "x", "channel": "*"}', "wildcard_channel", "x"),
    ('{"v": 1, "type": "subscribe", "id": "x", "channel": "a..b"}', "invalid_channel", "x"),
    ('{"v": 1, "type": "subscribe", "id": "x", "channel": "d\\u0435ploys"}', "invalid_channel", "x"),
    ('{"v": 1, "type": "subscribe", "id": "x", "channel": 7}', "invalid_channel", "x"),
    ('{"v": 1, "type": "publish", "id": "x", "channel": "deploys", "payload": NaN}',
     "invalid_json", None),
    ('{"v": 1, "type": "publish", "id": "x", "channel": "deploys", "payload": "\\ud800"}',
     "invalid_json", None),  # a lone surrogate: nothing downstream could encode it
    ('{"v": 1, "type": "auth", "id": "x", "ticket": "\\udc00"}', "invalid_json", None),
])
async def test_bad_frames_get_an_error_reply(frame: str, error: str, echo_id: str | None) -> None:
    comm = await connect(ALICE)
    await send_raw(comm, text=frame)
    reply = json.loads(await comm.receive_from())
    assert (reply["type"], reply["error"], reply["id"]) == ("error", error, echo_id)
    assert (await request(comm, type="ping", id="still-open"))["type"] == "ack"
    await comm.disconnect()


async def test_binary_frame_gets_an_error_reply() -> None:
    comm = await connect(BOB)
    await comm.send_to(bytes_data=b'{"v":1,"type":"ping","id":"x"}')
    assert json.loads(await comm.receive_from())["error"] == "binary_frame"
    await comm.disconnect()


async def test_repeated_violations_close_with_1008() -> None:
    comm = await connect(BOB)
    for _ in range(MAX_VIOLATIONS):
        await comm.send_to(text_data="nope")
        assert json.loads(await comm.receive_from())["error"] == "invalid_json"
    assert await comm.receive_output() == {"type": "websocket.close",
                                           "code": CloseCode.POLICY_VIOLATION,
                                           "reason": "too_many_protocol_errors"}


async def test_forbidden_requests_are_not_violations() -> None:
    comm = await connect(BOB)
    for i in range(MAX_VIOLATIONS + 2):
        assert (await request(comm, type="subscribe", id=i, channel="alerts.x"))["error"] == \
            "forbidden"
    assert (await request(comm, type="ping", id="ok"))["type"] == "ack"
    await comm.disconnect()


@pytest.mark.parametrize("kind", ["text", "bytes"])
async def test_oversized_frame_closes_with_1009(kind: str) -> None:
    comm = await connect(BOB)
    big = "x" * (MAX_FRAME_BYTES + 1)
    if kind == "text":
        await comm.send_to(text_data=big)
    else:
        await comm.send_to(bytes_data=big.encode())
    closed = await comm.receive_output()
    assert (closed["type"], closed["code"]) == ("websocket.close", CloseCode.MESSAGE_TOO_BIG)


async def test_welcome_says_who_and_what_the_grants_allow() -> None:
    comm = WebsocketCommunicator(PubSubConsumer.as_asgi(), "/ws/events/")
    comm.scope["principal"] = ALICE
    assert (await comm.connect())[0]
    hello = json.loads(await comm.receive_from())
    assert hello == {
        "v": 1, "type": "welcome", "principal": ALICE.as_dict(),
        "channels": [{"channel": "alerts.*", "operations": ["subscribe"]},
                     {"channel": "deploys", "operations": ["publish", "subscribe"]}],
        "limits": {"subscriptions": MAX_SUBSCRIPTIONS, "frame_bytes": MAX_FRAME_BYTES,
                   "message_rate": LIMITS.message_rate, "message_burst": LIMITS.message_burst}}
    await comm.disconnect()


async def test_revoked_grant_unsubscribes_live_socket_and_stops_messages() -> None:
    bob, alice = await connect(BOB), await connect(ALICE)
    await request(bob, type="subscribe", id=1, channel="deploys")
    await request(alice, type="subscribe", id=1, channel="deploys")
    await Grant.objects.filter(value="engineering", target="deploys").adelete()
    notice = json.loads(await bob.receive_from(timeout=1))
    assert notice == {"v": 1, "type": "unsubscribed", "channel": "deploys", "reason": "revoked"}
    assert json.loads(await bob.receive_from()) == {"v": 1, "type": "channels", "channels": []}
    assert await alice.receive_nothing()  # still holds deploys through admins: no change to tell
    await request(alice, type="publish", id=2, channel="deploys", payload="after")
    assert json.loads(await alice.receive_from())["payload"] == "after"
    assert await bob.receive_nothing()
    await bob.disconnect()
    await alice.disconnect()


async def test_narrowed_pattern_grant_revokes_covered_channels() -> None:
    alice = await connect(ALICE)
    await request(alice, type="subscribe", id=1, channel="alerts.critical")
    await request(alice, type="subscribe", id=2, channel="alerts.info")
    grant = await Grant.objects.aget(value="admins", target="alerts.*")
    grant.target = "alerts.critical"
    await grant.asave()
    notice = json.loads(await alice.receive_from(timeout=1))
    assert (notice["channel"], notice["reason"]) == ("alerts.info", "revoked")
    told = json.loads(await alice.receive_from())
    assert (told["type"], [c["channel"] for c in told["channels"]]) == (
        "channels", ["alerts.critical", "deploys"])
    assert await alice.receive_nothing()
    await alice.disconnect()


async def test_new_grant_works_without_reconnecting() -> None:
    bob = await connect(BOB)
    assert (await request(bob, type="subscribe", id=1, channel="builds"))["error"] == "forbidden"
    await add_grant("engineering", "builds")
    told = json.loads(await bob.receive_from(timeout=1))  # the broadcast tells the socket
    assert told == {"v": 1, "type": "channels", "channels": [
        {"channel": "builds", "operations": ["subscribe"]},
        {"channel": "deploys", "operations": ["subscribe"]}]}
    assert (await request(bob, type="subscribe", id=2, channel="builds"))["type"] == "ack"
    await bob.disconnect()


async def test_subscriptions_per_connection_are_limited() -> None:
    alice = await connect(ALICE)
    for i in range(MAX_SUBSCRIPTIONS):
        assert (await request(alice, type="subscribe", id=i, channel=f"alerts.c{i}"))["type"] == "ack"
    refused = await request(alice, type="subscribe", id="over", channel="alerts.over")
    assert refused["error"] == "too_many_subscriptions"
    assert (await request(alice, type="subscribe", id="again", channel="alerts.c0"))["type"] == "ack"
    await alice.disconnect()


async def test_a_renewed_subscription_still_receives_after_the_layer_expiry() -> None:
    """Channel subscriptions and the grants group are renewed like addressing groups."""
    from gateway.sockets.switchboard import renew_groups
    from tests.channels.conftest import age_memberships

    comm = await connect(BOB)
    assert (await request(comm, type="subscribe", id="s", channel="deploys"))["type"] == "ack"
    layer = get_channel_layer()
    age_memberships(layer)
    await renew_groups()
    await layer.group_send(group_name(ChannelName("deploys")),
                           message_event(ChannelName("deploys"), {"n": 1}))
    got = json.loads(await comm.receive_from())
    assert (got["type"], got["payload"]) == ("message", {"n": 1})
    await comm.disconnect()
