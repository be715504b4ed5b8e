"""The preview of a grant change, gathered for the admin: grants, live sockets, known users.

``stage_*`` describe a change as the grant rows it removes and adds (their ``snapshot()``);
``gather`` reads what the preview needs once (current grants and version, every live socket
on every process from the roster, the claims of every identity's last login) and
``oidc.preview.preview_change`` answers, with the runtime matcher. ``Review`` is what the
page shows: names instead of subjects, lists capped at ``SHOWN`` names, and the counts the
change log keeps (``Review.counts``).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import operator
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any, cast

from asgiref.sync import async_to_sync
from django.db.models import Q
from django.utils import timezone

from gateway.grants.store import to_value
from gateway.models import Grant as GrantRow
from gateway.models import GrantOutcome, GrantVersion, KnownClaims, OidcIdentity
from gateway.ops.roster import SocketEntry, roster
from gateway.oversight.logins import Known, known_holders
from oidc.channels import normalise_pattern
from oidc.grants import Grant, Operation
from oidc.preview import (
    Holder,
    LiveSocket,
    Preview,
    RevokedSocket,
    Who,
    channels_reading_claims,
    preview_change,
    relevant_claims,
)
from oidc.types import ChannelName

SHOWN = 50
NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})
OPERATIONS = tuple(Operation)
BY_SUBJECT = operator.itemgetter(1, 0)


@dataclass(frozen=True)
class Staged:
    """A change: grants it removes (``before``, with their ids) and adds (``after``)."""

    action: str  # create, update, delete
    ids: tuple[int, ...]
    before: tuple[dict[str, Any], ...]
    after: tuple[dict[str, Any], ...]

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "ids": list(self.ids), "before": list(self.before),
                "after": list(self.after)}


def normalised(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A grant snapshot with its target as ``Grant.save`` stores it."""
    return {**snapshot, "target": normalise_pattern(snapshot["target"])}


def stage_save(before: GrantRow | None, after: GrantRow) -> Staged:
    """Adding ``after``, or turning the saved row ``before`` into ``after``."""
    if before is None:
        return Staged("create", (), (), (normalised(after.snapshot()),))
    return Staged("update", (before.pk,), (before.snapshot(),), (normalised(after.snapshot()),))


def stage_delete(rows: Iterable[GrantRow]) -> Staged:
    rows = sorted(rows, key=lambda r: r.pk)
    return Staged("delete", tuple(r.pk for r in rows), tuple(r.snapshot() for r in rows), ())


def _value(snapshot: Mapping[str, Any], grant_id: int | None) -> Grant:
    ops = frozenset(op for op in OPERATIONS if snapshot.get(op.value))
    return Grant(issuer=snapshot["issuer"], claim=snapshot["claim"], value=snapshot["value"],
                 target=snapshot["target"], operations=ops, grant_id=grant_id)


def current_version() -> int:
    return int(GrantVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0)


@dataclass(frozen=True)
class World:
    """What the preview reads, read once."""

    version: int
    grants: tuple[Grant, ...]
    after: tuple[Grant, ...]
    sockets: tuple[SocketEntry, ...]
    socket_claims: Mapping[str, Mapping[str, Any]]  # read only for claim-path changes
    known: Known  # last-login claims
    full_claims: bool  # the change involves claim paths beyond groups and roles
    known_users: int  # seen lately, whether or not they hold a value the change involves
    read_ms: float


def gather(staged: Staged, *, since: timedelta = timedelta(days=KnownClaims.KEEP_DAYS)) -> World:
    started = time.perf_counter()
    version = current_version()
    grants = []
    for row in GrantRow.objects.all():
        try:
            grants.append(to_value(row))
        except ValueError:  # invalid rows are ignored at runtime too (store.load_snapshot)
            continue
    after = apply(staged, grants)
    involved = relevant_claims(grants, after)
    full = bool(involved.keys() - {"groups", "roles"})
    sockets, claims = async_to_sync(read_roster)(after, full=full)
    seen_since = timezone.now() - since
    known = known_holders(seen_since, involved=involved)
    known_users = KnownClaims.objects.filter(seen_at__gte=seen_since).count()
    return World(version, tuple(grants), after, sockets, claims, known, full, known_users,
                 (time.perf_counter() - started) * 1000)


async def read_roster(after: Sequence[Grant], *, full: bool,
                      ) -> tuple[tuple[SocketEntry, ...], dict[str, dict[str, Any]]]:
    """Every live socket, and the token claims of those whose answer needs them: all when the
    change involves claim paths beyond groups and roles (``full``), else those on a channel
    a claim-path grant covers (the roster keeps claims apart, ``gateway.ops.roster``)."""
    sockets = tuple(await roster().entries())
    if full:
        wanted = [s.socket for s in sockets]
    else:
        reading = channels_reading_claims(
            after, {cast("ChannelName", c) for s in sockets for c in s.channels})
        wanted = [s.socket for s in sockets if not reading.isdisjoint(s.channels)]
    return sockets, (await roster().claims(wanted) if wanted else {})


def socket_holder(entry: SocketEntry, claims: Mapping[str, Any] | None = None) -> Holder:
    return Holder(entry.issuer, entry.subject, frozenset(entry.groups), frozenset(entry.roles),
                  entry.claims if claims is None else claims)


def apply(staged: Staged, grants: Sequence[Grant]) -> tuple[Grant, ...]:
    """The grants after the change."""
    kept = tuple(g for g in grants if g.grant_id not in staged.ids)
    new_id = staged.ids[0] if staged.action == "update" else None
    return kept + tuple(_value(s, new_id) for s in staged.after)


