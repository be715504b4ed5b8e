"""Per-process cache of logged-in sessions for websocket handshakes, emptied by the logout broadcast.

Every cookie (or ticket) handshake needs the session's principal. Reading it costs a hop
to Django's database thread, a query and the session's signature check. This cache keeps
the principal per session key for ``TTL`` seconds, and is consulted only while this
process is listening to the revocation broadcast:

- every logout path (gateway logout, back-channel logout, a refused refresh) and every
  refresh deletes or rewrites the session in the database *first*, then calls
  :func:`announce` / :func:`announce_sync`: the entry is dropped in this process at once,
  and a ``session.revoked`` message goes to the ``REVOKED_GROUP`` group on the channel
  layer, which every gateway process joins (:func:`listen`, started by the lifespan);
- a listener that is not joined (startup, an error) turns the cache off and empties
  it; a lost bus turns it off too, and any break in the bus (``gateway.bus.health``:
  down, Redis replaced, the subscriber reconnected; messages sent meanwhile may be lost)
  empties it: handshakes then read the database, as without a cache;
- a database read that overlaps an invalidation is not cached (``generation``), so a read
  that raced a logout cannot bring the session back;
- an entry is never used past the principal's own expiry (the database then says whether
  a refresh happened).

What remains is the broadcast's delivery time: a handshake on another process within
that time (about a millisecond on Redis pub/sub) can still be served from the cache. So
for ``logged_out``, a listener that held the session sends ``gateway.revoke`` to the
session's sockets again, and a socket accepted in that window is closed with 4401 like
the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from gateway.bus.health import bus
from gateway.observe.outage import REDIS
from gateway.sockets.addressing import revoke, session_group
from oidc.types import Principal

logger = logging.getLogger("gateway.session_cache")

REVOKED_GROUP = "gateway.sessions.revoked"
TTL = 60.0  # seconds an entry may serve handshakes
MAX_ENTRIES = 100_000
REJOIN_SECONDS = 3600.0  # younger than the layers' one-day group expiry
BREAK_CHECK_SECONDS = 0.5  # how often the listener looks for a break in the bus to rejoin after
LISTENER = "session revocation listener"


class SessionCache:
    """Principals by session key, for at most ``ttl`` seconds each, oldest dropped first."""

    def __init__(self, ttl: float = TTL, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.enabled = False  # True only while this process hears the broadcast
        self.generation = 0  # bumped by every invalidation
        self.bus_epoch = bus.epoch  # the bus continuity the entries were learnt in
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def _bus_trusted(self) -> bool:
        """Whether the bus is up and unbroken since the listener joined the broadcast; if
        not, forget everything (the broadcast may have been lost meanwhile) until the
        listener has joined it again (``heard_from``)."""
        if bus.up and bus.epoch == self.bus_epoch:
            return True
        self._forget_all()
        return False

    def heard_from(self, epoch: int) -> None:
        """The listener joined the broadcast while the bus was at ``epoch``."""
        self.enabled = True
        if epoch != self.bus_epoch:
            self.bus_epoch = epoch
            self._forget_all()

    def get(self, key: str, now: float) -> Principal | None:
        if not self.enabled or not self._bus_trusted():
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        until, principal = entry
        if now >= until or now >= principal.expires_at:
            self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: str, principal: Principal, now: float, generation: int) -> None:
        """Remember a principal read at ``generation``; ignored if anything was
        invalidated since (the read may predate a logout)."""
        if not self.enabled or not self._bus_trusted() or generation != self.generation:
            return
        self._entries[key] = (now + self.ttl, principal)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> bool:
        """Drop the key; True if this process had it (it may have served sockets)."""
        self.generation += 1
        return self._entries.pop(key, None) is not None

    def turn_off(self) -> None:
        self.enabled = False
        self._forget_all()

    def _forget_all(self) -> None:
        self.generation += 1  # a read under way may predate what was lost
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


sessions = SessionCache()


def _message(key: str, reason: str) -> dict[str, str]:
    return {"type": "session.revoked", "session": key, "reason": reason}


async def announce(keys: list[str], reason: str) -> None:
    """After the database changed: drop the keys here, and tell every process."""
    for key in keys:
        sessions.forget(key)
    layer = get_channel_layer()
    if layer is None:
        return
    for key in keys:
        await layer.group_send(REVOKED_GROUP, _message(key, reason))


def announce_sync(keys: list[str], reason: str) -> None:
    """:func:`announce` from synchronous code (Django signal receivers)."""
    async_to_sync(announce)(keys, reason)


async def _handle(layer: Any, message: dict[str, Any]) -> None:
    key = message.get("session")
    if not isinstance(key, str):
        return
    served = sessions.forget(key)
    if served and message.get("reason") == "logged_out":  # a socket accepted meanwhile
        group = session_group(key)
        await layer.group_send(group, revoke(group, "logged_out"))


class _Listener:
    """The listener's channel, kept across failures, and its pending ``receive``.

    Every ``BREAK_CHECK_SECONDS`` the listener looks for a break in the bus. The pub/sub
    layer takes a cancelled receive for a consumer leaving: it forgets the channel and
    unsubscribes it (logging a traceback when Redis is down), so a message arriving
    meanwhile is dropped and the next join is refused. So with that layer
    (``cancel_forgets_channel``) one receive stays pending across the checks. The core
    layer shares one Redis reader among a process's channels, and a receive left pending
    beside the switchboard's stalls it after an outage: there the receive is cancelled at
    each check, which that layer allows (its messages wait in a backup queue)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.receiving: asyncio.Future[Any] | None = None
        self.joined_at = 0.0
        self.keep_pending = bool(getattr(layer, "cancel_forgets_channel", False))

    async def serve(self) -> None:
        """Join the broadcast (again after every break, and every ``REJOIN_SECONDS``) and
        apply it, until something fails."""
        if self.channel is None:
            self.channel = await self.layer.new_channel("sessions.")
        while True:
            if (not sessions.enabled or bus.epoch != sessions.bus_epoch
                    or time.monotonic() - self.joined_at > REJOIN_SECONDS):
                await _join(self.layer, self.channel)  # after a break: a new Redis may not know us
                self.joined_at = time.monotonic()
                REDIS.recovered(LISTENER)
            if self.receiving is None:
                self.receiving = asyncio.ensure_future(self.layer.receive(self.channel))
            done, _ = await asyncio.wait({self.receiving}, timeout=BREAK_CHECK_SECONDS)
            if done:
                finished, self.receiving = self.receiving, None
                await _handle(self.layer, finished.result())
            elif not self.keep_pending:
                self.stop()

    def stop(self) -> None:
        if self.receiving is not None:
            self.receiving.cancel()
            self.receiving = None


async def _join(layer: Any, channel: str) -> None:
    epoch = bus.epoch  # a break during the join leaves the cache off until the next one
    await layer.group_add(REVOKED_GROUP, channel)
    sessions.heard_from(epoch)


async def listen() -> None:
    """Join the revocation broadcast and apply it; the cache is on only meanwhile. While
    the bus fails, attempts are retried with backoff and counted, not logged one by one
    (``gateway.observe.outage``)."""
    layer = get_channel_layer()
    if layer is None:
        return
    listener = _Listener(layer)
    try:
        while True:
            try:
                await listener.serve()
            except Exception as exc:  # the bus is down or failing: no cache until we hear it
                sessions.turn_off()
                await asyncio.sleep(REDIS.failed(LISTENER, exc))
    finally:
        sessions.turn_off()
        listener.stop()
