"""Verification of access tokens and ID tokens: peek, screen the header,
resolve the key, verify the signature, then validate claims.

Logout tokens live in :mod:`oidc.logout` and are re-exported here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from oidc.claims import (
    numeric_date,
    validate_aud,
    validate_azp,
    validate_exp,
    validate_iat,
    validate_iss,
    validate_nbf,
    validate_nonce,
    validate_sub,
)
from oidc.config import IssuerConfig
from oidc.errors import (
    GroupsOverage,
    InvalidClient,
    InvalidSubject,
    KeysUnavailable,
    UnknownIssuer,
    WrongTokenType,
)
from oidc.jwks import JwksCache
from oidc.jws import check_header, check_size, check_typ, peek, verify_with_cache
from oidc.logout import (
    BACKCHANNEL_LOGOUT_EVENT,
    LogoutToken,
    MemoryReplayStore,
    ReplayStore,
    accept_logout_token,
    verify_logout_token,
)
from oidc.profiles import (
    extract_groups,
    extract_roles,
    extract_scopes,
    groups_overage,
    normalize_typ,
)
from oidc.types import CredentialKind, Principal, Token, UnverifiedToken

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "LogoutToken",
    "MemoryReplayStore",
    "ReplayStore",
    "accept_logout_token",
    "check_groups_overage",
    "client_id_of",
    "groups_of",
    "hash_jti",
    "principal_from_claims",
    "verify_access_token",
    "verify_id_token",
    "verify_logout_token",
    "verify_userinfo_sub",
]

DEFAULT_MAX_TOKEN_BYTES = 16384
NOT_ACCESS_TOKEN_CLAIMS = ("events", "nonce", "at_hash", "c_hash")
NOT_ID_TOKEN_TYPES = frozenset({"at+jwt", "logout+jwt"})


def hash_jti(jti: object) -> str | None:
    """First 16 hex chars of sha256(jti): correlates logs without storing the jti."""
    if not isinstance(jti, str) or not jti:
        return None
    return hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def client_id_of(claims: Mapping[str, Any]) -> str | None:
    """``client_id`` (RFC 9068 §2.2), else ``azp`` (Keycloak, Entra v2, Auth0), else
    ``appid`` (Entra v1), else ``cid`` (Okta)."""
    for name in ("client_id", "azp", "appid", "cid"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _refuse_other_token_kinds(unverified: UnverifiedToken, issuer: IssuerConfig) -> None:
    """RFC 9068 §4 / RFC 8725 §3.11: only access tokens pass, never ID or logout tokens."""
    header, claims = unverified.header, unverified.claims
    check_typ(header, issuer.profile.access_token_types,  # refuses logout+jwt too
              required=issuer.profile.typ_required)
    for name in NOT_ACCESS_TOKEN_CLAIMS:
        if name in claims:
            raise WrongTokenType(f"claim {name!r} marks an ID or logout token")
    typ_claim = claims.get("typ")  # Keycloak: "Bearer", "ID", "Refresh", "Logout"
    if typ_claim is not None and (not isinstance(typ_claim, str) or typ_claim.lower() != "bearer"):
        raise WrongTokenType("typ claim is not Bearer")


def _select_issuer(unverified: UnverifiedToken,
                   issuers: Mapping[str, IssuerConfig]) -> IssuerConfig:
    iss = unverified.claims.get("iss")
    config = issuers.get(iss) if isinstance(iss, str) else None
    if config is None or config.issuer != iss:
        raise UnknownIssuer("iss is not a configured issuer")
    return config


async def verify_access_token(
    raw: str,
    issuers: Mapping[str, IssuerConfig],
    keys: Mapping[str, JwksCache],
    *,
    now: float,
    credential: CredentialKind,
) -> Principal:
    """A JWT access token (RFC 9068 §4, RFC 8725) → Principal.

    The issuer is chosen by exact match of the unverified ``iss``; everything
    else is checked against that issuer's configuration.
    """
    cap = max((c.max_token_bytes for c in issuers.values()), default=DEFAULT_MAX_TOKEN_BYTES)
    unverified = peek(raw, max_bytes=cap)
    issuer = _select_issuer(unverified, issuers)
    check_size(raw, issuer.max_token_bytes)
    check_header(unverified.header, issuer.algorithms)
    _refuse_other_token_kinds(unverified, issuer)
    cache = keys.get(issuer.issuer)
    if cache is None:
        raise KeysUnavailable("no key cache for this issuer")
    token = await verify_with_cache(unverified, issuer.algorithms, cache)
    claims = token.claims
    validate_iss(claims, issuer.issuer)
    validate_exp(claims, now, issuer.leeway)
    validate_nbf(claims, now, issuer.leeway)
    validate_iat(claims, now, issuer.leeway)
    validate_aud(claims, issuer.audiences)
    validate_sub(claims)
    client_id = client_id_of(claims)
    if issuer.allowed_client_ids is not None and client_id not in issuer.allowed_client_ids:
        raise InvalidClient("token was issued to a client that is not allowed", claim="client_id")
    kid = token.header.get("kid")
    return principal_from_claims(claims, issuer, credential=credential,
                                 kid=kid if isinstance(kid, str) else None, token_format="jwt")


def check_groups_overage(claims: Mapping[str, Any], issuer: IssuerConfig) -> bool:
    """Whether the token declares a groups overage (:func:`oidc.profiles.groups_overage`);
    raises :class:`GroupsOverage` unless the issuer's ``group_overage`` is ``admit``."""
    if not groups_overage(claims, issuer.profile, issuer.client_id):
        return False
    if issuer.group_overage != "admit":
        raise GroupsOverage("the token's groups are incomplete (groups overage)")
    return True


