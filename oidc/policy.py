"""Route policies: which credentials, scopes and claims a websocket route needs.

Pure evaluation with a secure default: denied unless every requirement holds.
Policies come from a TOML document (see :func:`parse_policies`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from oidc.profiles import lookup
from oidc.types import CredentialKind, Principal

__all__ = [
    "MISSING",
    "ClaimRequirement",
    "Decision",
    "RoutePolicy",
    "evaluate",
    "find_policy",
    "parse_policies",
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
ROUTE_KEYS = frozenset({"name", "path", "consumer", "scopes", "claims", "credentials"})
CLAIM_KEYS = frozenset({"claim", "equals", "contains", "one_of"})
PRINCIPAL_SETS = frozenset({"groups", "roles", "scopes"})


@dataclass(frozen=True)
class ClaimRequirement:
    """One claim test. ``claim`` is a dotted path into the claims, or ``groups`` /
    ``roles`` / ``scopes`` for the principal's extracted sets."""

    claim: str
    equals: Any = MISSING
    contains: str | None = None
    one_of: frozenset[Any] | None = None

    def matches(self, principal: Principal) -> bool:
        if self.claim in PRINCIPAL_SETS:
            value: Any = getattr(principal, self.claim)
        else:
            value = lookup(principal.claims, self.claim)
            if value is None:
                return False
        if self.equals is not MISSING and not _equal(value, self.equals):
            return False
        if self.contains is not None and not _contains(value, self.contains):
            return False
        return self.one_of is None or (_hashable(value) and value in self.one_of)


def _equal(value: Any, expected: Any) -> bool:
    # bool is an int in Python: True must not equal 1.
    return type(value) is type(expected) and bool(value == expected)


def _contains(value: Any, item: str) -> bool:
    if isinstance(value, str):
        return value == item
    if isinstance(value, list | tuple | set | frozenset):
        return item in value
    return False


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


@dataclass(frozen=True)
class RoutePolicy:
    name: str
    path: str
    consumer: str
    scopes: frozenset[str]
    claims: tuple[ClaimRequirement, ...]
    credentials: frozenset[CredentialKind]


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`evaluate`; ``reason`` is a machine-readable code."""

    allowed: bool
    reason: str
    detail: str = ""


def evaluate(principal: Principal, policy: RoutePolicy, *, now: float) -> Decision:
    """Allow only if credential kind, expiry, every scope and every claim match."""
    if principal.credential not in policy.credentials:
        return Decision(False, "credential_not_allowed", principal.credential.value)
    if principal.expires_at <= now:
        return Decision(False, "expired")
    missing = policy.scopes - principal.scopes
    if missing:
        return Decision(False, "missing_scope", " ".join(sorted(missing)))
    for requirement in policy.claims:
        if not requirement.matches(principal):
            return Decision(False, "claim_mismatch", requirement.claim)
    return Decision(True, "allowed")


def find_policy(policies: Iterable[RoutePolicy], path: str) -> RoutePolicy | None:
    """The policy whose path equals ``path`` exactly; None means no route (deny)."""
    for policy in policies:
        if policy.path == path:
            return policy
    return None


def _strings(route: str, key: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"route {route!r}: {key} must be a list of non-empty strings.")
    return frozenset(value)


def _requirement(route: str, entry: Any) -> ClaimRequirement:
    if not isinstance(entry, Mapping):
        raise ValueError(f"route {route!r}: each claims entry must be a table.")
    unknown = set(entry) - CLAIM_KEYS
    if unknown:
        raise ValueError(f"route {route!r}: unknown claim keys {sorted(unknown)}; "
                         f"allowed: {sorted(CLAIM_KEYS)}.")
    claim = entry.get("claim")
    if not isinstance(claim, str) or not claim:
        raise ValueError(f"route {route!r}: each claims entry needs claim = \"name\".")
    if not CLAIM_KEYS.difference({"claim"}).intersection(entry):
        raise ValueError(f"route {route!r}: claim {claim!r} needs equals, contains or one_of.")
    contains = entry.get("contains")
    if contains is not None and not isinstance(contains, str):
        raise ValueError(f"route {route!r}: claim {claim!r} contains must be a string.")
    one_of = entry.get("one_of")
    if one_of is not None:
        if not isinstance(one_of, list) or not one_of or not all(_hashable(v) for v in one_of):
            raise ValueError(f"route {route!r}: claim {claim!r} one_of must be a non-empty "
                             "list of strings, numbers or booleans.")
        one_of = frozenset(one_of)
    return ClaimRequirement(claim, entry.get("equals", MISSING), contains, one_of)


def _credentials(route: str, value: Any) -> frozenset[CredentialKind]:
    names = _strings(route, "credentials", value)
    if not names:
        raise ValueError(f"route {route!r}: credentials must name at least one of "
                         f"{[k.value for k in CredentialKind]}.")
    try:
        return frozenset(CredentialKind(n) for n in names)
    except ValueError:
        raise ValueError(f"route {route!r}: unknown credential in {sorted(names)}; use "
                         f"{[k.value for k in CredentialKind]}.") from None


def _policy(index: int, entry: Any) -> RoutePolicy:
    if not isinstance(entry, Mapping):
        raise ValueError(f"[[route]] #{index + 1} must be a table.")
    name = entry.get("name")
    route = name if isinstance(name, str) and name else f"#{index + 1}"
    unknown = set(entry) - ROUTE_KEYS
    if unknown:
        raise ValueError(f"route {route!r}: unknown keys {sorted(unknown)}; "
                         f"allowed: {sorted(ROUTE_KEYS)}.")
    for key in ("name", "path", "consumer", "credentials"):
        if key not in entry:
            raise ValueError(f"route {route!r}: {key} is required.")
    path, consumer = entry["path"], entry["consumer"]
    if not isinstance(name, str) or not name:
        raise ValueError(f"route {route!r}: name must be a non-empty string.")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"route {route!r}: path must be a string starting with '/'.")
    if not isinstance(consumer, str) or not consumer:
        raise ValueError(f"route {route!r}: consumer must be a dotted import path.")
    claims = entry.get("claims", [])
    if not isinstance(claims, list):
        raise ValueError(f"route {route!r}: claims must be a list of tables.")
    return RoutePolicy(
        name=name,
        path=path,
        consumer=consumer,
        scopes=_strings(route, "scopes", entry.get("scopes", [])),
        claims=tuple(_requirement(route, c) for c in claims),
        credentials=_credentials(route, entry["credentials"]),
    )


def parse_policies(document: Mapping[str, Any]) -> tuple[RoutePolicy, ...]:
    """``{"route": [...]}`` (a loaded TOML document) → policies; ValueError names the fix."""
    unknown = set(document) - {"route"}
    if unknown:
        raise ValueError(f"routes: unknown top-level keys {sorted(unknown)}; use [[route]].")
    routes = document.get("route", [])
    if not isinstance(routes, list):
        raise ValueError("routes: 'route' must be an array of tables ([[route]]).")
    policies = tuple(_policy(i, entry) for i, entry in enumerate(routes))
    seen: dict[str, str] = {}
    for policy in policies:
        if policy.path in seen:
            raise ValueError(f"route {policy.name!r}: path {policy.path!r} is already used by "
                             f"route {seen[policy.path]!r}; give each route its own path.")
        seen[policy.path] = policy.name
    return policies
