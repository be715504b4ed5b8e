"""Every asymmetric algorithm a provider may sign with, verified on the parsed segments.

Tokens here are signed by joserfc (an independent signer), not by our own factories,
and verified by ``oidc.jws`` after one parse; then the full access-token path runs with
a JWKS of that key type.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from oidc import errors
from oidc.jwks import JwksCache
from oidc.jws import peek, verify_parsed, verify_signature
from oidc.types import CredentialKind
from oidc.verify import verify_access_token

from .factories import AT_HEADER, NOW, access_claims, b64, make_config

RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa"})
KEYS: dict[str, Key] = {
    "RS256": RSA,
    "RS384": RSA,
    "PS256": RSA,
    "ES256": ECKey.generate_key("P-256", parameters={"kid": "p256"}),
    "ES384": ECKey.generate_key("P-384", parameters={"kid": "p384"}),
    "ES512": ECKey.generate_key("P-521", parameters={"kid": "p521"}),
    "EdDSA": OKPKey.generate_key("Ed25519", parameters={"kid": "ed"}),
    "Ed25519": OKPKey.generate_key("Ed25519", parameters={"kid": "ed25519"}),  # RFC 9864
}


def public(key: Key) -> Key:
    return type(key).import_key(key.as_dict(private=False))


def signed(alg: str, claims: dict[str, Any] | None = None) -> str:
    key = KEYS[alg]
    header = {**AT_HEADER, "alg": alg, "kid": key.kid}
    with warnings.catch_warnings():  # joserfc's signer warns that "EdDSA" is deprecated
        warnings.simplefilter("ignore", SecurityWarning)
        return jwt.encode(header, claims or access_claims(), key, algorithms=[alg])


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_each_algorithm_verifies_with_its_public_key(alg: str) -> None:
    token = verify_signature(signed(alg), public(KEYS[alg]), [alg])
    assert token.claims["sub"] == "user-1" and token.header["alg"] == alg


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_payload_swapped_under_a_valid_signature_is_refused(alg: str) -> None:
    """The signature covers the exact segments peek decoded: splicing fails."""
    header, _, signature = signed(alg).split(".")
    other = b64(b'{"iss":"x","sub":"admin"}')
    with pytest.raises(errors.BadSignature):
        verify_signature(f"{header}.{other}.{signature}", public(KEYS[alg]), [alg])


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_truncated_signature_is_refused(alg: str) -> None:
    raw = signed(alg)
    with pytest.raises(errors.BadSignature):
        verify_signature(raw[:-8], public(KEYS[alg]), [alg])


@pytest.mark.parametrize(("alg", "wrong"), [("ES256", "ES384"), ("ES256", "EdDSA"),
                                            ("RS256", "ES256"), ("EdDSA", "RS256")])
def test_key_of_another_type_or_curve_is_refused(alg: str, wrong: str) -> None:
    with pytest.raises(errors.UnsupportedAlgorithm):
        verify_signature(signed(alg), public(KEYS[wrong]), [alg])


def test_algorithm_outside_the_allowlist_is_refused_even_with_the_right_key() -> None:
    unverified = peek(signed("ES256"), max_bytes=4096)
    with pytest.raises(errors.UnsupportedAlgorithm):
        verify_parsed(unverified, public(KEYS["ES256"]), ["RS256"])


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "Ed25519", "PS256"])
async def test_access_token_path_with_each_key_type(alg: str) -> None:
    config = make_config(algorithms=(alg,))
    keys = JwksCache.from_keys({"keys": [KEYS[alg].as_dict(private=False)]})
    principal = await verify_access_token(signed(alg), {config.issuer: config},
                                          {config.issuer: keys}, now=NOW,
                                          credential=CredentialKind.BEARER)
    assert principal.subject == "user-1" and principal.kid == KEYS[alg].kid
