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
from functools import cached_property
from typing import Any, NamedTuple

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
from oidc.profiles import claim_path
from oidc.types import ChannelName

__all__ = [
    "Effect",
    "Holder",
    "LiveSocket",
    "Preview",
    "RevokedSocket",
    "Who",
    "channels_reading_claims",
    "crowd_holder",
    "preview_change",
    "probe_of",
    "probes_for",
    "relevant_claims",
]

PROBE_SEGMENT = "~"
OPERATIONS = tuple(Operation)

Who = tuple[str, str]
"""(issuer, subject): one person or client, whatever principal they hold."""


class Holder(NamedTuple):
    """Claims a person holds (their last login, or one live socket's principal): a Claimant.
    A named tuple: previews build tens of thousands, and a tuple is built several times
    faster than a frozen dataclass."""

    issuer: str
    subject: str
    groups: frozenset[str]
    roles: frozenset[str]
    claims: Mapping[str, Any]

    @property
    def who(self) -> Who:
        return self.issuer, self.subject


class LiveSocket(NamedTuple):
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
    gains: Mapping[Operation, frozenset[Who]]
    losses: Mapping[Operation, frozenset[Who]]

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

    @cached_property
    def gaining(self) -> frozenset[Who]:
        return frozenset().union(*(ws for e in self.effects for ws in e.gains.values()))

    @cached_property
    def losing(self) -> frozenset[Who]:
        return frozenset().union(*(ws for e in self.effects for ws in e.losses.values()))

    @property
    def revoked_holders(self) -> tuple[Who, ...]:
        return tuple(sorted({r.socket.holder.who for r in self.revoked}))


class _ByTarget:
    """``grants_for_channel`` by dictionary: a channel is covered only by itself and by the
    ``prefix.*`` pattern of each of its proper segment prefixes (``oidc.channels``)."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self.by_target: dict[str, list[Grant]] = {}
        for grant in grants:
            self.by_target.setdefault(grant.target, []).append(grant)

    def covering(self, channel: ChannelName) -> tuple[Grant, ...]:
        segments = channel.split(".")
        targets = [".".join(segments[:n]) + ".*" for n in range(1, len(segments))] + [channel]
        found = tuple(g for t in targets for g in self.by_target.get(t, ()))
        return grants_for_channel(found, channel)  # the matcher's own test, on the few left


def channels_reading_claims(grants: Iterable[Grant],
                            channels: Iterable[ChannelName]) -> set[ChannelName]:
    """Those of ``channels`` a grant on a claim path beyond groups and roles covers: the
    matcher's answer there for a socket needs its token claims."""
    index = _ByTarget(g for g in grants if g.claim not in ("groups", "roles"))
    return {channel for channel in set(channels) if index.covering(channel)}


def relevant_claims(before: Iterable[Grant], after: Iterable[Grant]) -> dict[str, frozenset[str]]:
    """Claim path -> values, of the grants that decide what a change alters: a preview needs
    nothing else of anyone's claims, and someone holding none of these values gains and
    loses nothing."""
    old, new = set(before), set(after)
    probes = probes_for({g.target for g in old ^ new}, (g.target for g in old | new))
    found: dict[str, set[str]] = {}
    for grant in old | new:
        if any(pattern_matches(grant.target, p) for p in probes.values()):
            found.setdefault(grant.claim, set()).add(grant.value)
    return {claim: frozenset(values) for claim, values in found.items()}


def probe_of(target: str) -> ChannelName:
    """The channel the matcher is asked about for a grant target (module docstring)."""
    return ChannelName(target[:-1] + PROBE_SEGMENT) if is_pattern(target) else ChannelName(target)


def probes_for(changed: Iterable[str], targets: Iterable[str]) -> dict[str, ChannelName]:
    """Target -> probe, for every target in ``targets`` a ``changed`` target covers (and the
    changed targets themselves), sorted by target."""
    changed = set(changed)
    found = {t: probe_of(t) for t in set(targets) | changed
             if any(pattern_matches(c, probe_of(t)) for c in changed)}
    return dict(sorted(found.items()))


