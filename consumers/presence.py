"""Presence for the pub/sub consumer: who is subscribed to a channel, join and leave events.

Every subscription is recorded in the ledger (``gateway.ops.ledger``: Redis across processes,
memory otherwise), whoever holds it. A subject's first socket on a channel sends a
``join`` and its last one a ``leave`` through the channel's layer group; each receiving
socket forwards it only if it holds the ``presence`` operation on that channel now. A
``presence`` request lists the members (issuer and subject, once each); it needs the
``presence`` operation, nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from consumers.protocol import Request, ack, presence_event, presence_notice
from gateway.api.consumers import ledger
from oidc.channels import group_name
from oidc.grants import Operation
from oidc.types import ChannelName

logger = logging.getLogger("consumers.presence")


class PresenceMixin:
    """Mixed into ``PubSubConsumer``, which provides ``channel_layer``, ``channel_name``,
    ``subscriptions``, ``who``, ``send_json``, ``_operations`` and ``_forbidden``."""

    channel_layer: Any
    channel_name: str
    subscriptions: dict[ChannelName, str]
    send_json: Any
    _operations: Any
    _forbidden: Any

    @property
    def who(self) -> tuple[str, str]:  # GatewayConsumer's comes first in the MRO
        raise NotImplementedError

    async def on_presence(self, request: Request) -> None:
        channel = request.channel
        assert channel is not None
        if Operation.PRESENCE not in await self._operations(channel):
            await self._forbidden(request, "presence")
            return
        members = await ledger().members(channel)
        await self.send_json(ack(request.id, channel=channel,
                                 members=[{"issuer": i, "subject": s} for i, s in members]))

    async def _joined(self, channel: ChannelName) -> None:
        """This socket subscribed: record it; announce the subject's first socket."""
        try:
            if await ledger().join(channel, self.who, self.channel_name):
                await self.channel_layer.group_send(
                    group_name(channel), presence_event("join", channel, *self.who))
        except Exception:  # presence is best effort; the subscription stands
            logger.warning("could not record a join on %s", channel)

    async def _left(self, channel: ChannelName) -> None:
        """This socket unsubscribed, lost its grant or closed; announce the subject's last."""
        try:
            if await ledger().leave(channel, self.who, self.channel_name):
                await self.channel_layer.group_send(
                    group_name(channel), presence_event("leave", channel, *self.who))
        except Exception:  # Redis gone: the entry expires with its heartbeat
            logger.warning("could not record a leave on %s", channel)

    async def presence_event(self, event: dict[str, Any]) -> None:
        """A join or leave from any process: forwarded to subscribed presence holders only."""
        channel = event.get("channel")
        if channel not in self.subscriptions:
            return
        if Operation.PRESENCE in await self._operations(ChannelName(channel)):
            await self.send_json(presence_notice(event))
