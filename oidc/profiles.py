"""Issuer profiles: where each provider puts groups, roles and scopes.

Access token ``typ`` values are compared per RFC 8725 §3.11 / RFC 9068 §2.1:
case-insensitively, with an optional ``application/`` prefix removed.

A token can say that the user's groups are not (all) in it: the groups claim is
named in ``_claim_names`` (aggregated or distributed claims, OIDC Core 1.0 §5.6.2;
Entra's "groups overage" past 200 groups), or a profile's flag claim is set
(Entra's ``hasgroups`` in the implicit flow). :func:`groups_overage` sees both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

__all__ = [
    "AUTH0",
    "ENTRA",
    "GENERIC",
    "KEYCLOAK",
    "OKTA",
    "PROFILES",
    "IssuerProfile",
    "claim_path",
    "customised",
    "extract_groups",
    "extract_roles",
    "extract_scopes",
    "groups_overage",
    "lookup",
    "normalize_typ",
]


def normalize_typ(value: str) -> str:
    """``application/AT+JWT`` → ``at+jwt`` (RFC 7515 §4.1.9)."""
    lowered = value.strip().lower()
    return lowered.removeprefix("application/")


@dataclass(frozen=True)
class IssuerProfile:
    """Claim layout of one kind of provider.

    A claim path is dotted (``realm_access.roles``); ``{client_id}`` stands for the
    issuer's configured client as one whole segment, dots and all. A URL path
    (Auth0's namespaced ``https://example.com/groups``) names one top-level claim.
    ``typ_required=False`` accepts access tokens with no ``typ`` header
    (Okta); a ``typ`` that is present must still be one of ``access_token_types``.
    ``groups_overage_claims`` are claims whose presence (other than ``false``) says the
    groups were left out of the token (Entra's ``hasgroups``).
    """

    name: str
    groups_claims: tuple[str, ...]
    roles_claims: tuple[str, ...]
    scope_claims: tuple[str, ...]
    access_token_types: frozenset[str]
    typ_required: bool = True
    groups_overage_claims: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "access_token_types", frozenset(normalize_typ(t) for t in self.access_token_types)
        )
        for field_name in ("groups_claims", "roles_claims", "scope_claims",
                           "groups_overage_claims"):
            paths = getattr(self, field_name)
            if isinstance(paths, str) or not all(isinstance(p, str) and p for p in paths):
                raise ValueError(f"profile {self.name}: {field_name} must be a list of claim paths")
            object.__setattr__(self, field_name, tuple(paths))


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
    groups_overage_claims=("hasgroups",),  # implicit flow; other flows use _claim_names
)

OKTA = IssuerProfile(
    name="okta",
    groups_claims=("groups",),
    roles_claims=("roles",),
    scope_claims=("scp",),  # a JSON list; the client is in "cid"
    access_token_types=frozenset({"at+jwt", "jwt"}),
    typ_required=False,  # Okta's access tokens carry no typ header
)

AUTH0 = IssuerProfile(
    name="auth0",
    groups_claims=("groups",),  # usually a namespaced claim: override groups_claims
    roles_claims=("permissions",),  # RBAC permissions
    scope_claims=("scope",),
    access_token_types=frozenset({"at+jwt", "jwt"}),
)

PROFILES: Mapping[str, IssuerProfile] = MappingProxyType(
    {p.name: p for p in (GENERIC, KEYCLOAK, ENTRA, OKTA, AUTH0)}
)

Path = tuple[str, ...]


def customised(profile: IssuerProfile, *, groups: tuple[str, ...] = (),
               roles: tuple[str, ...] = (), scopes: tuple[str, ...] = ()) -> IssuerProfile:
    """``profile`` with the claim paths an operator listed instead of its own."""
    return dataclasses.replace(
        profile,
        groups_claims=groups or profile.groups_claims,
        roles_claims=roles or profile.roles_claims,
        scope_claims=scopes or profile.scope_claims,
    )


def lookup(claims: Mapping[str, Any], path: str | Path) -> Any:
    """The value at a claim path; None when any step is missing.

    A string path is split on dots, except a URL (``https://example.com/groups``, a
    namespaced claim), which names one top-level claim. A flat claim that merely
    contains dots never matches a dotted path. A tuple path is segments already.
    """
    node: Any = claims
    for part in claim_path(path) if isinstance(path, str) else path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def claim_path(path: str) -> tuple[str, ...]:
    """The keys ``lookup`` walks for a string path: the URL itself, or its dotted segments."""
    return (path,) if "://" in path else tuple(path.split("."))


@lru_cache(maxsize=256)
def _paths(templates: tuple[str, ...], client_id: str | None) -> tuple[str | Path, ...]:
    """Templates with ``{client_id}`` replaced as one segment (resolved once, cached)."""
    out: list[str | Path] = []
    for template in templates:
        if "{client_id}" not in template:
            out.append(template)
        elif client_id:
            out.append(tuple(client_id if seg == "{client_id}" else seg
                             for seg in template.split(".")))
    return tuple(out)


def _strings(value: Any, *, split: bool) -> set[str]:
    if isinstance(value, str):
        return set(value.split()) if split else ({value} if value else set())
    if isinstance(value, list | tuple):
        return {v for v in value if isinstance(v, str) and v}
    return set()


def _collect(claims: Mapping[str, Any], paths: tuple[str | Path, ...], *,
             split: bool) -> frozenset[str]:
    found: set[str] = set()
    for path in paths:
        found |= _strings(lookup(claims, path), split=split)
    return frozenset(found)


def extract_groups(
    claims: Mapping[str, Any], profile: IssuerProfile, client_id: str | None
) -> frozenset[str]:
    """Group names as the provider spells them (Keycloak paths like ``/eng`` kept as-is)."""
    return _collect(claims, _paths(profile.groups_claims, client_id), split=False)


def _claim_name(path: str | Path) -> str:
    """The top-level claim a path starts at: the name ``_claim_names`` would list."""
    if isinstance(path, tuple):
        return path[0]
    return path if "://" in path else path.split(".", 1)[0]


def groups_overage(
    claims: Mapping[str, Any], profile: IssuerProfile, client_id: str | None
) -> bool:
    """True when the token says the user's groups are elsewhere, so the groups it
    carries (often none) are not all of them.

    - a groups claim (its top-level name) is listed in ``_claim_names``: aggregated or
      distributed claims (OIDC Core 1.0 §5.6.2), Entra's overage in the code flow;
    - one of the profile's ``groups_overage_claims`` is present and not ``false``
      (Entra's ``hasgroups: true``, implicit flow).
    """
    if any(claims.get(name) not in (None, False) for name in profile.groups_overage_claims):
        return True
    names = claims.get("_claim_names")
    if not isinstance(names, Mapping):
        return False
    return any(_claim_name(path) in names for path in _paths(profile.groups_claims, client_id))


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
