"""An in-memory channel layer without Channels' per-receive scan (#13 point 1).

Channels' ``InMemoryChannelLayer`` runs ``_clean_expired`` on every ``receive`` and
``group_send``: it looks at every channel's queue and every group membership, so with
10,000 sockets open each message costs 10,000 queue checks. This layer keeps the same
semantics with work bounded per call:

- a channel's expired messages are dropped when that channel is touched (send, receive,
  or a ``group_send`` reaching it), and, as in Channels, a channel that let a message
  expire leaves every group (its consumer is gone);
- a membership older than ``group_expiry`` is dropped when its group is sent to;
- a channel knows its groups, so leaving them costs its own memberships, not all groups;
- whenever a queue or a channel's first membership is created, a sweep looks at the
  next ``sweep_per_call`` queues or membership sets, in turn, so what nobody touches
  again is freed too, without a full scan. A queue stays while its channel is read
  (a consumer always has a receive waiting), so chatting sockets create nothing and
  pay no sweep.

Capacity (``capacity``, ``channel_capacity`` globs), message expiry (``expiry``),
membership expiry (``group_expiry``), ``ChannelFull``, ``new_channel``, ``flush`` and
the ``groups`` extension behave as in Channels. ``groups`` keeps Channels' shape
(group → channel → join time). ``clock`` (epoch seconds, default ``time.time``) can
be injected for tests.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import suppress
from copy import deepcopy
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from gateway.bus.lazyqueue import LazyQueue

__all__ = ["SWEEP_PER_CALL", "FlatInMemoryChannelLayer"]

SWEEP_PER_CALL = 2
"""Entries the sweep looks at for each one created. At two, a full round of the sweep
takes half as many creations as there are entries, so what nobody touches again cannot
pile up (at one, it could still grow slowly)."""

Message = dict[str, Any]
_Entry = tuple[float, Message]  # (expires at, message)
_NO_MEMBERS: Mapping[str, float] = {}


class _Inbox(LazyQueue[_Entry]):
    """One channel's queue. Its oldest entry can be read, and it counts the receivers
    waiting on it, so an empty queue with a waiting receiver is never dropped.

    Not an ``asyncio.Queue``: every socket holds one, waiting, for its whole life, and a
    Queue takes about 3 KiB even when empty; a ``LazyQueue`` about 0.2 KiB per idle
    socket (bench/README.md, memory).
    """

    __slots__ = ("maxsize", "receivers")

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.receivers = 0

    def put_nowait(self, item: _Entry) -> None:
        """Queue ``item``; ``asyncio.QueueFull`` at ``maxsize`` (0: no limit)."""
        if 0 < self.maxsize <= self.qsize():
            raise asyncio.QueueFull
        super().put_nowait(item)

    def drop_expired(self, now: float) -> bool:
        """Drop entries that expired before ``now`` (oldest first); True if any was."""
        entries = self._items
        if not entries or entries[0][0] >= now:
            return False
        while entries and entries[0][0] < now:
            entries.popleft()
        if not entries:
            self._items = None
        return True

    @property
    def idle(self) -> bool:
        """No message and nobody waiting: the channel can be forgotten."""
        return not self._items and self.receivers == 0


class FlatInMemoryChannelLayer(BaseChannelLayer):  # type: ignore[misc]  # channels is untyped
    """Drop-in for ``channels.layers.InMemoryChannelLayer`` with flat cost per call."""

    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: Mapping[Any, int] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sweep_per_call: int = SWEEP_PER_CALL,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, **kwargs)
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self.group_expiry = group_expiry
        self.clock = clock
        self.sweep_per_call = sweep_per_call
        self.channels: OrderedDict[str, _Inbox] = OrderedDict()
        self.groups: dict[str, dict[str, float]] = {}
        self.memberships: OrderedDict[str, set[str]] = OrderedDict()  # channel → its groups

    # Channel layer API

    async def send(self, channel: str, message: Message) -> None:
        """Queue ``message`` on ``channel``; :class:`ChannelFull` at capacity."""
        _check_message(message)
        self.require_valid_channel_name(channel)
        self._deliver(channel, message, self.clock())

    async def receive(self, channel: str) -> Message:
        """The channel's next message, waiting for one. With several receivers on one
        channel, one of them gets it. A cancelled receive forgets an empty channel."""
        self.require_valid_channel_name(channel)
        inbox = self._inbox(channel, self.clock())
        inbox.receivers += 1
        try:
            _, message = await inbox.get()
        except BaseException:
            inbox.receivers -= 1
            self._forget_if_idle(channel, inbox)
            raise
        inbox.receivers -= 1
        return message

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A fresh process-local channel name."""
        suffix = "".join(secrets.choice(string.ascii_letters) for _ in range(12))
        return f"{prefix}.inmemory!{suffix}"

    async def flush(self) -> None:
        self.channels = OrderedDict()
        self.groups = {}
        self.memberships = OrderedDict()

    async def close(self) -> None:
        """Nothing to release."""

    # Groups extension

    async def group_add(self, group: str, channel: str) -> None:
        """Add (or renew) ``channel``'s membership of ``group``."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        now = self.clock()
        groups = self.memberships.get(channel)
        if groups is None:
            self._sweep_memberships(now)
            groups = self.memberships[channel] = set()
        groups.add(group)
        self.groups.setdefault(group, {})[channel] = now

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_channel_name(channel)
        self.require_valid_group_name(group)
        self._leave(group, channel)

    async def group_send(self, group: str, message: Message) -> None:
        """Send to every live member; a member at capacity misses the message."""
        _check_message(message)
        self.require_valid_group_name(group)
        now = self.clock()
        for channel in self._live_members(group, now):
            with suppress(ChannelFull):
                self._deliver(channel, message, now)

    # Queues, with lazy expiry

    def _inbox(self, channel: str, now: float) -> _Inbox:
        """The channel's queue with its expired messages dropped, or a new one."""
        inbox = self.channels.get(channel)
        if inbox is not None and self._expire(channel, inbox, now):
            inbox = self.channels.get(channel)  # forgotten if nothing is left in it
        if inbox is None:
            self._sweep_inboxes(now)
            inbox = self.channels[channel] = _Inbox(self.get_capacity(channel))
        return inbox

    def _deliver(self, channel: str, message: Message, now: float) -> None:
        try:
            self._inbox(channel, now).put_nowait((now + self.expiry, deepcopy(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    def _expire(self, channel: str, inbox: _Inbox, now: float) -> bool:
        """Drop the channel's expired messages. As in Channels, a channel that let a
        message expire leaves every group (nobody is reading it), and is forgotten
        when nothing is left in it. True if a message had expired."""
        if not inbox.drop_expired(now):
            return False
        self._leave_all(channel)
        self._forget_if_idle(channel, inbox)
        return True

    def _forget_if_idle(self, channel: str, inbox: _Inbox) -> None:
        if inbox.idle and self.channels.get(channel) is inbox:
            del self.channels[channel]

    # Memberships, with lazy expiry

    def _live_members(self, group: str, now: float) -> list[str]:
        """The group's members, less expired memberships and channels whose messages
        expired (both are dropped here, as Channels' full scan would have)."""
        members = self.groups.get(group)
        if not members:
            return []
        joined_after = now - self.group_expiry
        live: list[str] = []
        for channel, joined in list(members.items()):
            inbox = self.channels.get(channel)
            if joined < joined_after:
                self._leave(group, channel)
            elif inbox is None or not self._expire(channel, inbox, now):
                live.append(channel)
        return live

    def _expire_memberships(self, channel: str, groups: set[str], now: float) -> None:
        """Drop the channel's memberships older than ``group_expiry``."""
        joined_after = now - self.group_expiry
        for group in list(groups):
            joined = self.groups.get(group, _NO_MEMBERS).get(channel)
            if joined is None or joined < joined_after:
                self._leave(group, channel)

    def _leave(self, group: str, channel: str) -> None:
        members = self.groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self.groups[group]
        groups = self.memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self.memberships[channel]

    def _leave_all(self, channel: str) -> None:
        for group in list(self.memberships.get(channel, ())):
            self._leave(group, channel)

    # Bounded sweeps, in turn (an OrderedDict's first entry is O(1); a seen one moves last)

    def _sweep_inboxes(self, now: float) -> None:
        channels = self.channels
        for _ in range(min(self.sweep_per_call, len(channels))):
            channel, inbox = next(iter(channels.items()))
            self._expire(channel, inbox, now)
            if inbox.idle:
                channels.pop(channel, None)
            else:
                channels.move_to_end(channel)

    def _sweep_memberships(self, now: float) -> None:
        memberships = self.memberships
        for _ in range(min(self.sweep_per_call, len(memberships))):
            channel, groups = next(iter(memberships.items()))
            self._expire_memberships(channel, groups, now)
            if channel in memberships:
                memberships.move_to_end(channel)


def _check_message(message: object) -> None:
    if not isinstance(message, dict):
        raise TypeError("message is not a dict")
    if "__asgi_channel__" in message:
        raise ValueError("message carries the reserved __asgi_channel__ key")