def groups_of(claims: Mapping[str, Any], issuer: IssuerConfig) -> tuple[frozenset[str], bool]:
    """``(groups, overage)``. An admitted overage gives no group at all, never the
    partial list a token may still carry, so group grants cannot be half-applied."""
    if check_groups_overage(claims, issuer):
        return frozenset(), True
    return extract_groups(claims, issuer.profile, issuer.client_id), False


def _expires_at(claims: Mapping[str, Any]) -> float:
    """``exp`` as seconds; 0.0 when it is no number (where it is required, it was checked
    before); an int too large for a float is refused (:class:`MissingClaim`)."""
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return 0.0
    return numeric_date(claims, "exp", required=True) or 0.0


def _issued_at(claims: Mapping[str, Any]) -> float | None:
    """``iat`` as seconds, or None when absent or no number."""
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or iat != iat:
        return None
    try:
        return float(iat)
    except OverflowError:
        return None


def principal_from_claims(
    claims: Mapping[str, Any],
    issuer: IssuerConfig,
    *,
    credential: CredentialKind,
    kid: str | None = None,
    token_format: str = "jwt",  # noqa: S107 - a format name, not a secret
    subject: str | None = None,
) -> Principal:
    """Build a Principal from already validated claims (JWT or introspection).

    A groups overage is refused here (:class:`GroupsOverage`) unless the issuer admits it.
    """
    sub = subject if subject is not None else validate_sub(claims)
    sid = claims.get("sid")
    groups, overage = groups_of(claims, issuer)
    return Principal(
        issuer=issuer.issuer,
        subject=sub,
        client_id=client_id_of(claims),
        groups=groups,
        roles=extract_roles(claims, issuer.profile, issuer.client_id),
        scopes=extract_scopes(claims, issuer.profile, issuer.client_id),
        claims=claims,  # Principal freezes a copy unless it is already a read-only view
        expires_at=_expires_at(claims),
        sid=sid if isinstance(sid, str) else None,
        credential=credential,
        kid=kid,
        jti_hash=hash_jti(claims.get("jti")),
        token_format=token_format,
        groups_overage=overage,
        issued_at=_issued_at(claims),
    )


async def verify_id_token(
    raw: str, issuer: IssuerConfig, keys: JwksCache, *, now: float, nonce: str | None
) -> Token:
    """An ID token per OIDC Core 1.0 §3.1.3.7 (items 2-11; no encryption, item 1).

    A groups overage is refused (:class:`GroupsOverage`) unless the issuer admits it;
    callers then take the groups from :func:`groups_of`.
    """
    if issuer.client_id is None:
        raise ValueError(f"issuer {issuer.issuer}: client_id is needed to verify ID tokens")
    unverified = peek(raw, max_bytes=issuer.max_token_bytes)
    check_header(unverified.header, issuer.algorithms)
    typ = unverified.header.get("typ")
    if isinstance(typ, str) and normalize_typ(typ) in NOT_ID_TOKEN_TYPES:
        raise WrongTokenType(f"typ {typ!r} is not an ID token")
    # ID tokens come from the token endpoint (§3.1.3.7 item 6): a new kid is a rotation
    token = await verify_with_cache(unverified, issuer.algorithms, keys, from_provider=True)
    claims = token.claims
    if "events" in claims:
        raise WrongTokenType("logout token presented as ID token")
    validate_iss(claims, issuer.issuer)
    validate_aud(claims, frozenset({issuer.client_id}))
    validate_azp(claims, issuer.client_id)
    validate_exp(claims, now, issuer.leeway)
    validate_iat(claims, now, issuer.leeway)
    validate_nonce(claims, nonce)
    validate_sub(claims)
    check_groups_overage(claims, issuer)
    return token


def verify_userinfo_sub(id_token_claims: Mapping[str, Any], userinfo: Mapping[str, Any]) -> None:
    """UserInfo ``sub`` must equal the ID token's (OIDC Core 1.0 §5.3.2)."""
    expected = validate_sub(id_token_claims)
    got = userinfo.get("sub")
    if not isinstance(got, str) or got != expected:
        raise InvalidSubject("userinfo sub differs from the ID token", claim="sub")
