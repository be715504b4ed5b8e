"""Group memberships outlive the layer's one-day expiry (gateway.sockets.switchboard.renew_groups)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from gateway.bus.health import bus
from gateway.ops.buswatch import BusWatch, Watched
from gateway.sockets.addressing import revoke, subject_group
from gateway.sockets.switchboard import renew_groups, switchboard
from tests.channels.conftest import age_memberships, token

pytestmark = pytest.mark.django_db(transaction=True)



def _subject() -> str:
    return subject_group(settings.GATEWAY.issuer, "svc-1")


async def _open_and_age() -> WebsocketCommunicator:
    """A bearer socket whose memberships are a day and a minute old."""
    comm = WebsocketCommunicator(application, "/ws/",
                                 headers=[(b"authorization", f"Bearer {token()}".encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    age_memberships(get_channel_layer())
    return comm


async def test_an_aged_membership_is_dropped_by_the_layer_so_a_logout_would_be_missed() -> None:
    comm = await _open_and_age()
    await get_channel_layer().group_send(_subject(), revoke(_subject(), "logged_out"))
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_renewed_memberships_still_receive_the_logout() -> None:
    comm = await _open_and_age()
    assert await renew_groups() >= 1
    await get_channel_layer().group_send(_subject(), revoke(_subject(), "logged_out"))
    closed = await comm.receive_output(timeout=1)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
    await comm.disconnect()


async def test_one_failing_group_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    comm = await _open_and_age()
    board = switchboard()
    await board.join("gw.other", _Quiet())  # a second group, healthy
    age_memberships(get_channel_layer())
    layer = get_channel_layer()
    real_add = layer.group_add
    broken = _subject()

    async def flaky(group: str, channel: str) -> None:
        if group == broken:
            raise ConnectionError("bus gone")
        await real_add(group, channel)

    monkeypatch.setattr(layer, "group_add", flaky)
    assert await renew_groups() >= 1
    fresh = {group for group, members in layer.groups.items()
             if any(joined > time.time() - 60 for joined in members.values())}
    assert fresh == {"gw.other"}
    await comm.disconnect()


class _Quiet:
    def deliver(self, event: dict[str, Any], shared: dict[str, Any]) -> None:
        pass


async def test_after_a_break_in_the_bus_the_watchdog_joins_every_group_again() -> None:
    """A restarted Redis has forgotten the core layer's memberships; a member the break did
    not close (here: the socket, as the fake closer closes nothing) must hear again."""
    comm = await _open_and_age()
    layer = get_channel_layer()
    layer.groups.pop(_subject())  # what a restarted Redis forgets
    epoch = bus.epoch

    async def closes_nothing(code: int, reason: str) -> int:
        return 0

    watch = BusWatch(closes_nothing, [Watched(_Answers())])  # type: ignore[arg-type]
    try:
        bus.broken()
        await watch.check()
        assert watch.rejoined == bus.epoch
    finally:
        bus.epoch = epoch
    await layer.group_send(_subject(), revoke(_subject(), "logged_out"))
    closed = await comm.receive_output(timeout=1)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
    await comm.disconnect()


class _Answers:
    async def info(self, section: str) -> dict[str, str]:
        return {"run_id": "r" * 40}
