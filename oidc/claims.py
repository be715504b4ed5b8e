"""Small claim validators (RFC 7519 §4.1, OIDC Core 1.0 §3.1.3.7, RFC 9068 §4).

Each takes the claims mapping and, where time matters, ``now`` (epoch seconds)
and ``leeway``. They raise a :class:`~oidc.errors.ClaimError` subclass naming
the claim, and return nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from oidc.errors import (
    ExpiredToken,
    InvalidAudience,
    InvalidAuthorizedParty,
    InvalidIssuer,
    InvalidNonce,
    IssuedInFuture,
    MissingClaim,
    NotYetValid,
)

__all__ = [
    "audiences_of",
    "numeric_date",
    "validate_aud",
    "validate_azp",
    "validate_exp",
    "validate_iat",
    "validate_iss",
    "validate_nbf",
    "validate_nonce",
    "validate_sub",
]


def numeric_date(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    """A NumericDate (RFC 7519 §2): int or float, never bool or string."""
    if name not in claims:
        if required:
            raise MissingClaim(f"{name} is required", claim=name)
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise MissingClaim(f"{name} is not a NumericDate", claim=name)
    try:
        return float(value)
    except OverflowError:  # an int past any float
        raise MissingClaim(f"{name} is not a NumericDate", claim=name) from None


def validate_iss(claims: Mapping[str, Any], expected: str) -> None:
    """``iss`` equals ``expected`` exactly (OIDC Core §3.1.3.7 item 2); no normalisation."""
    iss = claims.get("iss")
    if iss is None:
        raise MissingClaim("iss is required", claim="iss")
    if not isinstance(iss, str) or iss != expected:
        raise InvalidIssuer("iss does not match the issuer", claim="iss")


def audiences_of(claims: Mapping[str, Any]) -> list[str]:
    """``aud`` as a list (RFC 7519 §4.1.3: a string or an array of strings)."""
    if "aud" not in claims:
        raise MissingClaim("aud is required", claim="aud")
    aud = claims["aud"]
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise InvalidAudience("aud is not a string or list of strings", claim="aud")


def validate_aud(claims: Mapping[str, Any], accepted: frozenset[str]) -> None:
    """At least one audience is ours (RFC 9068 §4 item 5, OIDC Core §3.1.3.7 item 3)."""
    if not accepted.intersection(audiences_of(claims)):
        raise InvalidAudience("token is not intended for this audience", claim="aud")


def validate_exp(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """``exp`` is required and ``now`` is before it (RFC 7519 §4.1.4)."""
    exp = numeric_date(claims, "exp", required=True)
    assert exp is not None
    if now >= exp + leeway:
        raise ExpiredToken("token has expired", claim="exp")


def validate_nbf(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """``nbf`` is optional; when present ``now`` is not before it (RFC 7519 §4.1.5)."""
    nbf = numeric_date(claims, "nbf", required=False)
    if nbf is not None and now + leeway < nbf:
        raise NotYetValid("token is not valid yet", claim="nbf")


def validate_iat(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """``iat`` is required and not in the future (OIDC Core §3.1.3.7 item 10)."""
    iat = numeric_date(claims, "iat", required=True)
    assert iat is not None
    if iat > now + leeway:
        raise IssuedInFuture("token was issued in the future", claim="iat")


def validate_nonce(claims: Mapping[str, Any], expected: str | None) -> None:
    """``nonce`` equals the one sent in the request (OIDC Core §3.1.3.7 item 11)."""
    if expected is None:
        return
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(
        nonce.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    ):
        raise InvalidNonce("nonce does not match the request", claim="nonce")


def validate_azp(claims: Mapping[str, Any], client_id: str) -> None:
    """OIDC Core §3.1.3.7 items 4-5: with several audiences ``azp`` is required;
    when present it must be our ``client_id``."""
    audiences = audiences_of(claims)
    azp = claims.get("azp")
    if azp is None:
        if len(audiences) > 1:
            raise MissingClaim("azp is required with several audiences", claim="azp")
        return
    if azp != client_id:
        raise InvalidAuthorizedParty("azp is not this client", claim="azp")


def validate_sub(claims: Mapping[str, Any]) -> str:
    """``sub`` is a non-empty string (OIDC Core §2, RFC 9068 §2.2). Returns it."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise MissingClaim("sub is required", claim="sub")
    return sub
