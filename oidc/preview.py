"""What a grant change would do, before it is saved: who gains and who loses which operation
on which channels, and which live subscriptions the sockets would drop as ``revoked``.

Pure, like the rest of ``oidc``: the gateway hands in the grants before and after the change,
the claims of known users and of the holders of live sockets, and gets plain values back.
Every answer comes from the runtime matcher itself (:func:`oidc.grants.allowed_operations`
and :func:`oidc.grants.lost_subscriptions`); this module only chooses which channels to ask
about and asks once per distinct claim profile instead of once per person.

Which channels. A change can only alter what is allowed on channels its grants' targets
cover. Every channel such a target covers is answered exactly like one *probe*:

* a concrete target is its own probe;
* a pattern ``p.*`` is probed with ``p.~``, a name no concrete grant can hold (``~`` is
  outside the channel charset, :mod:`oidc.channels`) and no deeper pattern covers: it stands
  for every channel under ``p.`` that no deeper grant target names.

The probes are those of every grant target, before or after, that a changed target covers.
A channel ``c`` under a changed target is then answered like the probe of the deepest target
covering it: the grants covering both are the same (patterns match on whole segments), so
``allowed_operations`` gives the same set for both. ``tests/unit/test_grant_preview.py``
checks that claim on generated grant, claim and change sets against every concrete channel.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from oidc.channels import is_pattern, pattern_matches
from oidc.grants import (
    Claimant,
    Grant,
    Operation,
    allowed_operations,
    claim_values,
    grants_for_channel,
    lost_subscriptions,
)
from oidc.types import ChannelName

__all__ = [
    "Effect",
    "Holder",
    "LiveSocket",
    "Preview",
    "Who",
    "preview_change",
    "probe_of",
    "probes_for",
]

PROBE_SEGMENT = "~"
OPERATIONS = tuple(Operation)

Who = tuple[str, str]
"""(issuer, subject): one person or client, whatever principal they hold."""


@dataclass(frozen=True)
class Holder:
    """Claims a person holds (their last login, or one live socket's principal): a Claimant."""

    issuer: str
    subject: str
    groups: frozenset[str]
    roles: frozenset[str]
    claims: Mapping[str, Any]

    @property
    def who(self) -> Who:
        return self.issuer, self.subject


@dataclass(frozen=True)
class LiveSocket:
    socket: str
    process: str
    holder: Holder
    channels: tuple[ChannelName, ...]


@dataclass(frozen=True)
class Effect:
    """On ``target`` (a channel, or the channels of a pattern no deeper grant names):
    who gains and who loses each operation."""

    target: str
    probe: ChannelName
    gains: Mapping[Operation, tuple[Who, ...]]
    losses: Mapping[Operation, tuple[Who, ...]]

    @property
    def changed(self) -> bool:
        return any(self.gains.values()) or any(self.losses.values())


@dataclass(frozen=True)
class RevokedSocket:
    socket: LiveSocket
    channels: tuple[ChannelName, ...]


@dataclass(frozen=True)
class Preview:
    effects: tuple[Effect, ...]
    revoked: tuple[RevokedSocket, ...]
    sockets_checked: int
    holders_checked: int
    by_process: Mapping[str, int] = field(default_factory=dict)

    @property
    def gaining(self) -> frozenset[Who]:
        return frozenset(w for e in self.effects for ws in e.gains.values() for w in ws)

    @property
    def losing(self) -> frozenset[Who]:
        return frozenset(w for e in self.effects for ws in e.losses.values() for w in ws)

    @property
    def revoked_holders(self) -> tuple[Who, ...]:
        return tuple(sorted({r.socket.holder.who for r in self.revoked}))


def probe_of(target: str) -> ChannelName:
    """The channel the matcher is asked about for a grant target (module docstring)."""
    return ChannelName(target[:-1] + PROBE_SEGMENT) if is_pattern(target) else ChannelName(target)


def probes_for(changed: Iterable[str], targets: Iterable[str]) -> dict[str, ChannelName]:
    """Target -> probe, for every target in ``targets`` a ``changed`` target covers (and the
    changed targets themselves), deepest first within each prefix (sorted by name)."""
    changed = set(changed)
    found = {t: probe_of(t) for t in set(targets) | changed
             if any(pattern_matches(c, probe_of(t)) for c in changed)}
    return dict(sorted(found.items()))


class _Profiles:
    """Groups holders by what the given grants can see of them: issuer, and the values each
    named claim path holds among the values grants name there. Holders with the same profile
    get the same answer from ``allowed_operations`` for those grants."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        named: dict[str, set[str]] = {}
        for grant in grants:
            named.setdefault(grant.claim, set()).add(grant.value)
        self.named = sorted((claim, frozenset(values)) for claim, values in named.items())

    def key(self, holder: Claimant) -> Hashable:
        return holder.issuer, tuple(claim_values(holder, claim) & values
                                    for claim, values in self.named)


def _who_changes(holders: Sequence[Holder], profiles: _Profiles, effects_for: Any) -> Any:
    """Ask ``effects_for(representative)`` once per profile; map its answer to every holder."""
    answers: dict[Hashable, Any] = {}
    per_holder = []
    for holder in holders:
        key = profiles.key(holder)
        if key not in answers:
            answers[key] = effects_for(holder)
        per_holder.append((holder, answers[key]))
    return per_holder


def preview_change(before: Sequence[Grant], after: Sequence[Grant], *,
                   holders: Sequence[Holder], sockets: Sequence[LiveSocket]) -> Preview:
    """What replacing the grants ``before`` with ``after`` does to ``holders`` (everyone whose
    claims are known: last logins and live sockets' principals) and to ``sockets``."""
    old, new = set(before), set(after)
    changed = {g.target for g in old ^ new}
    probes = probes_for(changed, (g.target for g in old | new))
    relevant = {t: (grants_for_channel(before, p), grants_for_channel(after, p))
                for t, p in probes.items()}
    profiles = _Profiles(g for pair in relevant.values() for gs in pair for g in gs)

    def effects_for(holder: Holder) -> dict[str, tuple[frozenset[Operation], frozenset[Operation]]]:
        out = {}
        for target, probe in probes.items():
            was = allowed_operations(holder, relevant[target][0], probe)
            now = allowed_operations(holder, relevant[target][1], probe)
            if was != now:
                out[target] = (now - was, was - now)
        return out

    gains: dict[str, dict[Operation, set[Who]]] = {t: {} for t in probes}
    losses: dict[str, dict[Operation, set[Who]]] = {t: {} for t in probes}
    for holder, answer in _who_changes(holders, profiles, effects_for):
        for target, (gained, lost) in answer.items():
            for op in gained:
                gains[target].setdefault(op, set()).add(holder.who)
            for op in lost:
                losses[target].setdefault(op, set()).add(holder.who)
    effects = tuple(Effect(t, p, {op: tuple(sorted(gains[t].get(op, ()))) for op in OPERATIONS},
                           {op: tuple(sorted(losses[t].get(op, ()))) for op in OPERATIONS})
                    for t, p in probes.items())
    revoked = _revoked(after, sockets)
    by_process: dict[str, int] = {}
    for r in revoked:
        by_process[r.socket.process] = by_process.get(r.socket.process, 0) + 1
    return Preview(effects, revoked, len(sockets), len(holders), dict(sorted(by_process.items())))


def _revoked(after: Sequence[Grant], sockets: Sequence[LiveSocket]) -> tuple[RevokedSocket, ...]:
    """The sockets that would drop subscriptions, as each socket decides at runtime
    (``lost_subscriptions`` with the new grants), asked once per profile and channel set."""
    by_channel: dict[ChannelName, tuple[Grant, ...]] = {}
    for socket in sockets:
        for channel in socket.channels:
            if channel not in by_channel:
                by_channel[channel] = grants_for_channel(after, channel)
    profiles = _Profiles(g for gs in by_channel.values() for g in gs)
    answers: dict[tuple[Hashable, tuple[ChannelName, ...]], tuple[ChannelName, ...]] = {}
    revoked = []
    for socket in sockets:
        if not socket.channels:
            continue
        key = (profiles.key(socket.holder), socket.channels)
        if key not in answers:
            answers[key] = tuple(c for c in socket.channels if lost_subscriptions(
                socket.holder, by_channel[c], (c,)))
        if answers[key]:
            revoked.append(RevokedSocket(socket, answers[key]))
    return tuple(revoked)
