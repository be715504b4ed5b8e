"""`/ws/events/`: subscribe to channels, publish, ask for presence (protocol: docs/protocol.md).

Every subscribe and publish is checked against the principal's grants as they are
now (``gateway.grants.store.cache``), not as they were at connect. A ``grants.changed``
broadcast makes every socket re-check what it is subscribed to: channels it lost
get an ``unsubscribed`` notice with reason ``revoked`` and no further messages.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from consumers.base import GatewayConsumer
from consumers.presence import PresenceMixin
from consumers.protocol import (
    FrameError,
    Request,
    ack,
    auth_credential,
    channels_changed,
    encode,
    error,
    frame_too_big,
    message,
    parse,
    unsubscribed,
    welcome,
)
from gateway.api import CloseCode
from gateway.api.consumers import GRANTS_GROUP, cache, granted, message_event, outcomes, this_process
from oidc.channels import group_name
from oidc.errors import OidcError
from oidc.grants import (
    GrantSnapshot,
    Operation,
    allowed_operations,
    lost_subscriptions,
    operations_by_target,
)
from oidc.types import ChannelName

logger = logging.getLogger("consumers.pubsub")


class PubSubConsumer(GatewayConsumer, PresenceMixin):
    subscriptions: dict[ChannelName, str]
    violations: int

    async def on_connected(self) -> None:
        self.subscriptions, self.violations = {}, 0
        self.limits = settings.GATEWAY.limits
        await self.join(GRANTS_GROUP)  # left by GatewayConsumer.disconnect
        cache.watch()
        self.watching = True
        await self.welcome()

    async def welcome(self) -> None:
        """The first frame: the principal, what its grants allow, and this socket's limits."""
        self.channels_sent = self._granted(await cache.current())
        limits = {"subscriptions": self.limits.subscriptions, "frame_bytes": self.limits.frame_bytes,
                  "message_rate": self.limits.message_rate, "message_burst": self.limits.message_burst}
        await self.send_json(welcome(self.principal.as_dict(), self.channels_sent, limits))

    def _granted(self, snapshot: GrantSnapshot) -> list[dict[str, Any]]:
        return granted(operations_by_target(self.principal, snapshot.grants))

    async def _tell_channels(self, snapshot: GrantSnapshot) -> None:
        """Send ``channels`` when what the grants allow differs from what the client knows."""
        channels = self._granted(snapshot)
        if channels != getattr(self, "channels_sent", None):
            self.channels_sent = channels
            await self.send_json(channels_changed(channels))

    async def disconnect(self, code: int) -> None:
        if getattr(self, "watching", False):
            cache.unwatch()
            self.watching = False
        for channel in getattr(self, "subscriptions", {}):
            await self._left(channel)
        await super().disconnect(code)  # leaves every group, the channels' too

    # --- client -> gateway ----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if frame_too_big(text_data, bytes_data, self.limits.frame_bytes):
            await self.close_with(CloseCode.MESSAGE_TOO_BIG, "frame_too_big")
            return
        request = parse(text_data, bytes_data)
        if isinstance(request, FrameError):
            await self._violation(request)
            return
        try:
            await getattr(self, f"on_{request.type}")(request)
        except Exception:  # details may be sensitive: the client gets a code only
            logger.exception("pub/sub request failed")
            await self.send_json(error(request.id, "internal_error", "try again later"))

    async def _violation(self, refused: FrameError) -> None:
        self.violations += 1
        await self.send_json(error(refused.id, refused.error, refused.detail))
        if self.violations >= self.limits.violations:
            await self.close_with(CloseCode.POLICY_VIOLATION, "too_many_protocol_errors")

    async def _operations(self, channel: ChannelName) -> frozenset[Operation]:
        snapshot = await cache.current()
        return allowed_operations(self.principal, snapshot.grants, channel)

    async def _forbidden(self, request: Request, event: str) -> None:
        self._deny(event, "forbidden", request.channel)
        await self.send_json(error(request.id, "forbidden",
                                   f"no grant allows {request.type} on this channel"))

    async def on_subscribe(self, request: Request) -> None:
        channel = request.channel
        assert channel is not None
        if channel not in self.subscriptions:
            limit = self.limits.subscriptions
            if len(self.subscriptions) >= limit:
                self._deny("subscribe", "too_many_subscriptions", request.channel)
                await self.send_json(error(request.id, "too_many_subscriptions",
                                           f"at most {limit} per connection"))
                return
            if Operation.SUBSCRIBE not in await self._operations(channel):
                await self._forbidden(request, "subscribe")
                return
            group = group_name(channel)
            await self.join(group)
            self.subscriptions[channel] = group
            await self.send_json(ack(request.id, channel=channel))
            await self.report_channels(self.subscriptions)
            await self._joined(channel)
            return
        await self.send_json(ack(request.id, channel=channel))

    async def on_unsubscribe(self, request: Request) -> None:
        assert request.channel is not None
        group = self.subscriptions.pop(request.channel, None)
        if group is not None:
            await self.leave(group)
            await self._left(request.channel)
            await self.report_channels(self.subscriptions)
        await self.send_json(ack(request.id, channel=request.channel))

    async def on_publish(self, request: Request) -> None:
        channel = request.channel
        assert channel is not None
        if Operation.PUBLISH not in await self._operations(channel):
            await self._forbidden(request, "publish")
            return
        event = message_event(channel, request.payload)
        await self.channel_layer.group_send(event["group"], event)
        await self.send_json(ack(request.id, channel=channel, mid=event["mid"]))

    async def on_ping(self, request: Request) -> None:
        await self.send_json(ack(request.id))

    # --- channel layer -> gateway ---------------------------------------------------

    def deliver(self, event: dict[str, Any], shared: dict[str, Any]) -> None:
        """A published message goes straight out, encoded once per process (``shared``);
        other events are handled in turn (``GatewayConsumer.deliver``)."""
        if event.get("type") != "pubsub.message":
            super().deliver(event, shared)
        elif self.open and event.get("channel") in self.subscriptions:
            if "frame" not in shared:
                shared["frame"] = frame = encode(message(event))
                shared["bytes"] = frame.encode()
            self.push_frame(shared["frame"], shared["bytes"])

    async def on_auth(self, request: Request) -> None:
        """In-band re-authentication; then subscriptions are re-checked against the new claims."""
        try:
            principal = await self.reauthenticate(auth_credential(request))
        except OidcError as exc:
            await self.refuse_reauth(exc)
            return
        await self.send_json(ack(request.id, expires_at=principal.expires_at))
        await self.report_principal()
        await self._recheck_subscriptions(await cache.current())

    async def on_principal_changed(self) -> None:
        await self.report_principal()
        await self._recheck_subscriptions(await cache.current())

    async def grants_changed(self, event: dict[str, Any]) -> None:
        """Grants changed somewhere: drop every subscription this principal lost, and count
        what was dropped for the change log (``gateway.grants.outcome``)."""
        version = int(event.get("version", 0))
        lost = await self._recheck_subscriptions(await cache.at_least(version))
        outcomes.report(version, this_process(), lost)

    async def _recheck_subscriptions(self, snapshot: GrantSnapshot) -> int:
        """Drop what the principal lost (``unsubscribed``), then send ``channels`` if changed;
        return how many channels were dropped."""
        lost = lost_subscriptions(self.principal, snapshot.grants, list(self.subscriptions))
        for channel in lost:
            await self.leave(self.subscriptions.pop(channel))
            await self._left(channel)
            await self.send_json(unsubscribed(channel, "revoked"))
            await self.report_channels(self.subscriptions)
        await self._tell_channels(snapshot)
        return len(lost)
