"""Value types shared by the protocol core: principals, credentials, tokens."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NewType, TypedDict

from oidc.perprincipal import PerPrincipal

__all__ = [
    "ChannelName",
    "ClaimsSnapshot",
    "CredentialKind",
    "Issuer",
    "Principal",
    "Scope",
    "Subject",
    "Token",
    "UnverifiedToken",
]

Issuer = NewType("Issuer", str)
Subject = NewType("Subject", str)
Scope = NewType("Scope", str)
ChannelName = NewType("ChannelName", str)


class CredentialKind(StrEnum):
    """How the credential reached the gateway."""

    SESSION = "session"
    BEARER = "bearer"
    SUBPROTOCOL = "subprotocol"
    TICKET = "ticket"
    MESSAGE = "message"


def _freeze(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    return claims if isinstance(claims, MappingProxyType) else MappingProxyType(dict(claims))


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. Holds claims, never the token itself."""

    issuer: str
    subject: str
    client_id: str | None
    groups: frozenset[str]
    roles: frozenset[str]
    scopes: frozenset[str]
    claims: Mapping[str, Any]
    expires_at: float
    sid: str | None
    credential: CredentialKind
    kid: str | None = None
    jti_hash: str | None = None
    token_format: str = "jwt"
    groups_overage: bool = False
    """The token said the groups are elsewhere and the issuer admits that: ``groups``
    is empty on purpose (:func:`oidc.verify.groups_of`)."""
    issued_at: float | None = None
    """When the credential was issued (``iat``, or the session's last login or refresh)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "claims", _freeze(self.claims))

    def with_credential(self, kind: CredentialKind) -> Principal:
        """This principal as presented by ``kind``: one object per principal and kind, so
        its sockets share what is derived from it (``oidc.perprincipal``)."""
        return self if kind is self.credential else _AS_KIND[kind](self)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe description (no token, no raw claims)."""
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "groups": sorted(self.groups),
            "groups_overage": self.groups_overage,
            "roles": sorted(self.roles),
            "scopes": sorted(self.scopes),
            "expires_at": self.expires_at,
            "credential": self.credential.value,
            "sid": self.sid,
        }


class ClaimsSnapshot(TypedDict, total=False):
    """What a login stores in the session: plain JSON values only."""

    issuer: str
    subject: str
    sid: str | None
    groups: list[str]
    groups_overage: bool
    roles: list[str]
    scopes: list[str]
    expires_at: float
    client_id: str | None
    email: str | None
    email_verified: bool


@dataclass(frozen=True)
class UnverifiedToken:
    """Header and claims of a JWS whose signature has NOT been checked."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signing_input: bytes = b""  # ASCII of "header.payload", exactly as received
    signature: bytes = b""


@dataclass(frozen=True)
class Token:
    """A JWS whose signature verified; claims still need validation by the caller."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", _freeze(self.header))
        object.__setattr__(self, "claims", _freeze(self.claims))


def _presented_as(kind: CredentialKind) -> PerPrincipal[Principal, Principal]:
    return PerPrincipal(lambda principal: dataclasses.replace(principal, credential=kind))


_AS_KIND = {kind: _presented_as(kind) for kind in CredentialKind}
