"""One channel-layer channel per process, shared by every local socket (#13 point 7).

Channels gives each consumer its own layer channel, and a task waiting on it for the
socket's whole life; a group message then becomes one layer message, one task wake-up
and one JSON encoding per socket. Here the process's *switchboard* is the only member
of the layer groups its sockets need (``join``/``leave``, counted per group) and the only
reader: it receives each group event once and hands it to the local members of that
group, with a ``shared`` dict so the event is encoded once per process, not per socket.

Every group event names its group (``gateway.sockets.addressing.to_group``): a layer delivers a group message
without saying which group it came through. A ``pubsub.message`` without one is routed
by its ``channel``, so a backend calling ``group_send`` with the documented envelope
still reaches its subscribers.

A switchboard belongs to one event loop; :func:`switchboard` returns the running loop's.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

from gateway.observe.outage import REDIS
from oidc.channels import group_name
from oidc.types import ChannelName

logger = logging.getLogger("gateway.sockets.switchboard")

RETRY_SECONDS = 0.5  # the longest pause after the layer failed a receive

CHANNEL_PREFIX = "gateway.switchboard"
"""The process channel's name prefix; settings give it a large layer capacity."""
CHANNEL_CAPACITY = 100_000
SLICE = 500
"""Members served per loop turn: one event for 50,000 local subscribers is 100 short turns,
each about 15 ms, not one stall of a second; other sockets are served in between."""

Event = dict[str, Any]


class Member(Protocol):
    """A local socket: takes every event of the groups it joined, without blocking."""

    def deliver(self, event: Event, shared: dict[str, Any]) -> None: ...


def _pubsub_group(event: Event) -> str | None:
    channel = event.get("channel")
    if not isinstance(channel, str):
        return None
    try:
        return group_name(ChannelName(channel))
    except UnicodeError:
        return None


def group_of(event: Event) -> str | None:
    """The group an event was sent to, or None (the event is then dropped)."""
    group = event.get("group")
    if isinstance(group, str):
        return group
    if event.get("type") == "pubsub.message":
        return _pubsub_group(event)
    return None


class Switchboard:
    """This loop's layer channel, its groups and their local members."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[Member]] = {}
        self.adding: dict[str, asyncio.Future[None]] = {}  # groups still being joined
        self.listener: asyncio.Task[None] | None = None
        self.dropped = 0  # events that named no group with local members

    async def join(self, group: str, member: Member) -> None:
        """Add a local member; the first one makes the process a member of the layer group,
        and members joining meanwhile wait for that. Raises what the layer raises (the bus
        is down); the member is not added then."""
        members = self.members.get(group)
        if members is None:
            await self._first_join(group, member)
            return
        members.add(member)
        adding = self.adding.get(group)
        if adding is not None:
            try:
                await asyncio.shield(adding)
            except BaseException:
                self._drop(group, member)
                raise

    async def _first_join(self, group: str, member: Member) -> None:
        self.members[group] = {member}
        added = self.adding[group] = asyncio.get_running_loop().create_future()
        try:
            await self.layer.group_add(group, await self._channel())
        except BaseException as exc:
            self.members.pop(group, None)  # everyone waiting fails with this member
            if isinstance(exc, Exception):
                added.set_exception(exc)
                added.exception()  # marked as retrieved: nobody may be waiting
            else:
                added.cancel()
            raise
        else:
            added.set_result(None)
        finally:
            self.adding.pop(group, None)

    def _drop(self, group: str, member: Member) -> None:
        members = self.members.get(group)
        if members is not None:
            members.discard(member)

    async def leave(self, group: str, member: Member) -> None:
        """Remove a local member; the last one takes the process out of the layer group."""
        members = self.members.get(group)
        if members is None or member not in members:
            return
        members.discard(member)
        if not members and group not in self.adding:
            del self.members[group]
            if self.channel is not None:
                await self.layer.group_discard(group, self.channel)

    async def renew(self) -> tuple[int, int]:
        """Re-join every group, so none outlives the layer's membership expiry.

        The in-memory and core Redis layers drop a membership a day after it was added;
        a socket kept alive that long would silently miss logouts, grant changes and
        messages. The pub/sub layer never expires them and treats this as a no-op.
        """
        renewed = failed = 0
        for group in list(self.members):
            try:
                await self.layer.group_add(group, await self._channel())
                renewed += 1
            except Exception:  # the bus may be down (the bus watchdog closes the sockets)
                failed += 1
        if failed:
            logger.warning("could not renew %d groups", failed)
        return renewed, failed

    async def deliver(self, event: Event) -> int:
        """Hand one event to the local members of its group, ``SLICE`` per loop turn;
        returns how many got it. Events are delivered one after another, in order."""
        group = group_of(event)
        members = list(self.members.get(group, ())) if group is not None else []
        if not members:
            self.dropped += 1
            return 0
        shared: dict[str, Any] = {}
        for start in range(0, len(members), SLICE):
            if start:
                await asyncio.sleep(0)  # let the loop serve everything else
            for member in members[start:start + SLICE]:
                try:
                    member.deliver(event, shared)
                except Exception:  # one broken socket never stops the others
                    logger.exception("delivering %s failed for one socket", event.get("type"))
        return len(members)

    async def _channel(self) -> str:
        if self.channel is None:
            self.channel = await self.layer.new_channel(f"{CHANNEL_PREFIX}.")
        if self.listener is None or self.listener.done():
            self.listener = asyncio.get_running_loop().create_task(
                self._listen(self.channel), name="gateway switchboard")
        return self.channel

    async def _listen(self, channel: str) -> None:
        while True:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bus watchdog closes the sockets
                # Counted, not logged. Retried at least every RETRY_SECONDS: every socket of
                # the process reads through here (with the core layer, a longer pause left
                # the sockets admitted after an outage deaf in the e2e test).
                await asyncio.sleep(min(REDIS.failed("switchboard", exc), RETRY_SECONDS))
                continue
            REDIS.recovered("switchboard")
            await self.deliver(event)


_BOARDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Switchboard] = (
    weakref.WeakKeyDictionary())


def switchboard() -> Switchboard:
    """The running loop's switchboard on the default channel layer (made on first use)."""
    loop = asyncio.get_running_loop()
    board = _BOARDS.get(loop)
    layer = get_channel_layer()
    if board is None or board.layer is not layer:  # first use, or the settings changed it
        if board is not None and board.listener is not None:
            board.listener.cancel()
        board = _BOARDS[loop] = Switchboard(layer)
    return board


async def renew_groups() -> int:
    """Re-join this process's groups (the lifespan calls this hourly)."""
    board = _BOARDS.get(asyncio.get_running_loop())
    return (await board.renew())[0] if board is not None else 0


async def rejoin_groups() -> bool:
    """Re-join every group after a break in the bus (a restarted or failed-over Redis has
    forgotten the core layer's memberships); True when every group was joined."""
    board = _BOARDS.get(asyncio.get_running_loop())
    return board is None or (await board.renew())[1] == 0
