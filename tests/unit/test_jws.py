"""The signature layer on its own: peek, header screen, typ, joserfc verification."""

from __future__ import annotations

from typing import Any

import pytest

from oidc import errors
from oidc.jws import check_header, check_typ, peek, verify_signature

from .factories import AT_HEADER, KEY1, KEY2, access_claims, b64, encode

ALGS = ("RS256",)


def test_peek_returns_unverified_parts() -> None:
    t = peek(encode(AT_HEADER, access_claims()), max_bytes=4096)
    assert t.header["kid"] == "k1" and t.claims["sub"] == "user-1"


def test_size_cap_counts_bytes() -> None:
    with pytest.raises(errors.TokenTooLarge):
        peek("é" * 600, max_bytes=1000)  # 600 chars, 1200 bytes


@pytest.mark.parametrize(
    "raw",
    [
        "e30.e30",                        # two segments
        "e30=.e30.",                      # padding
        f"{b64(b'{')}.e30.",              # header not JSON
        f"e30.{b64(b'[1]')}.",            # payload not an object
        f"{b64(bytes([0xff]))}.e30.",     # not UTF-8
        f"e30.{b64(bytes([0xef, 0xbb, 0xbf]) + b'{}')}.",  # byte order mark (RFC 7515 §5.2)
        "e30.e30.a",                      # impossible base64 length
    ],
)
def test_peek_malformed(raw: str) -> None:
    with pytest.raises(errors.MalformedToken):
        peek(raw, max_bytes=4096)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ({}, errors.UnsupportedAlgorithm),
        ({"alg": "none"}, errors.UnsupportedAlgorithm),
        ({"alg": "rs256"}, errors.UnsupportedAlgorithm),
        ({"alg": "HS256"}, errors.UnsupportedAlgorithm),
        ({"alg": "RS256", "jwk": {}}, errors.ForbiddenHeader),
        ({"alg": "RS256", "crit": []}, errors.UnknownCritical),
        ({"alg": "RS256", "b64": False}, errors.MalformedToken),
        ({"alg": "RS256", "kid": 7}, errors.MalformedToken),
    ],
)
def test_check_header(header: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        check_header(header, ALGS)


def test_check_header_accepts_plain() -> None:
    check_header({"alg": "RS256", "kid": "k", "typ": "at+jwt", "b64": True}, ALGS)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", " at+jwt "])
def test_check_typ_accepts(typ: str) -> None:
    check_typ({"typ": typ}, frozenset({"at+jwt"}))


@pytest.mark.parametrize("header", [{"typ": "jwt"}, {}, {"typ": 1}, {"typ": "application/"}])
def test_check_typ_refuses(header: dict[str, Any]) -> None:
    with pytest.raises(errors.WrongTokenType):
        check_typ(header, frozenset({"at+jwt"}))


def test_check_typ_optional() -> None:
    check_typ({}, frozenset({"logout+jwt"}), required=False)


def test_verify_signature() -> None:
    raw = encode(AT_HEADER, access_claims())
    assert verify_signature(raw, KEY1, ALGS).claims["sub"] == "user-1"
    with pytest.raises(errors.BadSignature):
        verify_signature(raw, KEY2, ALGS)


@pytest.mark.parametrize("algs", [["RS256"], ["HS256", "RS256"]])
def test_hs256_with_rsa_key_refused_by_joserfc_layer(algs: list[str]) -> None:
    """Even if HS256 slipped past the allowlist, an RSA key never verifies HMAC."""
    raw = encode({"alg": "HS256"}, access_claims(), hmac_secret=KEY1.as_pem(private=False))
    with pytest.raises((errors.UnsupportedAlgorithm, errors.BadSignature)):
        verify_signature(raw, KEY1, algs)


def test_verify_signature_never_accepts_none() -> None:
    raw = encode({"alg": "none"}, access_claims(), key=None)
    with pytest.raises((errors.UnsupportedAlgorithm, errors.BadSignature)):
        verify_signature(raw, KEY1, ["none", "RS256"])


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_none_refused_even_if_listed(alg: str) -> None:
    with pytest.raises(errors.UnsupportedAlgorithm):
        check_header({"alg": alg}, [alg, "RS256"])
