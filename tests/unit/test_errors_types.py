"""The error tree's codes and statuses, and Principal helpers."""

from __future__ import annotations

import json

import pytest

from oidc import errors
from oidc.types import CredentialKind, Principal

CODES = {
    errors.TokenError: "invalid_token", errors.MalformedToken: "malformed_token",
    errors.DuplicateMember: "duplicate_member", errors.GroupsOverage: "groups_overage",
    errors.TokenTooLarge: "token_too_large", errors.UnsupportedAlgorithm: "unsupported_algorithm",
    errors.ForbiddenHeader: "forbidden_header", errors.UnknownCritical: "unknown_crit",
    errors.UnknownKey: "unknown_kid", errors.BadSignature: "bad_signature",
    errors.WrongTokenType: "wrong_token_type", errors.UnknownIssuer: "unknown_issuer",
    errors.ClaimError: "invalid_claim", errors.InvalidIssuer: "invalid_issuer",
    errors.InvalidAudience: "invalid_audience", errors.ExpiredToken: "expired_token",
    errors.NotYetValid: "token_not_yet_valid", errors.IssuedInFuture: "issued_in_future",
    errors.MissingClaim: "missing_claim", errors.InvalidNonce: "invalid_nonce",
    errors.InvalidAuthorizedParty: "invalid_azp", errors.InvalidClient: "invalid_client",
    errors.InvalidSubject: "invalid_subject", errors.InvalidEvents: "invalid_events",
    errors.NonceInLogoutToken: "nonce_forbidden", errors.ReplayedToken: "replayed_token",
    errors.InactiveToken: "inactive_token", errors.KeysUnavailable: "keys_unavailable",
    errors.DiscoveryError: "discovery_error",
}


@pytest.mark.parametrize(("cls", "code"), CODES.items(), ids=lambda v: getattr(v, "__name__", v))
def test_codes_unique_and_in_docstring(cls: type[errors.OidcError], code: str) -> None:
    assert cls.error == code
    assert issubclass(cls, errors.OidcError)
    assert cls.__name__ in (errors.__doc__ or "") and f'"{code}"' in (errors.__doc__ or "")
    assert list(CODES.values()).count(code) == 1


def test_statuses() -> None:
    assert errors.KeysUnavailable.status == errors.DiscoveryError.status == "unavailable"
    assert all(cls.status == "unauthenticated" for cls in CODES
               if issubclass(cls, errors.TokenError))


def test_claim_error_carries_claim() -> None:
    exc = errors.ExpiredToken("late", claim="exp")
    assert (exc.claim, exc.error, exc.description, str(exc)) == (
        "exp", "expired_token", "late", "expired_token: late")
    assert isinstance(exc, errors.ClaimError) and isinstance(exc, errors.TokenError)


def test_principal_helpers() -> None:
    p = Principal(issuer="i", subject="s", client_id=None, groups=frozenset({"b", "a"}),
                  roles=frozenset(), scopes=frozenset({"z", "y"}), claims={"sub": "s"},
                  expires_at=1.0, sid=None, credential=CredentialKind.SESSION)
    q = p.with_credential(CredentialKind.TICKET)
    assert q.credential is CredentialKind.TICKET and p.credential is CredentialKind.SESSION
    d = q.as_dict()
    assert d["groups"] == ["a", "b"] and d["scopes"] == ["y", "z"] and d["credential"] == "ticket"
    json.dumps(d)
    with pytest.raises(TypeError):
        p.claims["x"] = 1  # type: ignore[index]
