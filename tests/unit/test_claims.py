"""Claim validators in isolation, with an injected ``now``."""

from __future__ import annotations

import pytest

from oidc import claims as c
from oidc import errors

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "ok"),
    [(NOW + 1, True), (NOW - 29, True), (NOW - 30, False), (int(NOW) + 5, True)],
)
def test_exp_with_leeway(value: float, ok: bool) -> None:
    if ok:
        c.validate_exp({"exp": value}, NOW, 30)
    else:
        with pytest.raises(errors.ExpiredToken) as info:
            c.validate_exp({"exp": value}, NOW, 30)
        assert info.value.claim == "exp" and info.value.error == "expired_token"


@pytest.mark.parametrize("value", [True, "1", None, [1], float("nan")])
def test_numeric_dates_must_be_numbers(value: object) -> None:
    with pytest.raises(errors.MissingClaim):
        c.validate_exp({"exp": value}, NOW, 0)


def test_nbf_optional_and_checked() -> None:
    c.validate_nbf({}, NOW, 0)
    c.validate_nbf({"nbf": NOW}, NOW, 0)
    with pytest.raises(errors.NotYetValid):
        c.validate_nbf({"nbf": NOW + 1}, NOW, 0)


def test_iat_required_and_not_future() -> None:
    c.validate_iat({"iat": NOW + 5}, NOW, 10)
    with pytest.raises(errors.MissingClaim):
        c.validate_iat({}, NOW, 10)
    with pytest.raises(errors.IssuedInFuture):
        c.validate_iat({"iat": NOW + 11}, NOW, 10)


@pytest.mark.parametrize("iss", ["https://a/", "https://A", "https://a ", 1])
def test_iss_exact(iss: str | int) -> None:
    c.validate_iss({"iss": "https://a"}, "https://a")
    with pytest.raises(errors.InvalidIssuer):
        c.validate_iss({"iss": iss}, "https://a")


@pytest.mark.parametrize(("aud", "ok"), [("x", True), (["y", "x"], True), (["y"], False),
                                         ([], False), ([1], False), (1, False)])
def test_aud(aud: object, ok: bool) -> None:
    if ok:
        c.validate_aud({"aud": aud}, frozenset({"x"}))
    else:
        with pytest.raises(errors.InvalidAudience):
            c.validate_aud({"aud": aud}, frozenset({"x"}))


def test_aud_missing() -> None:
    with pytest.raises(errors.MissingClaim):
        c.validate_aud({}, frozenset({"x"}))


def test_azp_rules() -> None:
    c.validate_azp({"aud": "me"}, "me")
    c.validate_azp({"aud": ["me", "x"], "azp": "me"}, "me")
    with pytest.raises(errors.MissingClaim):
        c.validate_azp({"aud": ["me", "x"]}, "me")
    with pytest.raises(errors.InvalidAuthorizedParty):
        c.validate_azp({"aud": "me", "azp": "x"}, "me")


def test_nonce() -> None:
    c.validate_nonce({}, None)
    c.validate_nonce({"nonce": "n"}, "n")
    with pytest.raises(errors.InvalidNonce):
        c.validate_nonce({"nonce": "m"}, "n")
    with pytest.raises(errors.InvalidNonce):
        c.validate_nonce({}, "n")


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": 5}])
def test_sub(claims: dict[str, object]) -> None:
    assert c.validate_sub({"sub": "u"}) == "u"
    with pytest.raises(errors.MissingClaim):
        c.validate_sub(claims)
