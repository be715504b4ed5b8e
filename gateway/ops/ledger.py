"""Who is connected where, shared by every gateway process: sockets per subject, presence.

Entries are kept per socket (its channel-layer name), so counts go down exactly when
sockets close. With Redis, every entry carries an expiry that its own process refreshes
every ``ttl / 3`` seconds (one heartbeat task per process). A process that crashes stops
refreshing, and its entries vanish within ``ttl``: no ghost members, no leaked socket
counts. Without Redis there is one process, and ``MemoryLedger`` keeps the same
interface in a dict.

Redis layout (scores are expiry times; every key also expires when left alone)::

    gw:sockets:<digest(iss, sub)>            ZSET  socket -> expiry
    gw:presence:<channel>                    ZSET  ["iss", "sub"] -> expiry of its newest socket
    gw:presence:<channel>:<digest(iss, sub)> ZSET  socket -> expiry

Each change is one Lua script, so two processes cannot both take the last free socket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from gateway.bus.perprocess import PerProcess
from gateway.ops.heartbeat import KeptAlive, TurnBatches

logger = logging.getLogger("gateway.ledger")

Member = tuple[str, str]  # (issuer, subject)


class Ledger(Protocol):
    async def acquire_socket(self, who: Member, socket: str, limit: int) -> bool:
        """Count ``socket`` for ``who`` unless ``limit`` sockets are already open (0: no limit)."""
    async def release_socket(self, who: Member, socket: str) -> None: ...
    async def join(self, channel: str, who: Member, socket: str) -> bool:
        """Record a subscriber; True if it is ``who``'s first socket on the channel."""
    async def leave(self, channel: str, who: Member, socket: str) -> bool:
        """Forget a subscriber; True if it was ``who``'s last socket on the channel."""
    async def members(self, channel: str) -> list[Member]:
        """Who is subscribed to the channel: each issuer and subject once."""


class MemoryLedger:
    """One process, no Redis: plain dicts."""

    def __init__(self) -> None:
        self.sockets: defaultdict[Member, set[str]] = defaultdict(set)
        self.presence: defaultdict[str, defaultdict[Member, set[str]]] = defaultdict(
            lambda: defaultdict(set))

    async def acquire_socket(self, who: Member, socket: str, limit: int) -> bool:
        held = self.sockets[who]
        if limit and socket not in held and len(held) >= limit:
            return False
        held.add(socket)
        return True

    async def release_socket(self, who: Member, socket: str) -> None:
        held = self.sockets.get(who)
        if held is not None:
            held.discard(socket)
            if not held:
                del self.sockets[who]

    async def join(self, channel: str, who: Member, socket: str) -> bool:
        sockets = self.presence[channel][who]
        first = not sockets
        sockets.add(socket)
        return first

    async def leave(self, channel: str, who: Member, socket: str) -> bool:
        members = self.presence.get(channel)
        if members is None or socket not in members.get(who, ()):
            return False
        members[who].discard(socket)
        if members[who]:
            return False
        del members[who]
        if not members:
            del self.presence[channel]
        return True

    async def members(self, channel: str) -> list[Member]:
        return sorted(self.presence.get(channel, {}))


ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local limit = tonumber(ARGV[3])
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[4])
   and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

JOIN = """
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local first = redis.call('ZCARD', KEYS[2]) == 0
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
if first then return 1 end
return 0
"""

LEAVE = """
local removed = redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if removed == 1 and redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[3])
  return 1
end
return 0
"""


def _digest(who: Member) -> str:
    return hashlib.sha256("\x00".join(who).encode()).hexdigest()[:40]


def _member(who: Member) -> str:
    return json.dumps(list(who), separators=(",", ":"))


class RedisLedger(KeptAlive):
    """Shared by every process that uses the same Redis; see the module docstring."""

    def __init__(self, url: str, ttl: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, ttl, clock)
        # entries this process keeps alive: (zset, socket) -> (member zset, member) or None
        self.local: dict[tuple[str, str], tuple[str, str] | None] = {}
        self.scripts: TurnBatches[tuple[str, list[str], tuple[Any, ...]]] = TurnBatches(
            self._run_all)

    async def _run(self, script: str, keys: list[str], *args: Any) -> int:
        """One script call, sent with the others of this loop turn (``TurnBatches``)."""
        return int(await self.scripts.submit((script, keys, args)))

    async def _run_all(self, calls: list[tuple[str, list[str], tuple[Any, ...]]]) -> list[Any]:
        now = self.clock()
        pipe = self.client().pipeline(transaction=False)  # each script is atomic by itself
        for script, keys, args in calls:
            pipe.eval(script, len(keys), *keys, now, now + self.ttl, *args)
        return list(await pipe.execute(raise_on_error=False))

    def _keep(self, key: str, socket: str, parent: tuple[str, str] | None = None) -> None:
        self.local[(key, socket)] = parent
        self.keep_beating()

    async def refresh(self) -> None:
        """Push the expiry of every entry of this process ``ttl`` into the future (a
        member's entry only forward: another process may hold it longer)."""
        expiry = self.clock() + self.ttl
        entries: dict[str, dict[str, float]] = {}
        parents: dict[str, dict[str, float]] = {}
        for (key, socket), parent in list(self.local.items()):
            entries.setdefault(key, {})[socket] = expiry
            if parent is not None:
                parents.setdefault(parent[0], {})[parent[1]] = expiry
        await self.extend(entries)
        await self.extend(parents, gt=True)

    async def acquire_socket(self, who: Member, socket: str, limit: int) -> bool:
        key = f"gw:sockets:{_digest(who)}"
        if not await self._run(ACQUIRE, [key], limit, socket, self.key_ttl):
            return False
        self._keep(key, socket)
        return True

    async def release_socket(self, who: Member, socket: str) -> None:
        key = f"gw:sockets:{_digest(who)}"
        self.local.pop((key, socket), None)
        await self.client().zrem(key, socket)

    def _presence_keys(self, channel: str, who: Member) -> tuple[str, str]:
        return f"gw:presence:{channel}", f"gw:presence:{channel}:{_digest(who)}"

    async def join(self, channel: str, who: Member, socket: str) -> bool:
        members, sockets = self._presence_keys(channel, who)
        first = await self._run(JOIN, [members, sockets], _member(who), socket, self.key_ttl)
        self._keep(sockets, socket, (members, _member(who)))
        return bool(first)

    async def leave(self, channel: str, who: Member, socket: str) -> bool:
        members, sockets = self._presence_keys(channel, who)
        self.local.pop((sockets, socket), None)
        return bool(await self._run(LEAVE, [members, sockets], _member(who), socket))

    async def members(self, channel: str) -> list[Member]:
        key = f"gw:presence:{channel}"
        pipe = self.client().pipeline(transaction=True)
        pipe.zremrangebyscore(key, "-inf", self.clock())
        pipe.zrange(key, 0, -1)
        _, raw = await pipe.execute()
        return sorted((str(i), str(s)) for i, s in (json.loads(m) for m in raw))


ledger: PerProcess[Ledger] = PerProcess(RedisLedger, MemoryLedger)
use_ledger = ledger.use
