"""Every open socket on every gateway process, with what the admin's live view shows.

The consumers enrol each accepted socket (``opened``), report its channels as they change
(``subscribed``) and strike it off when it closes (``closed``). With Redis the roster is
shared by every process; like ``gateway.ops.ledger`` each entry carries an expiry that
its own process refreshes every ``ttl / 3`` seconds, so the sockets of a crashed process
drop off the list within ``ttl``. Without Redis there is one process and ``MemoryRoster``
keeps the same interface in a dict.

Redis layout (one key set for the whole deployment)::

    gw:roster         ZSET  socket -> expiry
    gw:roster:info    HASH  socket -> JSON of its SocketEntry, without its claims
    gw:roster:claims  HASH  socket -> JSON of its claims (read only when a grant
                            change's preview involves claim paths beyond groups and roles)

Listing drops expired sockets and details without a live socket.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket as sockets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from gateway.bus.perprocess import PerProcess
from gateway.ops.heartbeat import KeptAlive, TurnBatches

logger = logging.getLogger("gateway.roster")

ROSTER_KEY = "gw:roster"
INFO_KEY = "gw:roster:info"
CLAIMS_KEY = "gw:roster:claims"


@functools.cache
def _host() -> str:
    return sockets.gethostname()  # a system call: 1% of a handshake's CPU when asked each time


def this_process() -> str:
    """``host:pid``: which gateway process holds a socket."""
    return f"{_host()}:{os.getpid()}"


MAX_CLAIMS_BYTES = 4096
"""Past this, a socket's claims are not listed (``claims_kept`` is False): the admin's preview
of a grant change still knows its groups and roles, and says it could not check claim paths."""


@dataclass(frozen=True, slots=True)  # one per open socket: no instance dict
class SocketEntry:
    socket: str  # the channel-layer name: unique, and addressable from any process
    issuer: str
    subject: str
    route: str
    credential: str
    process: str
    connected_at: float
    channels: tuple[str, ...] = ()
    # what the grant matcher reads of the socket's principal (oidc.grants.Claimant), so the
    # admin can preview which subscriptions a grant change would revoke
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    claims: dict[str, Any] = field(default_factory=dict)
    claims_kept: bool = True

    def to_json(self) -> str:
        """The entry without its claims (``claims_json`` has them)."""
        data = asdict(self)
        del data["claims"]
        return json.dumps(data, separators=(",", ":"))

    def claims_json(self) -> str:
        return json.dumps(self.claims, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> SocketEntry:
        data = json.loads(raw)
        for key in ("channels", "groups", "roles"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


def matcher_view(groups: Iterable[str], roles: Iterable[str],
                 claims: Mapping[str, Any]) -> dict[str, Any]:
    """The ``groups``, ``roles``, ``claims`` and ``claims_kept`` fields of a socket's entry.
    Top-level ``groups`` and ``roles`` claims are left out: the matcher reads the principal's
    normalised sets for those names, never the raw claims."""
    kept = {k: v for k, v in claims.items() if k not in ("groups", "roles")}
    try:
        fits = len(json.dumps(kept, separators=(",", ":"))) <= MAX_CLAIMS_BYTES
    except (TypeError, ValueError):
        fits = False
    return {"groups": tuple(sorted(groups)), "roles": tuple(sorted(roles)),
            "claims": kept if fits else {}, "claims_kept": fits}


class Roster(Protocol):
    async def opened(self, entry: SocketEntry) -> None: ...
    async def subscribed(self, socket: str, channels: Iterable[str]) -> None:
        """The socket's channels are now ``channels``."""
    async def reidentified(self, entry: SocketEntry) -> None:
        """The socket's principal changed (a refresh or an ``auth`` message): ``entry`` holds
        its new claims; its channels are kept."""
    async def closed(self, socket: str) -> None: ...
    async def entries(self) -> list[SocketEntry]:
        """Every open socket on every process, oldest first (``claims`` may be left empty:
        ask ``claims`` for them)."""
    async def claims(self, sockets: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The claims of these sockets (those still listed)."""


def _ordered(entries: Iterable[SocketEntry]) -> list[SocketEntry]:
    return sorted(entries, key=lambda e: (e.connected_at, e.socket))


class MemoryRoster:
    """One process, no Redis."""

    def __init__(self) -> None:
        self.sockets: dict[str, SocketEntry] = {}

    async def opened(self, entry: SocketEntry) -> None:
        self.sockets[entry.socket] = entry

    async def subscribed(self, socket: str, channels: Iterable[str]) -> None:
        entry = self.sockets.get(socket)
        if entry is not None:
            self.sockets[socket] = replace(entry, channels=tuple(sorted(channels)))

    async def reidentified(self, entry: SocketEntry) -> None:
        old = self.sockets.get(entry.socket)
        if old is not None:
            self.sockets[entry.socket] = replace(entry, channels=old.channels)

    async def closed(self, socket: str) -> None:
        self.sockets.pop(socket, None)

    async def entries(self) -> list[SocketEntry]:
        return _ordered(self.sockets.values())

    async def claims(self, sockets: Iterable[str]) -> dict[str, dict[str, Any]]:
        return {s: self.sockets[s].claims for s in sockets if s in self.sockets}


class RedisRoster(KeptAlive):
    """Shared by every process that uses the same Redis; see the module docstring.

    Changes made in the same loop turn go out together (``TurnBatches``), one transaction
    per 1,000 sockets; each caller still returns only once its own change is written.
    """

    def __init__(self, url: str, ttl: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, ttl, clock)
        self.local: dict[str, SocketEntry] = {}  # this process's sockets, kept alive here
        self.changes: TurnBatches[tuple[str, SocketEntry | None]] = TurnBatches(self._write)

    async def _change(self, socket: str, entry: SocketEntry | None) -> None:
        """Write ``entry`` for ``socket``, or strike it off (None), with this turn's others."""
        await self.changes.submit((socket, entry))

    async def _write(self, batch: list[tuple[str, SocketEntry | None]]) -> list[None]:
        latest = dict(batch)  # a socket changed twice in one turn: its last change
        written = {socket: entry.to_json() for socket, entry in latest.items() if entry is not None}
        gone = [socket for socket, entry in latest.items() if entry is None]
        pipe = self.client().pipeline(transaction=True)
        claims = {socket: entry.claims_json() for socket, entry in latest.items()
                  if entry is not None}
        if written:
            pipe.hset(INFO_KEY, items=[part for pair in written.items() for part in pair])
            pipe.hset(CLAIMS_KEY, items=[part for pair in claims.items() for part in pair])
            pipe.zadd(ROSTER_KEY, dict.fromkeys(written, self.clock() + self.ttl))
        if gone:
            pipe.zrem(ROSTER_KEY, *gone)
            pipe.hdel(INFO_KEY, *gone)
            pipe.hdel(CLAIMS_KEY, *gone)
        for key in (INFO_KEY, CLAIMS_KEY, ROSTER_KEY):
            pipe.expire(key, self.key_ttl)
        await pipe.execute()
        return [None] * len(batch)

    async def opened(self, entry: SocketEntry) -> None:
        self.local[entry.socket] = entry
        await self._change(entry.socket, entry)
        self.keep_beating()

    async def subscribed(self, socket: str, channels: Iterable[str]) -> None:
        entry = self.local.get(socket)
        if entry is not None:
            self.local[socket] = replace(entry, channels=tuple(sorted(channels)))
            await self._change(socket, self.local[socket])

    async def reidentified(self, entry: SocketEntry) -> None:
        old = self.local.get(entry.socket)
        if old is not None:
            self.local[entry.socket] = replace(entry, channels=old.channels)
            await self._change(entry.socket, self.local[entry.socket])

    async def closed(self, socket: str) -> None:
        self.local.pop(socket, None)
        await self._change(socket, None)

    async def refresh(self) -> None:
        """Push the expiry of this process's sockets ``ttl`` into the future."""
        await self.extend({ROSTER_KEY: dict.fromkeys(self.local, self.clock() + self.ttl)})
        await self.client().expire(INFO_KEY, self.key_ttl)
        await self.client().expire(CLAIMS_KEY, self.key_ttl)

    async def entries(self) -> list[SocketEntry]:
        client = self.client()
        await client.zremrangebyscore(ROSTER_KEY, "-inf", self.clock())
        # details first: a socket opened meanwhile is written with both in one transaction,
        # so details without a live socket afterwards belong to a closed or expired one
        details = await client.hvals(INFO_KEY)  # each names its socket: half the items to parse
        live = {s.decode() if isinstance(s, bytes) else str(s)
                for s in await client.zrange(ROSTER_KEY, 0, -1)}
        found, stale = [], []
        for raw in details:
            entry = SocketEntry.from_json(raw)
            if entry.socket in live:
                found.append(entry)
            else:
                stale.append(entry.socket)
        if stale:  # details of sockets whose process stopped refreshing them
            await client.hdel(INFO_KEY, *stale)
            await client.hdel(CLAIMS_KEY, *stale)
        return _ordered(found)

    async def claims(self, sockets: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(sockets)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 5000):
            chunk = wanted[start:start + 5000]
            for socket, raw in zip(chunk, await self.client().hmget(CLAIMS_KEY, chunk), strict=True):
                if raw is not None:
                    found[socket] = json.loads(raw)
        return found


roster: PerProcess[Roster] = PerProcess(RedisRoster, MemoryRoster)
use_roster = roster.use
