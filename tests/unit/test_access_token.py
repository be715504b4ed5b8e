"""Access tokens: RFC 9068 §4 and the RFC 8725 attacks, one check per case."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import RSAKey

from oidc import errors
from oidc.config import IssuerConfig
from oidc.jwks import JwksCache
from oidc.policy import RoutePolicy, evaluate
from oidc.profiles import ENTRA, KEYCLOAK, OKTA
from oidc.types import CredentialKind, Principal
from oidc.verify import verify_access_token

from .factories import (
    AT_HEADER,
    AUDIENCE,
    BCL_EVENT,
    CLIENT_ID,
    ID_HEADER,
    ISSUER,
    KEY3,
    LOGOUT_HEADER,
    NOW,
    FakeClock,
    FakeFetcher,
    access_claims,
    b64,
    encode,
    id_claims,
    logout_claims,
    make_config,
)


async def verify(raw: str, config: IssuerConfig, keys: JwksCache, *, now: float = NOW,
                 credential: CredentialKind = CredentialKind.BEARER) -> Principal:
    return await verify_access_token(raw, {config.issuer: config}, {config.issuer: keys},
                                     now=now, credential=credential)


async def test_valid_token_gives_principal(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(AT_HEADER, access_claims(groups=["eng"], roles=["admin"], sid="s1"))
    p = await verify(raw, config, keys, credential=CredentialKind.SUBPROTOCOL)
    assert (p.issuer, p.subject, p.client_id, p.sid) == (ISSUER, "user-1", "spa", "s1")
    assert p.scopes == {"openid", "ws.read"}
    assert p.groups == {"eng"} and p.roles == {"admin"}
    assert p.expires_at == NOW + 300 and p.kid == "k1" and p.token_format == "jwt"
    assert p.credential is CredentialKind.SUBPROTOCOL
    assert p.jti_hash is not None and len(p.jti_hash) == 16 and "jti-1" not in p.jti_hash
    assert p.claims["sub"] == "user-1"
    with pytest.raises(TypeError):
        p.claims["sub"] = "x"  # type: ignore[index]


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_in_any_spelling(config: IssuerConfig, keys: JwksCache, alg: str) -> None:
    raw = encode({**AT_HEADER, "alg": alg}, access_claims(), key=None)
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify(raw, config, keys)


@pytest.mark.parametrize("allowed", [("RS256",), ("RS256", "PS256")])
async def test_hs256_signed_with_public_key(keys: JwksCache, allowed: tuple[str, ...]) -> None:
    key = keys.get("k1")
    assert isinstance(key, RSAKey)
    pem = key.as_pem()
    raw = encode({**AT_HEADER, "alg": "HS256"}, access_claims(), hmac_secret=pem)
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify(raw, make_config(algorithms=allowed), keys)


async def test_alg_outside_allowlist(keys: JwksCache) -> None:
    raw = encode({**AT_HEADER, "alg": "RS384"}, access_claims())
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify(raw, make_config(algorithms=("RS256",)), keys)


@pytest.mark.parametrize(
    "extra",
    [
        {"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIB"]},
    ],
    ids=["jwk", "jku", "x5u", "x5c"],
)
async def test_embedded_key_headers(config: IssuerConfig, keys: JwksCache, extra: dict[str, Any]) -> None:
    raw = encode({**AT_HEADER, **extra}, access_claims())
    with pytest.raises(errors.ForbiddenHeader):
        await verify(raw, config, keys)


async def test_unknown_crit(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode({**AT_HEADER, "crit": ["exp"], "exp": 1}, access_claims())
    with pytest.raises(errors.UnknownCritical):
        await verify(raw, config, keys)


async def test_unknown_kid(config: IssuerConfig, keys: JwksCache, fetcher: FakeFetcher) -> None:
    raw = encode({**AT_HEADER, "kid": "k3"}, access_claims(), key=KEY3)
    with pytest.raises(errors.UnknownKey):
        await verify(raw, config, keys)
    assert fetcher.calls == 1


async def test_flood_of_unknown_kids_refetches_a_burst_then_once_per_interval(
        config: IssuerConfig, keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    for i in range(50):
        raw = encode({**AT_HEADER, "kid": f"forged-{i}"}, access_claims())
        with pytest.raises(errors.UnknownKey):
            await verify(raw, config, keys)
    assert fetcher.calls == keys.refetch_burst
    clock.now += keys.min_refetch_interval
    with pytest.raises(errors.UnknownKey):
        await verify(encode({**AT_HEADER, "kid": "again"}, access_claims()), config, keys)
    assert fetcher.calls == keys.refetch_burst + 1


async def test_stripped_signature(config: IssuerConfig, keys: JwksCache) -> None:
    head, body, _ = encode(AT_HEADER, access_claims()).split(".")
    with pytest.raises(errors.BadSignature):
        await verify(f"{head}.{body}.", config, keys)


async def test_signature_by_another_key(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(AT_HEADER, access_claims(), key=KEY3)  # claims kid k1, signed by k3
    with pytest.raises(errors.BadSignature):
        await verify(raw, config, keys)


async def test_tampered_payload(config: IssuerConfig, keys: JwksCache) -> None:
    head, _, sig = encode(AT_HEADER, access_claims()).split(".")
    body = b64(b'{"iss":"%s","sub":"admin"}' % ISSUER.encode())
    with pytest.raises(errors.BadSignature):
        await verify(f"{head}.{body}.{sig}", config, keys)


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        (access_claims(exp=NOW - 31), errors.ExpiredToken),
        (access_claims(exp=None), errors.MissingClaim),
        (access_claims(exp="2099-01-01"), errors.MissingClaim),
        (access_claims(exp=True), errors.MissingClaim),
        (access_claims(nbf=NOW + 31), errors.NotYetValid),
        (access_claims(iat=NOW + 31), errors.IssuedInFuture),
        (access_claims(iat=None), errors.MissingClaim),
        (access_claims(aud="someone-else"), errors.InvalidAudience),
        (access_claims(aud=["a", "b"]), errors.InvalidAudience),
        (access_claims(aud=None), errors.MissingClaim),
        (access_claims(sub=None), errors.MissingClaim),
        (access_claims(sub=""), errors.MissingClaim),
    ],
    ids=["expired", "no-exp", "exp-string", "exp-bool", "future-nbf", "future-iat", "no-iat",
         "wrong-aud", "wrong-aud-list", "no-aud", "no-sub", "empty-sub"],
)
async def test_claim_failures(config: IssuerConfig, keys: JwksCache, claims: dict[str, Any],
                              error: type[Exception]) -> None:
    with pytest.raises(error):
        await verify(encode(AT_HEADER, claims), config, keys)


async def test_leeway_accepts_slightly_expired(config: IssuerConfig, keys: JwksCache) -> None:
    raw = encode(AT_HEADER, access_claims(exp=NOW - 29, nbf=NOW + 29, iat=NOW + 29))
    assert (await verify(raw, config, keys)).subject == "user-1"


@pytest.mark.parametrize("iss", [ISSUER + "/", ISSUER.upper(), "https://evil.example.com"])
async def test_wrong_issuer(config: IssuerConfig, keys: JwksCache, iss: str) -> None:
    with pytest.raises(errors.UnknownIssuer):
        await verify(encode(AT_HEADER, access_claims(iss=iss)), config, keys)


async def test_other_issuer_cannot_use_this_issuers_keys(config: IssuerConfig, keys: JwksCache) -> None:
    other = make_config(issuer="https://other.example.com")
    raw = encode(AT_HEADER, access_claims(iss=other.issuer))
    with pytest.raises(errors.KeysUnavailable):  # no cache for "other": never falls back
        await verify_access_token(raw, {ISSUER: config, other.issuer: other}, {ISSUER: keys},
                                  now=NOW, credential=CredentialKind.BEARER)


async def test_token_for_another_client(keys: JwksCache) -> None:
    config = make_config(allowed_client_ids=frozenset({"spa"}))
    assert (await verify(encode(AT_HEADER, access_claims()), config, keys)).client_id == "spa"
    with pytest.raises(errors.InvalidClient):
        await verify(encode(AT_HEADER, access_claims(client_id="intruder")), config, keys)
    with pytest.raises(errors.InvalidClient):
        await verify(encode(AT_HEADER, access_claims(client_id=None)), config, keys)


async def test_id_token_presented_as_access_token(keys: JwksCache) -> None:
    config = make_config(audiences=frozenset({AUDIENCE, CLIENT_ID}), profile=KEYCLOAK)
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(ID_HEADER, id_claims()), config, keys)


@pytest.mark.parametrize("claim", ["nonce", "at_hash", "c_hash"])
async def test_id_token_claims_refused(keys: JwksCache, claim: str) -> None:
    config = make_config(profile=KEYCLOAK)
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(ID_HEADER, access_claims(**{claim: "x"})), config, keys)


@pytest.mark.parametrize("typ", ["ID", "Logout", "Refresh", 1])
async def test_keycloak_typ_claim_must_be_bearer(keys: JwksCache, typ: str | int) -> None:
    config = make_config(profile=KEYCLOAK)
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(ID_HEADER, access_claims(typ=typ)), config, keys)


async def test_logout_token_presented_as_access_token(keys: JwksCache) -> None:
    config = make_config(audiences=frozenset({CLIENT_ID}), profile=KEYCLOAK)
    claims = {**logout_claims(), "exp": NOW + 100}
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(LOGOUT_HEADER, claims), config, keys)
    with pytest.raises(errors.WrongTokenType):  # even with typ JWT: the events claim gives it away
        await verify(encode(ID_HEADER, claims), config, keys)
    assert BCL_EVENT in claims["events"]


@pytest.mark.parametrize("typ", ["JWT", None, "logout+jwt", "application/jwt"])
async def test_generic_profile_requires_at_jwt(
        config: IssuerConfig, keys: JwksCache, typ: str | None) -> None:
    header: dict[str, Any] = {**AT_HEADER, "typ": typ} if typ else {"alg": "RS256", "kid": "k1"}
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(header, access_claims()), config, keys)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_at_jwt_spellings_accepted(config: IssuerConfig, keys: JwksCache, typ: str) -> None:
    assert await verify(encode({**AT_HEADER, "typ": typ}, access_claims()), config, keys)


async def test_oversized_token_rejected_before_parsing(keys: JwksCache) -> None:
    config = make_config(max_token_bytes=1024)
    with pytest.raises(errors.TokenTooLarge):
        await verify("!" * 1025, config, keys)  # not even a JWS: size wins
    with pytest.raises(errors.TokenTooLarge):
        await verify(encode(AT_HEADER, access_claims(pad="x" * 2000)), config, keys)


@pytest.mark.parametrize(
    "raw", ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", "e30.W10.", "bnVsbA.e30."],
    ids=["empty", "one", "two", "four", "bad-b64", "payload-list", "header-null"],
)
async def test_malformed(config: IssuerConfig, keys: JwksCache, raw: str) -> None:
    with pytest.raises(errors.MalformedToken):
        await verify(raw, config, keys)


async def test_valid_token_lacking_route_scope_is_denied_by_policy(
        config: IssuerConfig, keys: JwksCache) -> None:
    principal = await verify(encode(AT_HEADER, access_claims(scope="openid")), config, keys)
    policy = RoutePolicy(name="r", path="/ws/", consumer="c", scopes=frozenset({"ws.read"}),
                         claims=(), credentials=frozenset({CredentialKind.BEARER}))
    decision = evaluate(principal, policy, now=NOW)
    assert (decision.allowed, decision.reason, decision.detail) == (False, "missing_scope",
                                                                    "ws.read")


async def test_keycloak_shaped_token(keys: JwksCache) -> None:
    config = make_config(profile=KEYCLOAK)
    claims = access_claims(
        client_id=None, azp="spa", typ="Bearer", scope="openid profile ws.read",
        groups=["/engineering", "/engineering/backend"],
        realm_access={"roles": ["offline_access", "operator"]},
        resource_access={CLIENT_ID: {"roles": ["publisher"]}, "other": {"roles": ["nope"]}},
    )
    p = await verify(encode({**ID_HEADER, "typ": "JWT"}, claims), config, keys)
    assert p.groups == {"/engineering", "/engineering/backend"}
    assert p.roles == {"offline_access", "operator", "publisher"}
    assert p.scopes == {"openid", "profile", "ws.read"}
    assert p.client_id == "spa"


async def test_entra_shaped_token(keys: JwksCache) -> None:
    config = make_config(profile=ENTRA, allowed_client_ids=frozenset({"app-1", "app-2"}))
    v2 = access_claims(client_id=None, azp="app-1", scope=None, scp="ws.read ws.write",
                       roles=["Gateway.Admin"], groups=["8c1f-guid"], ver="2.0")
    p = await verify(encode(ID_HEADER, v2), config, keys)
    assert p.scopes == {"ws.read", "ws.write"}
    assert p.roles == {"Gateway.Admin"} and p.groups == {"8c1f-guid"} and p.client_id == "app-1"
    v1 = access_claims(client_id=None, appid="app-2", scope=None, scp="ws.read", ver="1.0")
    assert (await verify(encode(ID_HEADER, v1), config, keys)).client_id == "app-2"


async def test_entra_refuses_at_jwt_typ_it_never_issues(keys: JwksCache) -> None:
    config = make_config(profile=ENTRA)
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(AT_HEADER, access_claims()), config, keys)


OKTA_HEADER = {"alg": "RS256", "kid": "k1"}  # Okta's access tokens carry no typ


async def test_okta_shaped_token_without_typ(keys: JwksCache) -> None:
    config = make_config(profile=OKTA)
    claims = access_claims(client_id=None, cid="0oa1cli", uid="00u1", scope=None,
                           scp=["openid", "ws.read"], groups=["Everyone", "Engineering"], ver=1)
    p = await verify(encode(OKTA_HEADER, claims), config, keys)
    assert p.scopes == {"openid", "ws.read"} and p.groups == {"Everyone", "Engineering"}
    assert p.client_id == "0oa1cli"
    assert (await verify(encode(ID_HEADER, claims), config, keys)).subject == "user-1"


async def test_okta_without_typ_still_refuses_id_and_logout_tokens(keys: JwksCache) -> None:
    config = make_config(profile=OKTA)
    with pytest.raises(errors.InvalidAudience):  # an ID token's aud is the client, not the API
        await verify(encode(OKTA_HEADER, id_claims(nonce=None)), config, keys)
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(OKTA_HEADER, access_claims(nonce="n")), config, keys)
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(LOGOUT_HEADER, access_claims()), config, keys)


def test_a_typ_less_profile_may_not_accept_its_own_client_as_audience() -> None:
    with pytest.raises(ValueError, match="audience"):
        make_config(profile=OKTA, audiences=frozenset({CLIENT_ID, AUDIENCE}))


async def test_generic_profile_requires_typ(keys: JwksCache) -> None:
    with pytest.raises(errors.WrongTokenType):
        await verify(encode(OKTA_HEADER, access_claims()), make_config(), keys)


async def test_keycloak_client_id_with_dots_finds_its_client_roles(keys: JwksCache) -> None:
    config = make_config(profile=KEYCLOAK, client_id="acme.gateway")
    claims = access_claims(resource_access={"acme.gateway": {"roles": ["publisher"]},
                                            "acme": {"gateway": {"roles": ["nope"]}}})
    p = await verify(encode({**ID_HEADER, "typ": "JWT"}, claims), config, keys)
    assert p.roles == {"publisher"}


async def test_key_declaring_alg_only_verifies_that_alg(keys: JwksCache) -> None:
    """KEY1's JWK says alg RS256: a PS256 token naming kid k1 is refused even if allowed."""
    config = make_config(algorithms=("RS256", "PS256"))
    raw = encode({**AT_HEADER, "alg": "PS256"}, access_claims())
    with pytest.raises(errors.UnsupportedAlgorithm):
        await verify(raw, config, keys)


async def test_size_cap_is_per_issuer(keys: JwksCache) -> None:
    small = make_config(max_token_bytes=1024)
    big = make_config(issuer="https://big.example.com", max_token_bytes=65536)
    raw = encode(AT_HEADER, access_claims(pad="x" * 2000))
    with pytest.raises(errors.TokenTooLarge):
        await verify_access_token(raw, {small.issuer: small, big.issuer: big},
                                  {small.issuer: keys, big.issuer: keys}, now=NOW,
                                  credential=CredentialKind.BEARER)
