"""Client authentication at the token endpoint: configuration (config/clientauth.py) and the
requests authlib's auth classes make (gateway/issuers/tokenclient.py).

The requests are captured in process with httpx's MockTransport; the Keycloak tier shows a
real provider accepts them (tests/keycloak/test_client_auth.py).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from config.clientauth import ClientAuth, load_client_auth
from config.env import load_config
from config.values import ConfigError
from gateway.issuers.tokenclient import http_auth

BASE = {"GATEWAY_OIDC_ISSUER": "https://idp.example.com", "GATEWAY_OIDC_CLIENT_ID": "gw",
        "GATEWAY_SECRET_KEY": "x" * 40}
TOKEN_ENDPOINT = "https://idp.example.com/token"
RSA = RSAKey.generate_key(2048)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "client.pem"
    path.write_bytes(RSA.as_pem(private=True))
    return path


def _jwt_env(key_file: Path, **extra: str) -> dict[str, str]:
    return {**BASE, "GATEWAY_OIDC_CLIENT_AUTH": "private_key_jwt",
            "GATEWAY_OIDC_CLIENT_KEY_FILE": str(key_file), "GATEWAY_OIDC_CLIENT_KEY_ID": "k1",
            **extra}


def test_default_is_client_secret_basic() -> None:
    auth = load_config({**BASE, "GATEWAY_OIDC_CLIENT_SECRET": "s"}).client_auth
    assert (auth.method, auth.secret) == ("client_secret_basic", "s")


def test_private_key_jwt_reads_the_key_and_its_algorithm(key_file: Path) -> None:
    auth = load_config(_jwt_env(key_file)).client_auth
    assert (auth.method, auth.key_id, auth.algorithm, auth.assertion_audience) == (
        "private_key_jwt", "k1", "RS256", "token_endpoint")
    assert auth.key is not None and auth.key.is_private
    assert "BEGIN" not in repr(auth) and "PRIVATE" not in repr(auth)


@pytest.mark.parametrize(("key", "alg"), [(ECKey.generate_key("P-256"), "ES256"),
                                          (ECKey.generate_key("P-384"), "ES384"),
                                          (OKPKey.generate_key("Ed25519"), "EdDSA")])
def test_ec_and_ed25519_keys_sign_with_their_algorithm(tmp_path: Path, key: ECKey | OKPKey,
                                                       alg: str) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(key.as_pem(private=True))
    assert load_client_auth(_jwt_env(path)).algorithm == alg


@pytest.mark.parametrize(("change", "fix"), [
    ({"GATEWAY_OIDC_CLIENT_AUTH": "client_secret_jwt", "GATEWAY_OIDC_CLIENT_SECRET": "s"},
     "use client_secret_basic, client_secret_post, private_key_jwt"),
    ({}, "GATEWAY_OIDC_CLIENT_SECRET is not set"),
    ({"GATEWAY_OIDC_CLIENT_AUTH": "client_secret_post"}, "GATEWAY_OIDC_CLIENT_SECRET is not set"),
    ({"GATEWAY_OIDC_CLIENT_SECRET": "s", "GATEWAY_OIDC_CLIENT_KEY_ID": "k1"},
     "set GATEWAY_OIDC_CLIENT_AUTH=private_key_jwt or unset them"),
    ({"GATEWAY_OIDC_CLIENT_AUTH": "private_key_jwt", "GATEWAY_OIDC_CLIENT_KEY_ID": "k1"},
     "GATEWAY_OIDC_CLIENT_KEY_FILE is not set"),
])
def test_bad_client_auth_fails_at_startup_naming_the_fix(change: dict[str, str], fix: str) -> None:
    with pytest.raises(ConfigError, match=fix):
        load_config({**BASE, **change})


def test_private_key_jwt_refusals_name_the_fix(tmp_path: Path, key_file: Path) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({"GATEWAY_OIDC_CLIENT_KEY_ID": ""}, "GATEWAY_OIDC_CLIENT_KEY_ID is not set"),
        ({"GATEWAY_OIDC_CLIENT_SECRET": "s"}, "unset the secret"),
        ({"GATEWAY_OIDC_CLIENT_KEY_FILE": str(tmp_path / "absent.pem")}, "cannot be read"),
        ({"GATEWAY_OIDC_CLIENT_ASSERTION_AUDIENCE": "client"}, "use token_endpoint"),
    ]
    public = tmp_path / "public.pem"
    public.write_bytes(RSA.as_pem(private=False))
    cases.append(({"GATEWAY_OIDC_CLIENT_KEY_FILE": str(public)}, "holds a public key"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    cases.append(({"GATEWAY_OIDC_CLIENT_KEY_FILE": str(garbage)}, "is not a PEM private key"))
    for change, fix in cases:
        with pytest.raises(ConfigError, match=fix):
            load_config(_jwt_env(key_file, **change))


def _sent(auth: httpx.Auth, form: dict[str, str]) -> httpx.Request:
    captured: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={})

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        client.post(TOKEN_ENDPOINT, data=form, auth=auth)
    return captured[0]


def test_client_secret_basic_sends_the_secret_in_the_header_only() -> None:
    sent = _sent(http_auth("gw", ClientAuth(secret="s3"), audience=""),
                 {"grant_type": "refresh_token", "refresh_token": "rt"})
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(b"gw:s3").decode()
    form = parse_qs(sent.content.decode())
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["rt"]}


def test_client_secret_post_sends_id_and_secret_in_the_body_only() -> None:
    sent = _sent(http_auth("gw", ClientAuth("client_secret_post", secret="s3"), audience=""),
                 {"grant_type": "refresh_token", "refresh_token": "rt"})
    assert "Authorization" not in sent.headers
    form = parse_qs(sent.content.decode())
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["rt"],
                    "client_id": ["gw"], "client_secret": ["s3"]}
    assert int(sent.headers["Content-Length"]) == len(sent.content)


def test_private_key_jwt_sends_a_fresh_signed_assertion_each_time(key_file: Path) -> None:
    auth = load_client_auth(_jwt_env(key_file))
    audience = "https://idp.example.com/public/token"
    assertions = []
    for _ in range(2):
        sent = _sent(http_auth("gw", auth, audience=audience), {"grant_type": "refresh_token"})
        assert "Authorization" not in sent.headers
        form = parse_qs(sent.content.decode())
        assert "client_secret" not in form
        assert form["client_assertion_type"] == [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
        token = jwt.decode(form["client_assertion"][0], RSAKey.import_key(RSA.as_pem()),
                           algorithms=["RS256"])
        assert token.header["kid"] == "k1"
        claims = token.claims
        assert (claims["iss"], claims["sub"], claims["aud"]) == ("gw", "gw", audience)
        assert 0 < claims["exp"] - claims["iat"] <= 60
        assertions.append(claims["jti"])
    assert assertions[0] != assertions[1]  # a provider refuses a replayed jti


def test_key_file_is_never_in_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rsa.pem"
    path.write_bytes(RSA.as_pem(private=True)[:200])  # truncated
    with pytest.raises(ConfigError) as refused:
        load_client_auth({"GATEWAY_OIDC_CLIENT_AUTH": "private_key_jwt",
                          "GATEWAY_OIDC_CLIENT_KEY_FILE": str(path),
                          "GATEWAY_OIDC_CLIENT_KEY_ID": "k1"})
    assert "PRIVATE" not in str(refused.value) and os.fspath(path) in str(refused.value)
