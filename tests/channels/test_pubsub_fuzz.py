"""Hypothesis throws arbitrary frames at the pub/sub consumer: each gets a defined answer.

Defined = one JSON reply of type ack/error (carrying an ``id`` key), or a close with
1008 (repeated violations) or 1009 (oversized frame). The consumer never crashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.pubsub import PubSubConsumer
from gateway.grants.store import cache
from gateway.sockets.closecodes import CloseCode
from oidc.grants import GrantSnapshot
from oidc.types import CredentialKind, Principal

# Channels closes stale DB connections around every frame, so the test needs DB access.
pytestmark = pytest.mark.django_db(transaction=True)

PRINCIPAL = Principal(issuer="https://idp.example.com", subject="fuzz", client_id=None,
                      groups=frozenset({"engineering"}), roles=frozenset(),
                      scopes=frozenset(), claims={}, expires_at=4e9, sid=None,
                      credential=CredentialKind.BEARER)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8,
)
requestish = st.fixed_dictionaries(
    {},
    optional={"v": st.sampled_from([1, 2, "1", True, None]),
              "type": st.sampled_from(["subscribe", "unsubscribe", "publish", "ping", "x", 1]),
              "id": st.one_of(st.integers(), st.text(max_size=140), st.booleans(), st.none()),
              "channel": st.one_of(st.sampled_from(["deploys", "alerts.*", "Alerts.X", "a..b"]),
                                   st.text(max_size=70), st.integers()),
              "payload": json_values},
)
frames = st.one_of(
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(max_size=200).map(lambda b: ("bytes", b)),
    requestish.map(lambda d: ("text", json.dumps(d))),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.just(("text", "x" * (django_settings.GATEWAY.limits.frame_bytes + 1))),
)


async def _run(sequence: list[tuple[str, Any]]) -> None:
    async def no_grants() -> GrantSnapshot:
        return GrantSnapshot(0, ())

    cache.current = no_grants  # type: ignore[method-assign]  # no database in this test
    comm = WebsocketCommunicator(PubSubConsumer.as_asgi(), "/ws/events/")
    comm.scope["principal"] = PRINCIPAL
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    try:
        for kind, data in sequence:
            await comm.send_input({"type": "websocket.receive",
                                   "text": data if kind == "text" else None,
                                   "bytes": data if kind == "bytes" else None})
            outs = [await comm.receive_output(timeout=2)]
            while not await comm.receive_nothing(timeout=0.01):
                outs.append(await comm.receive_output())
            replies = [json.loads(o["text"]) for o in outs if o["type"] == "websocket.send"]
            closes = [o for o in outs if o["type"] == "websocket.close"]
            assert len(replies) <= 1 and len(replies) + len(closes) == len(outs) >= 1
            for reply in replies:
                assert reply["v"] == 1 and "id" in reply
                assert reply["type"] in ("ack", "error")
                assert reply.get("error") != "internal_error"
            if closes:
                assert outs[-1] == closes[0] and len(closes) == 1
                assert closes[0]["code"] in (CloseCode.POLICY_VIOLATION,
                                             CloseCode.MESSAGE_TOO_BIG)
                return
        assert await comm.receive_nothing(timeout=0.01)
    finally:
        await comm.disconnect()


@pytest.fixture
def isolated_cache() -> Iterator[None]:
    yield
    cache.__dict__.pop("current", None)
    cache.clear()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=14))
def test_arbitrary_frames_get_a_defined_answer(isolated_cache: None,
                                               sequence: list[tuple[str, Any]]) -> None:
    async_to_sync(_run)(sequence)
