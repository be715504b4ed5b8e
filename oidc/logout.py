"""OpenID Connect Back-Channel Logout 1.0: logout token validation (§2.4, §2.6)
and replay memory (§2.6 item 10, via an injected :class:`ReplayStore`)."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from oidc.claims import numeric_date, validate_aud, validate_exp, validate_iat, validate_iss
from oidc.config import IssuerConfig
from oidc.errors import (
    ExpiredToken,
    InvalidEvents,
    MissingClaim,
    NonceInLogoutToken,
    ReplayedToken,
    WrongTokenType,
)
from oidc.jwks import JwksCache
from oidc.jws import check_header, check_typ, peek, verify_with_cache

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "LOGOUT_MAX_AGE",
    "LOGOUT_TOKEN_TYPES",
    "LogoutToken",
    "MemoryReplayStore",
    "ReplayStore",
    "accept_logout_token",
    "verify_logout_token",
]

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "jwt"})
LOGOUT_MAX_AGE = 120.0
"""Lifetime assumed for logout tokens without ``exp``, counted from ``iat``."""


@dataclass(frozen=True)
class LogoutToken:
    """A verified logout token: end sessions matching ``sid`` and/or ``subject``."""

    issuer: str
    subject: str | None
    sid: str | None
    jti: str
    expires_at: float


def _optional_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise MissingClaim(f"{name} is not a non-empty string", claim=name)
    return value


def _validate_events(claims: Mapping[str, Any]) -> None:
    """§2.4: ``events`` is an object whose back-channel member is an object."""
    events = claims.get("events")
    if not isinstance(events, Mapping):
        raise InvalidEvents("events must be a JSON object", claim="events")
    if not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), Mapping):
        raise InvalidEvents("events lacks the back-channel logout member", claim="events")


def _expiry(claims: Mapping[str, Any], now: float, leeway: float) -> float:
    """``exp`` when present (validated); else ``iat`` + LOGOUT_MAX_AGE."""
    validate_iat(claims, now, leeway)
    iat = numeric_date(claims, "iat", required=True)
    assert iat is not None
    exp = numeric_date(claims, "exp", required=False)
    if exp is not None:
        validate_exp(claims, now, leeway)
        return exp
    expires_at = iat + LOGOUT_MAX_AGE
    if now >= expires_at + leeway:
        raise ExpiredToken("logout token without exp is too old", claim="iat")
    return expires_at


async def verify_logout_token(
    raw: str, issuer: IssuerConfig, keys: JwksCache, *, now: float
) -> LogoutToken:
    """Validate a logout token per Back-Channel Logout 1.0 §2.6 (without replay check)."""
    if issuer.client_id is None:
        raise ValueError(f"issuer {issuer.issuer}: client_id is needed for logout tokens")
    unverified = peek(raw, max_bytes=issuer.max_token_bytes)
    check_header(unverified.header, issuer.algorithms)
    check_typ(unverified.header, LOGOUT_TOKEN_TYPES, required=False)
    token = await verify_with_cache(unverified, issuer.algorithms, keys)
    claims = token.claims
    validate_iss(claims, issuer.issuer)
    validate_aud(claims, frozenset({issuer.client_id}))
    expires_at = _expiry(claims, now, issuer.leeway)
    subject = _optional_string(claims, "sub")
    sid = _optional_string(claims, "sid")
    if subject is None and sid is None:
        raise MissingClaim("logout token needs sub or sid", claim="sub")
    _validate_events(claims)
    if "nonce" in claims:
        raise NonceInLogoutToken("logout tokens must not contain nonce", claim="nonce")
    jti = _optional_string(claims, "jti")
    if jti is None:
        raise MissingClaim("jti is required", claim="jti")
    if claims.get("typ") not in (None, "Logout"):  # Keycloak's typ claim
        raise WrongTokenType("typ claim is not Logout")
    return LogoutToken(issuer=issuer.issuer, subject=subject, sid=sid, jti=jti,
                       expires_at=expires_at)


class ReplayStore(Protocol):
    """Remembers seen keys until they expire; shared stores make replay checks global."""

    async def remember(self, key: str, expires_at: float) -> bool:
        """Record ``key``; False if it was already recorded and has not expired."""
        ...


class MemoryReplayStore:
    """In-process ReplayStore: bounded, expiring, with an injected wall clock.

    When full, the oldest entries are dropped first.
    """

    def __init__(self, *, max_entries: int = 10000, clock: Callable[[], float] = time.time) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _purge(self, now: float) -> None:
        for key in [k for k, exp in self._seen.items() if exp <= now]:
            del self._seen[key]

    async def remember(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None and seen > now:
            return False
        if len(self._seen) >= self.max_entries:
            self._purge(now)
        while len(self._seen) >= self.max_entries:
            self._seen.popitem(last=False)
        self._seen[key] = expires_at
        self._seen.move_to_end(key)
        return True


def replay_key(token: LogoutToken) -> str:
    """Store key: sha256 of issuer and jti (jti is unique per issuer)."""
    material = f"{token.issuer}\x00{token.jti}".encode("utf-8", "surrogatepass")
    return "logout:" + hashlib.sha256(material).hexdigest()


async def accept_logout_token(
    raw: str, issuer: IssuerConfig, keys: JwksCache, replay: ReplayStore, *, now: float
) -> LogoutToken:
    """:func:`verify_logout_token`, then refuse a ``jti`` seen before (§2.6 item 10)."""
    token = await verify_logout_token(raw, issuer, keys, now=now)
    if not await replay.remember(replay_key(token), token.expires_at + issuer.leeway):
        raise ReplayedToken("logout token was already used", claim="jti")
    return token
