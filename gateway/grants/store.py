"""Grants from the database to consumers: change log, version, broadcast, per-process cache.

Write side (sync, any process): every save or delete of a ``Grant`` row bumps
``GrantVersion``, appends a ``GrantChange`` (who = the admin user set by
``acting_as``; None for changes made through the model elsewhere) and, once the
transaction commits, sends ``grants.changed`` to the ``gw.grants`` group, which
every pub/sub socket on every process joins.

Read side (async): ``cache`` holds one immutable ``GrantSnapshot`` per process,
keyed by version. A broadcast makes it reload; if a broadcast is lost (the
pub/sub layer drops messages during a Redis partition) the snapshot is still
re-checked against the version row at least every ``MAX_AGE`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from gateway.models import Grant as GrantRow
from gateway.models import GrantChange, GrantVersion
from gateway.sockets.addressing import to_group
from oidc.channels import InvalidChannel
from oidc.grants import Grant, GrantSnapshot, Operation

logger = logging.getLogger("gateway.grants")

GRANTS_GROUP = "gw.grants"
MAX_AGE = 5.0

_acting_user: ContextVar[Any] = ContextVar("grant_acting_user", default=None)
_previewed: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("grant_previewed",
                                                                         default=None)


@contextlib.contextmanager
def acting_as(user: Any) -> Iterator[None]:
    """Attribute the grant changes made inside this block to ``user`` (the admin)."""
    token = _acting_user.set(user)
    try:
        yield
    finally:
        _acting_user.reset(token)


@contextlib.contextmanager
def previewed(batch: str, counts: dict[str, Any]) -> Iterator[None]:
    """The grant changes made inside this block were confirmed after a preview that showed
    ``counts``; they are recorded with it, as one ``batch``."""
    token = _previewed.set((batch, counts))
    try:
        yield
    finally:
        _previewed.reset(token)


# --- write side ----------------------------------------------------------------------


def bump_version() -> int:
    """Increase the grant version by one (atomically) and return it."""
    if not GrantVersion.objects.filter(pk=1).update(version=F("version") + 1):
        GrantVersion.objects.get_or_create(pk=1, defaults={"version": 0})
        GrantVersion.objects.filter(pk=1).update(version=F("version") + 1)
    return int(GrantVersion.objects.values_list("version", flat=True).get(pk=1))


def broadcast(version: int) -> None:
    """Tell every pub/sub socket on every process that grants changed."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(GRANTS_GROUP, to_group(
            GRANTS_GROUP, {"type": "grants.changed", "version": version}))
    except Exception:  # caches still notice within MAX_AGE
        logger.exception("grant change broadcast failed (version %s)", version)


def _record(action: str, grant_id: int, before: Any, after: Any) -> None:
    version = bump_version()
    user = _acting_user.get()
    batch, preview = _previewed.get() or ("", None)
    GrantChange.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "get_username", lambda: "")() if user is not None else "",
        action=action, grant_id=grant_id, before=before, after=after, version=version,
        batch=batch, preview=preview,
    )
    transaction.on_commit(partial(broadcast, version))


@receiver(pre_save, sender=GrantRow, dispatch_uid="grants.remember_before")
def _remember_before(sender: Any, instance: GrantRow, **kwargs: Any) -> None:
    old = GrantRow.objects.filter(pk=instance.pk).first() if instance.pk else None
    instance._before = old.snapshot() if old else None  # type: ignore[attr-defined]


@receiver(post_save, sender=GrantRow, dispatch_uid="grants.record_save")
def _record_save(sender: Any, instance: GrantRow, created: bool, **kwargs: Any) -> None:
    before = None if created else getattr(instance, "_before", None)
    _record("create" if created else "update", instance.pk, before, instance.snapshot())


@receiver(post_delete, sender=GrantRow, dispatch_uid="grants.record_delete")
def _record_delete(sender: Any, instance: GrantRow, **kwargs: Any) -> None:
    _record("delete", instance.pk, instance.snapshot(), None)


# --- read side -----------------------------------------------------------------------


def to_value(row: GrantRow) -> Grant:
    """A database row as the pure, immutable grant the matcher takes."""
    ops = {op for op, on in ((Operation.SUBSCRIBE, row.subscribe),
                             (Operation.PUBLISH, row.publish),
                             (Operation.PRESENCE, row.presence)) if on}
    return Grant(issuer=row.issuer, claim=row.claim, value=row.value, target=row.target,
                 operations=frozenset(ops), grant_id=row.pk)


async def read_version() -> int:
    version = await GrantVersion.objects.filter(pk=1).values_list("version", flat=True).afirst()
    return int(version or 0)


async def load_snapshot(version: int | None = None) -> GrantSnapshot:
    """Every grant, read with the async ORM. The version is read first, so a concurrent
    change can only make the snapshot newer than its label (and reloaded again)."""
    if version is None:
        version = await read_version()
    grants = []
    async for row in GrantRow.objects.all():
        try:
            grants.append(to_value(row))
        except (InvalidChannel, ValueError):
            logger.warning("grant %s is invalid and ignored", row.pk)
    return GrantSnapshot(version, tuple(grants))


class GrantCache:
    """One immutable snapshot per process, reloaded only when the version moves."""

    def __init__(self, *, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.monotonic,
                 read: Callable[[], Awaitable[int]] = read_version,
                 load: Callable[[int], Awaitable[GrantSnapshot]] = load_snapshot) -> None:
        self.max_age, self.clock, self.read, self.load = max_age, clock, read, load
        self.snapshot: GrantSnapshot | None = None
        self.checked_at = float("-inf")
        self.watchers = 0
        self._locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()

    def watch(self) -> None:
        """A socket joined ``gw.grants``. Broadcasts only reach processes with such sockets,
        so the first one re-checks the version instead of trusting an unwatched snapshot."""
        if self.watchers == 0:
            self.checked_at = float("-inf")
        self.watchers += 1

    def unwatch(self) -> None:
        self.watchers = max(0, self.watchers - 1)

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        return self._locks.setdefault(loop, asyncio.Lock())

    async def current(self) -> GrantSnapshot:
        """The snapshot, re-checked against the version row if older than ``max_age``."""
        if self.snapshot is not None and self.clock() - self.checked_at < self.max_age:
            return self.snapshot
        return await self._refresh(minimum=None)

    async def at_least(self, version: int) -> GrantSnapshot:
        """A snapshot no older than ``version`` (after a ``grants.changed`` broadcast)."""
        if self.snapshot is not None and self.snapshot.version >= version:
            return self.snapshot
        return await self._refresh(minimum=version)

    async def _refresh(self, minimum: int | None) -> GrantSnapshot:
        async with self._lock():
            fresh = self.snapshot is not None and self.clock() - self.checked_at < self.max_age
            if self.snapshot is not None and (
                (minimum is not None and self.snapshot.version >= minimum)
                or (minimum is None and fresh)
            ):
                return self.snapshot  # another socket refreshed while we waited
            version = await self.read()
            if self.snapshot is None or self.snapshot.version != version:
                self.snapshot = await self.load(version)
            self.checked_at = self.clock()
            return self.snapshot

    def clear(self) -> None:
        self.snapshot, self.checked_at, self.watchers = None, float("-inf"), 0


cache = GrantCache()
