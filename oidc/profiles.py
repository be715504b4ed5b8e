"""Issuer profiles: where each provider puts groups, roles and scopes.

Access token ``typ`` values are compared per RFC 8725 §3.11 / RFC 9068 §2.1:
case-insensitively, with an optional ``application/`` prefix removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "ENTRA",
    "GENERIC",
    "KEYCLOAK",
    "PROFILES",
    "IssuerProfile",
    "extract_groups",
    "extract_roles",
    "extract_scopes",
    "lookup",
    "normalize_typ",
]


def normalize_typ(value: str) -> str:
    """``application/AT+JWT`` → ``at+jwt`` (RFC 7515 §4.1.9)."""
    lowered = value.strip().lower()
    return lowered.removeprefix("application/")


@dataclass(frozen=True)
class IssuerProfile:
    """Claim layout of one kind of provider."""

    name: str
    groups_claims: tuple[str, ...]
    roles_claims: tuple[str, ...]
    scope_claims: tuple[str, ...]
    access_token_types: frozenset[str]

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "access_token_types", frozenset(normalize_typ(t) for t in self.access_token_types)
        )


GENERIC = IssuerProfile(
    name="generic",
    groups_claims=("groups",),
    roles_claims=("roles",),
    scope_claims=("scope",),
    access_token_types=frozenset({"at+jwt"}),
)

KEYCLOAK = IssuerProfile(
    name="keycloak",
    groups_claims=("groups",),
    roles_claims=("realm_access.roles", "resource_access.{client_id}.roles"),
    scope_claims=("scope",),
    access_token_types=frozenset({"at+jwt", "jwt"}),  # Keycloak signs with typ JWT
)

ENTRA = IssuerProfile(
    name="entra",
    groups_claims=("groups",),
    roles_claims=("roles",),
    scope_claims=("scp",),
    access_token_types=frozenset({"jwt"}),
)

PROFILES: Mapping[str, IssuerProfile] = MappingProxyType(
    {p.name: p for p in (GENERIC, KEYCLOAK, ENTRA)}
)


def lookup(claims: Mapping[str, Any], path: str) -> Any:
    """Follow a dotted path through nested objects; None when any step is missing."""
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _paths(templates: Iterable[str], client_id: str | None) -> list[str]:
    out = []
    for template in templates:
        if "{client_id}" in template:
            if not client_id:
                continue
            template = template.replace("{client_id}", client_id)
        out.append(template)
    return out


def _strings(value: Any, *, split: bool) -> set[str]:
    if isinstance(value, str):
        return set(value.split()) if split else ({value} if value else set())
    if isinstance(value, list | tuple):
        return {v for v in value if isinstance(v, str) and v}
    return set()


def _collect(claims: Mapping[str, Any], paths: list[str], *, split: bool) -> frozenset[str]:
    found: set[str] = set()
    for path in paths:
        found |= _strings(lookup(claims, path), split=split)
    return frozenset(found)


def extract_groups(
    claims: Mapping[str, Any], profile: IssuerProfile, client_id: str | None
) -> frozenset[str]:
    """Group names as the provider spells them (Keycloak paths like ``/eng`` kept as-is)."""
    return _collect(claims, _paths(profile.groups_claims, client_id), split=False)


def extract_roles(
    claims: Mapping[str, Any], profile: IssuerProfile, client_id: str | None
) -> frozenset[str]:
    return _collect(claims, _paths(profile.roles_claims, client_id), split=False)


def extract_scopes(
    claims: Mapping[str, Any], profile: IssuerProfile, client_id: str | None
) -> frozenset[str]:
    """Scopes from a space-separated string (RFC 9068 §2.2.3) or a JSON list."""
    found: set[str] = set()
    for path in _paths(profile.scope_claims, client_id):
        value = lookup(claims, path)
        if isinstance(value, list | tuple):
            for item in value:
                found |= _strings(item, split=True)
        else:
            found |= _strings(value, split=True)
    return frozenset(found)
