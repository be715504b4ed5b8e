"""Grants: which claim value from which issuer may do what on which channels.

A grant is a plain frozen value (the admin edits rows in ``gateway``; the
gateway turns them into these). Matching is pure: principal, grants, channel in;
a set of operations out. Nothing is allowed unless a grant says so.

The claim a grant names is one of:

* ``groups`` or ``roles``: the principal's normalised groups or roles (the issuer
  profile already mapped e.g. Keycloak's ``realm_access.roles`` into ``roles``);
* any other dotted path into the token's claims, e.g. ``realm_access.roles`` or
  ``resource_access.gateway.roles``; the value there must be a string equal to
  the grant's value, or a list of strings containing it. Numbers, booleans and
  objects never match, so ``"1"`` cannot match ``true``.

Issuers must match exactly (OIDC Core 1.0 §2: ``iss`` is compared as a string).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from oidc.channels import normalise_pattern, pattern_matches
from oidc.profiles import lookup
from oidc.types import ChannelName

__all__ = [
    "Grant",
    "GrantSnapshot",
    "Operation",
    "allowed_operations",
    "claim_values",
    "grants_for_channel",
    "grants_of",
    "lost_subscriptions",
    "operations_by_target",
    "string_values",
]


class Operation(StrEnum):
    SUBSCRIBE = "subscribe"
    PUBLISH = "publish"
    PRESENCE = "presence"


NO_OPERATIONS: frozenset[Operation] = frozenset()


class Claimant(Protocol):
    """What matching needs from a principal (``oidc.types.Principal`` fits)."""

    @property
    def issuer(self) -> str: ...
    @property
    def groups(self) -> frozenset[str]: ...
    @property
    def roles(self) -> frozenset[str]: ...
    @property
    def claims(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Grant:
    """``claim`` = ``value`` at ``issuer`` may do ``operations`` on ``target``.

    ``target`` is a channel name or a ``prefix.*`` pattern; it is normalised here,
    so two grants that differ only in case are equal.
    """

    issuer: str
    claim: str
    value: str
    target: str
    operations: frozenset[Operation]
    grant_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", normalise_pattern(self.target))
        object.__setattr__(self, "operations", frozenset(Operation(o) for o in self.operations))
        if not self.claim or not all(self.claim.split(".")):
            raise ValueError(f"claim path {self.claim!r} has an empty segment")

    def applies_to(self, principal: Claimant) -> bool:
        return principal.issuer == self.issuer and self.value in claim_values(principal, self.claim)


@dataclass(frozen=True)
class GrantSnapshot:
    """Every grant at one grant version."""

    version: int
    grants: tuple[Grant, ...]


def claim_values(principal: Claimant, claim: str) -> frozenset[str]:
    """The string values a principal holds at a claim path (empty if none)."""
    if claim == "groups":
        return principal.groups
    if claim == "roles":
        return principal.roles
    return string_values(lookup(principal.claims, claim))


def string_values(node: Any) -> frozenset[str]:
    """What a grant can match in a claim's value: a string, or the strings of a list."""
    if isinstance(node, str):
        return frozenset((node,))
    if isinstance(node, list):
        return frozenset(item for item in node if isinstance(item, str))
    return frozenset()


def allowed_operations(principal: Claimant, grants: Iterable[Grant],
                       channel: ChannelName) -> frozenset[Operation]:
    """The union of the operations of every grant that covers ``channel`` for ``principal``."""
    allowed: set[Operation] = set()
    for grant in grants:
        if pattern_matches(grant.target, channel) and grant.applies_to(principal):
            allowed |= grant.operations
    return frozenset(allowed)


def lost_subscriptions(principal: Claimant, grants: Iterable[Grant],
                       channels: Iterable[ChannelName]) -> tuple[ChannelName, ...]:
    """The subscribed ``channels`` the grants no longer let ``principal`` subscribe to: what a
    socket drops with reason ``revoked`` when grants change (and what the admin's preview
    of a grant change counts)."""
    grants = tuple(grants)
    return tuple(c for c in channels if Operation.SUBSCRIBE not in allowed_operations(principal, grants, c))


def grants_for_channel(grants: Iterable[Grant], channel: ChannelName) -> tuple[Grant, ...]:
    """Grants whose target covers ``channel``: who can do what there (admin view)."""
    return tuple(g for g in grants if pattern_matches(g.target, channel))


def grants_of(principal: Claimant, grants: Iterable[Grant]) -> tuple[Grant, ...]:
    """The grants that apply to ``principal`` (issuer and claim value match), in order."""
    return tuple(g for g in grants if g.applies_to(principal))


def operations_by_target(principal: Claimant,
                         grants: Iterable[Grant]) -> dict[str, frozenset[Operation]]:
    """Every target (channel or ``prefix.*``) the principal's grants name, with the union
    of their operations; targets whose grants tick no operation are left out."""
    targets: dict[str, set[Operation]] = {}
    for grant in grants_of(principal, grants):
        if grant.operations:
            targets.setdefault(grant.target, set()).update(grant.operations)
    return {target: frozenset(ops) for target, ops in sorted(targets.items())}