@dataclass(frozen=True)
class Names:
    shown: tuple[str, ...]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.shown)


@dataclass(frozen=True)
class EffectRow:
    target: str
    pattern: bool
    gains: tuple[tuple[str, Names], ...]  # (operation), operations with someone only
    losses: tuple[tuple[str, Names], ...]


@dataclass(frozen=True)
class ProcessRow:
    process: str
    sockets: int
    holders: Names
    channels: tuple[str, ...]


@dataclass
class Review:
    staged: Staged
    version: int
    effects: tuple[EffectRow, ...]
    processes: tuple[ProcessRow, ...]
    revoked_sockets: int
    revoked_holders: Names
    offline: Names  # affected people seen lately who hold no socket now
    known_users: int
    sockets_checked: int
    sockets_without_claims: int
    gaining: int
    losing: int
    took_ms: float

    @property
    def counts(self) -> dict[str, Any]:
        """What the change log keeps of the preview the administrator confirmed."""
        return {"version": self.version, "gaining": self.gaining, "losing": self.losing,
                "sockets_revoked": self.revoked_sockets,
                "by_process": {p.process: p.sockets for p in self.processes},
                "not_connected": self.offline.total, "known_users": self.known_users,
                "sockets_checked": self.sockets_checked}


def _names(people: Iterable[Who]) -> Names:
    """The names of the first ``SHOWN`` people by subject, and how many people in all."""
    people = set(people)
    first = heapq.nsmallest(SHOWN, people, key=BY_SUBJECT)
    names = usernames(first)
    return Names(tuple(names.get(w) or f"{w[1]} ({w[0]})" for w in first), len(people))


def usernames(people: Sequence[Who]) -> dict[Who, str]:
    """The username of each person: at their last login, else of their linked identity
    (both tables are indexed by issuer, then subject)."""
    by_issuer: dict[str, set[str]] = {}
    for issuer, subject in people:
        by_issuer.setdefault(issuer, set()).add(subject)
    found: dict[Who, str] = {}
    if not people:
        return found
    for model, username in ((KnownClaims, "username"), (OidcIdentity, "user__username")):
        wanted = Q()
        for issuer, subjects in by_issuer.items():
            wanted |= Q(issuer=issuer, subject__in=subjects - {s for i, s in found if i == issuer})
        for issuer, subject, name in model.objects.filter(wanted).values_list(
                "issuer", "subject", username):
            found.setdefault((issuer, subject), name)
        if len(found) == len(set(people)):
            break
    return found


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a preview builds its hundred thousand short-lived
    objects (the collector would rescan them again and again; gateway.ops.gcpolicy)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def review(staged: Staged, world: World | None = None) -> Review:
    """The preview of ``staged`` against the world as it is now."""
    with collector_paused():
        # everything but the small Review dies inside: re-enabled, the collector must not
        # find hundreds of thousands of live objects to scan
        return _compute(staged, world)


def _compute(staged: Staged, world: World | None) -> Review:
    world = world or gather(staged)
    started = time.perf_counter()
    live = tuple(LiveSocket(s.socket, s.process, socket_holder(s, world.socket_claims.get(s.socket)),
                            cast("tuple[ChannelName, ...]", s.channels)) for s in world.sockets)
    holders = [*world.known.people, *(s.holder for s in live)]
    result = preview_change(world.grants, world.after, holders=holders, sockets=live,
                            crowds=world.known.crowds)
    return _review(staged, world, result, (time.perf_counter() - started) * 1000 + world.read_ms)


def _review(staged: Staged, world: World, result: Preview, took_ms: float) -> Review:
    effects = tuple(EffectRow(
        e.target, e.target.endswith(".*"),
        tuple((op.value, _names(e.gains[op])) for op in OPERATIONS if e.gains[op]),
        tuple((op.value, _names(e.losses[op])) for op in OPERATIONS if e.losses[op]))
        for e in result.effects if e.changed)
    connected = {(s.issuer, s.subject) for s in world.sockets}
    affected = (result.gaining | result.losing) & world.known.everyone()
    return Review(
        staged=staged, version=world.version, effects=effects, processes=_processes(result),
        revoked_sockets=len(result.revoked),
        revoked_holders=_names({r.socket.holder.who for r in result.revoked}),
        offline=_names(affected - connected), known_users=world.known_users,
        sockets_checked=len(world.sockets),
        sockets_without_claims=sum(1 for s in world.sockets if not s.claims_kept),
        gaining=len(result.gaining), losing=len(result.losing), took_ms=took_ms)


def _processes(result: Preview) -> tuple[ProcessRow, ...]:
    """Per process: its sockets to revoke, their holders and the channels they drop."""
    mine: dict[str, list[RevokedSocket]] = {}
    for r in result.revoked:
        mine.setdefault(r.socket.process, []).append(r)
    return tuple(ProcessRow(process, count, _names({r.socket.holder.who for r in mine[process]}),
                            tuple(sorted({c for r in mine[process] for c in r.channels})))
                 for process, count in result.by_process.items())


def recorded_outcomes(versions: Iterable[int]) -> dict[int, list[tuple[str, int, int, int]]]:
    """What each process reported for these grant versions (``gateway.grants.outcome``)."""
    found: dict[int, list[tuple[str, int, int, int]]] = {}
    for row in GrantOutcome.objects.filter(version__in=list(versions)):
        found.setdefault(row.version, []).append(
            (row.process, row.rechecked, row.revoked_sockets, row.revoked_channels))
    return found
