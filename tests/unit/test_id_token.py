"""ID tokens: every OIDC Core 1.0 §3.1.3.7 check, one case each."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import RSAKey

from oidc import errors
from oidc.config import IssuerConfig
from oidc.jwks import JwksCache
from oidc.verify import verify_id_token, verify_userinfo_sub

from .factories import (
    CLIENT_ID,
    ID_HEADER,
    ISSUER,
    KEY1,
    KEY3,
    LOGOUT_HEADER,
    NOW,
    FakeClock,
    FakeFetcher,
    encode,
    id_claims,
    jwks_of,
    logout_claims,
    make_config,
)


async def test_valid_id_token(config: IssuerConfig, keys: JwksCache) -> None:
    token = await verify_id_token(encode(ID_HEADER, id_claims()), config, keys, now=NOW,
                                  nonce="n-123")
    assert token.claims["sub"] == "user-1" and token.header["kid"] == "k1"


@pytest.mark.parametrize(
    ("claims", "nonce", "error"),
    [
        (id_claims(iss=ISSUER + "/"), "n-123", errors.InvalidIssuer),
        (id_claims(iss="https://evil.example.com"), "n-123", errors.InvalidIssuer),
        (id_claims(iss=None), "n-123", errors.MissingClaim),
        (id_claims(aud="another-client"), "n-123", errors.InvalidAudience),
        (id_claims(aud=["another", "third"], azp=CLIENT_ID), "n-123", errors.InvalidAudience),
        (id_claims(aud=[CLIENT_ID, "other"]), "n-123", errors.MissingClaim),
        (id_claims(azp="other"), "n-123", errors.InvalidAuthorizedParty),
        (id_claims(aud=[CLIENT_ID, "other"], azp="other"), "n-123",
         errors.InvalidAuthorizedParty),
        (id_claims(exp=NOW - 31), "n-123", errors.ExpiredToken),
        (id_claims(exp=None), "n-123", errors.MissingClaim),
        (id_claims(iat=None), "n-123", errors.MissingClaim),
        (id_claims(iat=NOW + 31), "n-123", errors.IssuedInFuture),
        (id_claims(nonce="other"), "n-123", errors.InvalidNonce),
        (id_claims(nonce=None), "n-123", errors.InvalidNonce),
        (id_claims(nonce=123), "n-123", errors.InvalidNonce),
        (id_claims(sub=None), "n-123", errors.MissingClaim),
    ],
    ids=["iss-trailing-slash", "iss-other", "iss-missing", "aud-other", "aud-list-without-us",
         "multi-aud-no-azp", "azp-mismatch", "multi-aud-azp-mismatch", "expired", "exp-missing",
         "iat-missing", "iat-future", "nonce-mismatch", "nonce-missing", "nonce-not-string",
         "sub-missing"],
)
async def test_id_token_claim_checks(config: IssuerConfig, keys: JwksCache, claims: dict[str, Any],
                                     nonce: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        await verify_id_token(encode(ID_HEADER, claims), config, keys, now=NOW, nonce=nonce)


async def test_multiple_audiences_with_matching_azp(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(ID_HEADER, id_claims(aud=[CLIENT_ID, "other"], azp=CLIENT_ID))
    assert await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_nonce_not_expected_is_not_checked(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(ID_HEADER, id_claims(nonce=None))
    assert await verify_id_token(raw, config, keys, now=NOW, nonce=None)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none(config: IssuerConfig, keys: JwksCache, alg: str) -> None:
    raw = encode({**ID_HEADER, "alg": alg}, id_claims(), key=None)
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_alg_not_in_allowlist(keys: JwksCache) -> None:
    config = make_config(algorithms=("PS256",))
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify_id_token(encode(ID_HEADER, id_claims()), config, keys, now=NOW,
                              nonce="n-123")


async def test_hs256_with_provider_public_key(config: IssuerConfig, keys: JwksCache) -> None:
    key = keys.get("k1")
    assert isinstance(key, RSAKey)
    pem = key.as_pem()
    raw = encode({**ID_HEADER, "alg": "HS256"}, id_claims(), hmac_secret=pem)
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_no_kid_with_single_key_accepted(config: IssuerConfig) -> None:
    keys = JwksCache.from_keys(jwks_of(KEY1), clock=FakeClock())
    raw = encode({"alg": "RS256", "typ": "JWT"}, id_claims())
    assert await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_no_kid_with_several_keys_refused(
        config: IssuerConfig, keys: JwksCache, fetcher: FakeFetcher) -> None:
    raw = encode({"alg": "RS256", "typ": "JWT"}, id_claims())
    with pytest.raises(errors.UnknownKey):
        await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")
    assert fetcher.calls == 0


async def test_bad_signature(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(ID_HEADER, id_claims(), key=KEY3)
    with pytest.raises(errors.BadSignature):
        await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_logout_token_is_not_an_id_token(config: IssuerConfig, keys: JwksCache) -> None:
    with pytest.raises(errors.WrongTokenType):
        await verify_id_token(encode(LOGOUT_HEADER, logout_claims()), config, keys, now=NOW,
                              nonce=None)
    with pytest.raises(errors.WrongTokenType):
        await verify_id_token(encode(ID_HEADER, logout_claims()), config, keys, now=NOW,
                              nonce=None)


async def test_needs_client_id(keys: JwksCache) -> None:
    with pytest.raises(ValueError, match="client_id"):
        await verify_id_token(encode(ID_HEADER, id_claims()), make_config(client_id=None), keys,
                              now=NOW, nonce=None)


def test_userinfo_sub_must_match() -> None:
    verify_userinfo_sub({"sub": "user-1"}, {"sub": "user-1", "email": "a@b"})
    with pytest.raises(errors.InvalidSubject):
        verify_userinfo_sub({"sub": "user-1"}, {"sub": "user-2"})
    with pytest.raises(errors.InvalidSubject):
        verify_userinfo_sub({"sub": "user-1"}, {"email": "a@b"})


async def test_a_new_kid_at_sign_in_is_fetched_even_with_the_bucket_empty(
        config: IssuerConfig, keys: JwksCache, fetcher: FakeFetcher) -> None:
    """Issue 20: an ID token comes from the token endpoint, so its unknown kid is a
    rotation, fetched at once even right after a flood used up the refetch bucket."""
    for _ in range(keys.refetch_burst):
        await keys.refresh()
    fetcher.document = jwks_of(KEY1, KEY3)
    token = await verify_id_token(encode({**ID_HEADER, "kid": "k3"}, id_claims(), key=KEY3),
                                  config, keys, now=NOW, nonce="n-123")
    assert token.header["kid"] == "k3"
    assert fetcher.calls == keys.refetch_burst + 1
