"""Logout tokens: OpenID Connect Back-Channel Logout 1.0 §2.4 and §2.6."""

from __future__ import annotations

from typing import Any

import pytest

from oidc import errors
from oidc.config import IssuerConfig
from oidc.jwks import JwksCache
from oidc.logout import LOGOUT_MAX_AGE, LogoutToken, MemoryReplayStore
from oidc.verify import accept_logout_token, verify_logout_token

from .factories import (
    BCL_EVENT,
    ISSUER,
    LOGOUT_HEADER,
    NOW,
    FakeClock,
    encode,
    logout_claims,
)


async def test_valid_logout_token(config: IssuerConfig, keys: JwksCache) -> None:
    token = await verify_logout_token(encode(LOGOUT_HEADER, logout_claims()), config, keys,
                                      now=NOW)
    assert token == LogoutToken(issuer=ISSUER, subject="user-1", sid="sid-1", jti="logout-1",
                                expires_at=NOW + 115)


@pytest.mark.parametrize("typ", [None, "JWT", "application/logout+jwt"])
async def test_typ_absent_or_jwt_accepted(config: IssuerConfig, keys: JwksCache, typ: str | None) -> None:
    header = {**LOGOUT_HEADER, "typ": typ} if typ else {"alg": "RS256", "kid": "k1"}
    assert await verify_logout_token(encode(header, logout_claims()), config, keys, now=NOW)


async def test_at_jwt_typ_refused(config: IssuerConfig, keys: JwksCache) -> None:
    with pytest.raises(errors.WrongTokenType):
        await verify_logout_token(encode({**LOGOUT_HEADER, "typ": "at+jwt"}, logout_claims()),
                                  config, keys, now=NOW)


async def test_without_exp_lives_max_age_from_iat(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(LOGOUT_HEADER, logout_claims(exp=None))
    token = await verify_logout_token(raw, config, keys, now=NOW)
    assert token.expires_at == NOW - 5 + LOGOUT_MAX_AGE
    with pytest.raises(errors.ExpiredToken):
        await verify_logout_token(raw, config, keys, now=NOW + LOGOUT_MAX_AGE + 60)


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        (logout_claims(events=None), errors.InvalidEvents),
        (logout_claims(events=[BCL_EVENT]), errors.InvalidEvents),
        (logout_claims(events={"http://example.com/other": {}}), errors.InvalidEvents),
        (logout_claims(events={BCL_EVENT: "yes"}), errors.InvalidEvents),
        (logout_claims(nonce="n"), errors.NonceInLogoutToken),
        (logout_claims(sub=None, sid=None), errors.MissingClaim),
        (logout_claims(sub=""), errors.MissingClaim),
        (logout_claims(jti=None), errors.MissingClaim),
        (logout_claims(aud="another-client"), errors.InvalidAudience),
        (logout_claims(iss=ISSUER + "/"), errors.InvalidIssuer),
        (logout_claims(iat=None), errors.MissingClaim),
        (logout_claims(iat=NOW + 31), errors.IssuedInFuture),
        (logout_claims(exp=NOW - 31), errors.ExpiredToken),
    ],
    ids=["events-missing", "events-list", "events-no-member", "events-member-not-object",
         "nonce", "no-sub-no-sid", "empty-sub", "no-jti", "wrong-aud", "wrong-iss", "no-iat",
         "future-iat", "expired"],
)
async def test_logout_claim_checks(config: IssuerConfig, keys: JwksCache, claims: dict[str, Any],
                                   error: type[Exception]) -> None:
    with pytest.raises(error):
        await verify_logout_token(encode(LOGOUT_HEADER, claims), config, keys, now=NOW)


@pytest.mark.parametrize("claims", [logout_claims(sub=None), logout_claims(sid=None)])
async def test_sub_or_sid_is_enough(config: IssuerConfig, keys: JwksCache, claims: dict[str, Any]) -> None:
    assert await verify_logout_token(encode(LOGOUT_HEADER, claims), config, keys, now=NOW)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none(config: IssuerConfig, keys: JwksCache, alg: str) -> None:
    raw = encode({**LOGOUT_HEADER, "alg": alg}, logout_claims(), key=None)
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify_logout_token(raw, config, keys, now=NOW)


async def test_replay_refused(config: IssuerConfig, keys: JwksCache) -> None:
    store = MemoryReplayStore(clock=FakeClock(NOW))
    raw = encode(LOGOUT_HEADER, logout_claims())
    await accept_logout_token(raw, config, keys, store, now=NOW)
    with pytest.raises(errors.ReplayedToken):
        await accept_logout_token(raw, config, keys, store, now=NOW)
    other = encode(LOGOUT_HEADER, logout_claims(jti="logout-2"))
    assert (await accept_logout_token(other, config, keys, store, now=NOW)).jti == "logout-2"


async def test_memory_replay_store_expires_and_is_bounded() -> None:
    clock = FakeClock(100.0)
    store = MemoryReplayStore(max_entries=2, clock=clock)
    assert await store.remember("a", 110.0)
    assert not await store.remember("a", 110.0)
    clock.now = 110.0
    assert await store.remember("a", 120.0)  # expired entry may be recorded again
    assert await store.remember("b", 120.0)
    assert await store.remember("c", 120.0)
    assert len(store) == 2
    assert not await store.remember("c", 120.0)