def crowd_holder(issuer: str, held: Mapping[str, frozenset[str]]) -> Holder:
    """A representative of everyone at ``issuer`` who holds, at each claim path of ``held``
    (those ``relevant_claims`` names), exactly the named values ``held`` gives there.

    Other claim paths get lists of the values nested along the path. Real claims never hold
    values both at a path and below it (``lookup`` only descends into objects); asked for
    that, or for anything ``claim_values`` would read back differently, this raises."""
    claims: dict[str, Any] = {}
    for path, values in sorted(held.items()):
        if path in ("groups", "roles") or not values:
            continue
        *parents, last = claim_path(path)
        node = claims
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"claim path {path!r} lies below values held at {part!r}")
        node[last] = sorted(values)
    holder = Holder(issuer, "", held.get("groups", frozenset()), held.get("roles", frozenset()),
                    claims)
    if any(claim_values(holder, path) != values for path, values in held.items()):
        raise ValueError(f"no single holder holds exactly {dict(held)!r}")
    return holder


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
        return (holder.issuer, *[claim_values(holder, claim) & values
                                 for claim, values in self.named])


def preview_change(before: Sequence[Grant], after: Sequence[Grant], *,
                   holders: Sequence[Holder], sockets: Sequence[LiveSocket],
                   crowds: Sequence[tuple[Holder, Sequence[Who]]] = ()) -> Preview:
    """What replacing the grants ``before`` with ``after`` does to ``holders`` (everyone whose
    claims are known: last logins and live sockets' principals) and to ``sockets``.

    ``crowds`` are people the caller has already grouped: each representative holds, of
    every claim path ``relevant_claims`` names, exactly the named values each of its people
    holds, so the matcher's answer for it is theirs (tens of thousands of people cost one
    question per crowd, not one object each)."""
    old, new = set(before), set(after)
    changed = {g.target for g in old ^ new}
    probes = probes_for(changed, (g.target for g in old | new))
    relevant = {t: (grants_for_channel(before, p), grants_for_channel(after, p))
                for t, p in probes.items()}
    profiles = _Profiles(g for pair in relevant.values() for gs in pair for g in gs)

    members: dict[Hashable, list[Holder]] = {}  # holders by profile: one question per profile
    for holder in holders:
        key = profiles.key(holder)
        found = members.get(key)
        if found is None:
            members[key] = [holder]
        else:
            found.append(holder)

    gains: dict[str, dict[Operation, set[Who]]] = {t: {op: set() for op in OPERATIONS} for t in probes}
    losses: dict[str, dict[Operation, set[Who]]] = {t: {op: set() for op in OPERATIONS} for t in probes}
    asked = [(group[0], [(h.issuer, h.subject) for h in group]) for group in members.values()]
    for representative, people in [*asked, *crowds]:
        for target, probe in probes.items():
            was = allowed_operations(representative, relevant[target][0], probe)
            now = allowed_operations(representative, relevant[target][1], probe)
            if was == now:
                continue
            for op in now - was:
                gains[target][op].update(people)
            for op in was - now:
                losses[target][op].update(people)
    effects = tuple(Effect(t, p, {op: frozenset(gains[t][op]) for op in OPERATIONS},
                           {op: frozenset(losses[t][op]) for op in OPERATIONS})
                    for t, p in probes.items())
    revoked = _revoked(after, sockets)
    by_process: dict[str, int] = {}
    for r in revoked:
        by_process[r.socket.process] = by_process.get(r.socket.process, 0) + 1
    return Preview(effects, revoked, len(sockets), len(holders) + sum(len(p) for _, p in crowds),
                   dict(sorted(by_process.items())))


def _revoked(after: Sequence[Grant], sockets: Sequence[LiveSocket]) -> tuple[RevokedSocket, ...]:
    """The sockets that would drop subscriptions, as each socket decides at runtime
    (``lost_subscriptions`` with the new grants), asked once per channel and profile there
    (what the grants covering that channel can see of a holder)."""
    index = _ByTarget(after)
    by_channel: dict[ChannelName, tuple[Grant, ...]] = {}
    for socket in sockets:
        for channel in socket.channels:
            if channel not in by_channel:
                by_channel[channel] = index.covering(channel)
    profiles = {channel: _Profiles(grants) for channel, grants in by_channel.items()}
    lost: dict[tuple[ChannelName, Hashable], bool] = {}  # one question per channel and profile
    revoked = []
    for socket in sockets:
        dropped = []
        for channel in socket.channels:
            key = (channel, profiles[channel].key(socket.holder))
            answer = lost.get(key)
            if answer is None:
                answer = lost[key] = bool(lost_subscriptions(
                    socket.holder, by_channel[channel], (channel,)))
            if answer:
                dropped.append(channel)
        if dropped:
            revoked.append(RevokedSocket(socket, tuple(dropped)))
    return tuple(revoked)
