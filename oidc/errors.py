"""Errors raised by the OIDC protocol core.

Every error carries a machine-readable reason code in ``error`` and a coarse
``status`` that callers map to a response (close code, HTTP status)::

    OidcError                       status
    ├── TokenError                  "invalid_token"        unauthenticated
    │   ├── MalformedToken          "malformed_token"
    │   │   └── DuplicateMember         "duplicate_member"
    │   ├── TokenTooLarge           "token_too_large"
    │   ├── UnsupportedAlgorithm    "unsupported_algorithm"
    │   ├── ForbiddenHeader         "forbidden_header"
    │   ├── UnknownCritical         "unknown_crit"
    │   ├── UnknownKey              "unknown_kid"
    │   ├── BadSignature            "bad_signature"
    │   ├── WrongTokenType          "wrong_token_type"
    │   ├── UnknownIssuer           "unknown_issuer"
    │   ├── InactiveToken           "inactive_token"
    │   └── ClaimError              "invalid_claim"        (has ``claim``)
    │       ├── InvalidIssuer           "invalid_issuer"
    │       ├── InvalidAudience         "invalid_audience"
    │       ├── ExpiredToken            "expired_token"
    │       ├── NotYetValid             "token_not_yet_valid"
    │       ├── IssuedInFuture          "issued_in_future"
    │       ├── MissingClaim            "missing_claim"
    │       ├── InvalidNonce            "invalid_nonce"
    │       ├── InvalidAuthorizedParty  "invalid_azp"
    │       ├── InvalidClient           "invalid_client"
    │       ├── InvalidSubject          "invalid_subject"
    │       ├── InvalidEvents           "invalid_events"
    │       ├── NonceInLogoutToken      "nonce_forbidden"
    │       └── ReplayedToken           "replayed_token"
    ├── GroupsOverage               "groups_overage"       forbidden
    ├── KeysUnavailable             "keys_unavailable"     unavailable
    └── DiscoveryError              "discovery_error"      unavailable

Descriptions are for logs; they never contain token material.
"""

from __future__ import annotations

from typing import ClassVar, Literal

Status = Literal["unauthenticated", "forbidden", "unavailable", "bad_request", "policy_violation"]

__all__ = [
    "BadSignature",
    "ClaimError",
    "DiscoveryError",
    "DuplicateMember",
    "ExpiredToken",
    "ForbiddenHeader",
    "GroupsOverage",
    "InactiveToken",
    "InvalidAudience",
    "InvalidAuthorizedParty",
    "InvalidClient",
    "InvalidEvents",
    "InvalidIssuer",
    "InvalidNonce",
    "InvalidSubject",
    "IssuedInFuture",
    "KeysUnavailable",
    "MalformedToken",
    "MissingClaim",
    "NonceInLogoutToken",
    "NotYetValid",
    "OidcError",
    "ReplayedToken",
    "Status",
    "TokenError",
    "TokenTooLarge",
    "UnknownCritical",
    "UnknownIssuer",
    "UnknownKey",
    "UnsupportedAlgorithm",
    "WrongTokenType",
]


class OidcError(Exception):
    """Base class of every error raised by :mod:`oidc`."""

    error: ClassVar[str] = "oidc_error"
    status: ClassVar[Status] = "unauthenticated"

    def __init__(self, description: str = "") -> None:
        super().__init__(description or self.error)
        self.description = description

    def __str__(self) -> str:
        return f"{self.error}: {self.description}" if self.description else self.error


class TokenError(OidcError):
    """The presented token is not acceptable."""

    error = "invalid_token"


class MalformedToken(TokenError):
    """Not a compact JWS with base64url JSON header and payload (RFC 7515 §7.1)."""

    error = "malformed_token"


class DuplicateMember(MalformedToken):
    """A JSON object in the header or claims repeats a member name, at any depth.

    RFC 7515 §4 and RFC 7519 §4 let a parser either refuse such a token or keep the
    last value; parsers disagree, so two of them could read two different tokens from
    the same bytes. We refuse.
    """

    error = "duplicate_member"


class TokenTooLarge(TokenError):
    """Larger than the configured cap; refused before any parsing."""

    error = "token_too_large"


class UnsupportedAlgorithm(TokenError):
    """``alg`` is none, symmetric, or not in the issuer's allowlist (RFC 8725 §3.1)."""

    error = "unsupported_algorithm"


class ForbiddenHeader(TokenError):
    """Header tries to supply its own key: jwk, jku, x5u or x5c (RFC 8725 §3.10)."""

    error = "forbidden_header"


class UnknownCritical(TokenError):
    """``crit`` names an extension we do not understand (RFC 7515 §4.1.11)."""

    error = "unknown_crit"


class UnknownKey(TokenError):
    """No key with this ``kid`` even after a refresh of the issuer's JWKS."""

    error = "unknown_kid"


class BadSignature(TokenError):
    """Signature missing or does not verify."""

    error = "bad_signature"


class WrongTokenType(TokenError):
    """A token of another kind, e.g. an ID token presented as access token (RFC 8725 §3.11)."""

    error = "wrong_token_type"


class UnknownIssuer(TokenError):
    """The unverified ``iss`` matches no configured issuer exactly."""

    error = "unknown_issuer"


class InactiveToken(TokenError):
    """Introspection answered ``active`` other than true (RFC 7662 §2.2)."""

    error = "inactive_token"


class ClaimError(TokenError):
    """A claim is missing or has an unacceptable value; ``claim`` names it."""

    error = "invalid_claim"

    def __init__(self, description: str = "", *, claim: str = "") -> None:
        super().__init__(description)
        self.claim = claim


class InvalidIssuer(ClaimError):
    error = "invalid_issuer"


class InvalidAudience(ClaimError):
    error = "invalid_audience"


class ExpiredToken(ClaimError):
    error = "expired_token"


class NotYetValid(ClaimError):
    error = "token_not_yet_valid"


class IssuedInFuture(ClaimError):
    error = "issued_in_future"


class MissingClaim(ClaimError):
    error = "missing_claim"


class InvalidNonce(ClaimError):
    error = "invalid_nonce"


class InvalidAuthorizedParty(ClaimError):
    error = "invalid_azp"


class InvalidClient(ClaimError):
    """``client_id``/``azp`` is not one of the allowed clients."""

    error = "invalid_client"


class InvalidSubject(ClaimError):
    error = "invalid_subject"


class InvalidEvents(ClaimError):
    """Logout token ``events`` lacks the back-channel logout member (BCL 1.0 §2.4)."""

    error = "invalid_events"


class NonceInLogoutToken(ClaimError):
    """Logout tokens must not contain ``nonce`` (BCL 1.0 §2.4)."""

    error = "nonce_forbidden"


class ReplayedToken(ClaimError):
    """This ``jti`` was already accepted (BCL 1.0 §2.6 item 10)."""

    error = "replayed_token"


class GroupsOverage(OidcError):
    """The token says the user's groups are not (all) in it, and the issuer's
    ``group_overage`` setting is ``refuse``: Entra's ``hasgroups``, or the groups claim
    named in ``_claim_names`` (aggregated or distributed claims, OIDC Core 1.0 §5.6.2).

    The token itself is valid and a fresh one would say the same: ``forbidden``.
    """

    error = "groups_overage"
    status = "forbidden"


class KeysUnavailable(OidcError):
    """No usable signing keys and the provider cannot be reached."""

    error = "keys_unavailable"
    status = "unavailable"


class DiscoveryError(OidcError):
    """Provider metadata could not be fetched or is invalid (OIDC Discovery §4)."""

    error = "discovery_error"
    status = "unavailable"
