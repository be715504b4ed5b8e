"""Repeated member names in a JWS header or JWT claim set are refused (RFC 7515 §4,
RFC 7519 §4 allow refusal; we choose it), at any depth, for every kind of token.

The tokens are written as JSON text by hand, since a dict cannot hold a repeated key,
and signed with the trusted key, so only the repetition can be the reason for refusal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from oidc import errors
from oidc.config import IssuerConfig
from oidc.jwks import JwksCache
from oidc.jws import peek
from oidc.types import CredentialKind, Principal
from oidc.verify import verify_access_token, verify_id_token, verify_logout_token

from .factories import (
    AT_HEADER,
    ID_HEADER,
    KEY1,
    LOGOUT_HEADER,
    NOW,
    access_claims,
    b64,
    id_claims,
    logout_claims,
)


def signed(header: str, payload: str) -> str:
    """A compact JWS over exactly these JSON texts, signed RS256 with the trusted key."""
    signing_input = f"{b64(header.encode())}.{b64(payload.encode())}"
    assert KEY1.private_key is not None
    signature = KEY1.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def with_member(obj: Mapping[str, object], text: str) -> str:
    """``obj`` as JSON text with ``text`` (raw members) appended inside the outer braces."""
    return json.dumps(obj)[:-1] + ", " + text + "}"


AT = json.dumps(AT_HEADER)
TWO_SUBS = with_member(access_claims(), '"sub": "admin"')
TWO_ALGS = with_member(AT_HEADER, '"alg": "none"')
NESTED = with_member(access_claims(), '"realm_access": {"roles": ["user"], "roles": ["admin"]}')
IN_ARRAY = with_member(access_claims(), '"acr_values": [{"a": 1, "a": 2}]')

CASES = {
    "two-sub-in-claims": (AT, TWO_SUBS, "payload"),
    "two-alg-in-header": (TWO_ALGS, json.dumps(access_claims()), "header"),
    "nested-object": (AT, NESTED, "payload"),
    "object-in-array": (AT, IN_ARRAY, "payload"),
    "nested-in-header": (with_member(AT_HEADER, '"x": {"k": 1, "k": 1}'),
                         json.dumps(access_claims()), "header"),
}


async def verify(raw: str, config: IssuerConfig, keys: JwksCache) -> Principal:
    return await verify_access_token(raw, {config.issuer: config}, {config.issuer: keys},
                                     now=NOW, credential=CredentialKind.BEARER)


@pytest.mark.parametrize(("header", "payload", "segment"), CASES.values(), ids=CASES.keys())
def test_peek_refuses_repeated_member(header: str, payload: str, segment: str) -> None:
    with pytest.raises(errors.DuplicateMember) as caught:
        peek(signed(header, payload), max_bytes=16384)
    assert caught.value.error == "duplicate_member"
    assert caught.value.description == f"{segment} repeats a member name"
    assert "admin" not in str(caught.value)  # no token material in the description


@pytest.mark.parametrize(("header", "payload", "segment"), CASES.values(), ids=CASES.keys())
async def test_access_token_with_repeated_member_refused(
        config: IssuerConfig, keys: JwksCache, header: str, payload: str, segment: str) -> None:
    with pytest.raises(errors.DuplicateMember):
        await verify(signed(header, payload), config, keys)


async def test_same_name_at_different_levels_is_accepted(config: IssuerConfig, keys: JwksCache) -> None:
    """Only a repetition inside ONE object is refused: ``act.sub`` beside ``sub`` is fine."""
    payload = json.dumps(access_claims(act={"sub": "agent"}, realm_access={"roles": ["r"]}))
    principal = await verify(signed(AT, payload), config, keys)
    assert principal.subject == "user-1" and principal.claims["act"] == {"sub": "agent"}


async def test_id_token_with_two_subs_refused(config: IssuerConfig, keys: JwksCache) -> None:
    raw = signed(json.dumps(ID_HEADER), with_member(id_claims(), '"sub": "user-2"'))
    with pytest.raises(errors.DuplicateMember):
        await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_id_token_with_two_algs_refused(config: IssuerConfig, keys: JwksCache) -> None:
    raw = signed(with_member(ID_HEADER, '"alg": "RS256"'), json.dumps(id_claims()))
    with pytest.raises(errors.DuplicateMember):
        await verify_id_token(raw, config, keys, now=NOW, nonce="n-123")


async def test_logout_token_with_nested_repeat_refused(config: IssuerConfig, keys: JwksCache) -> None:
    events = '"events": {"http://schemas.openid.net/event/backchannel-logout": {}, ' \
             '"http://schemas.openid.net/event/backchannel-logout": {}}'
    claims = {k: v for k, v in logout_claims().items() if k != "events"}
    raw = signed(json.dumps(LOGOUT_HEADER), with_member(claims, events))
    with pytest.raises(errors.DuplicateMember):
        await verify_logout_token(raw, config, keys, now=NOW)


async def test_the_same_tokens_without_repeats_are_accepted(config: IssuerConfig, keys: JwksCache) -> None:
    """The refusals above are due to the repetition alone: the same builder, no repeat."""
    assert (await verify(signed(AT, json.dumps(access_claims())), config, keys)).subject
    await verify_id_token(signed(json.dumps(ID_HEADER), json.dumps(id_claims())), config, keys,
                          now=NOW, nonce="n-123")
    await verify_logout_token(signed(json.dumps(LOGOUT_HEADER), json.dumps(logout_claims())),
                              config, keys, now=NOW)


def test_duplicate_member_is_a_malformed_token_with_its_own_code() -> None:
    assert issubclass(errors.DuplicateMember, errors.MalformedToken)
    assert errors.DuplicateMember.status == "unauthenticated"
    assert 'DuplicateMember         "duplicate_member"' in (errors.__doc__ or "")
    codes = [c.error for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.OidcError)]
    assert codes.count("duplicate_member") == 1
