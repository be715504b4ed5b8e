"""Group memberships outlive the layer's one-day expiry (consumers.base.renew_memberships)."""

from __future__ import annotations

import json
import time

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from consumers.base import renew_memberships
from gateway.sockets.addressing import subject_group
from tests.channels.conftest import age_memberships, token

pytestmark = pytest.mark.django_db(transaction=True)

REVOKE = {"type": "gateway.revoke", "reason": "logged_out"}


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
    await get_channel_layer().group_send(subject_group(settings.GATEWAY.issuer, "svc-1"), REVOKE)
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_renewed_memberships_still_receive_the_logout() -> None:
    comm = await _open_and_age()
    assert await renew_memberships() >= 1
    await get_channel_layer().group_send(subject_group(settings.GATEWAY.issuer, "svc-1"), REVOKE)
    closed = await comm.receive_output(timeout=1)
    assert (closed["type"], closed["code"]) == ("websocket.close", 4401)
    await comm.disconnect()


async def test_one_failing_socket_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = await _open_and_age(), await _open_and_age()
    layer = get_channel_layer()
    real_add = layer.group_add
    broken = next(iter(next(iter(layer.groups.values()))))  # one socket's channel name

    async def flaky(group: str, channel: str) -> None:
        if channel == broken:
            raise ConnectionError("bus gone")
        await real_add(group, channel)

    monkeypatch.setattr(layer, "group_add", flaky)
    assert await renew_memberships() >= 1
    fresh = {channel for members in layer.groups.values() for channel, joined in members.items()
             if joined > time.time() - 60}
    assert fresh and broken not in fresh
    await first.disconnect()
    await second.disconnect()
