"""End-to-end tests of the development OpenID provider (devidp/server.mjs).

They start the real provider (Node, oidc-provider 9.x) on a free loopback port and talk
to it over HTTP; no gateway and no Django is needed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

import devidp

pytestmark = pytest.mark.e2e

GATEWAY_URL = "http://127.0.0.1:8000"  # nothing listens there; redirects are not followed
CALLBACK = f"{GATEWAY_URL}/oidc/callback/"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devidp.DevIdp]:
    try:
        devidp.check_installed()
    except devidp.DevIdpError as exc:
        pytest.skip(str(exc))
    base: Path = tmp_path_factory.mktemp("devidp")
    instance = devidp.start(
        _free_port(),
        GATEWAY_URL,
        keys_file=base / "keys.json",
        log_file=base / "devidp.log",
    )
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def discovery(idp: devidp.DevIdp) -> dict:
    response = httpx.get(f"{idp.issuer}/.well-known/openid-configuration")
    response.raise_for_status()
    return response.json()


def _jwks(discovery: dict) -> dict:
    response = httpx.get(discovery["jwks_uri"])
    response.raise_for_status()
    return response.json()


def _decode(token: str, discovery: dict) -> jwt.Token:
    return jwt.decode(token, KeySet.import_key_set(_jwks(discovery)), algorithms=["RS256"])


def _header(token: str) -> dict:
    import json

    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def _follow_until_callback(
    client: httpx.Client, response: httpx.Response, *, limit: int = 10
) -> httpx.Response:
    """Follow provider redirects by hand; stop at the gateway callback or a non-redirect."""
    for _ in range(limit):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(CALLBACK):
            return response
        response = client.get(location)
    raise AssertionError("too many redirects")


def _login_form(page: httpx.Response) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, page.text
    return urljoin(str(page.url), unescape(match.group(1)))


def _authorize(
    client: httpx.Client,
    discovery: dict,
    *,
    login: str,
    password: str,
    scope: str = "openid profile email ws publish",
    pkce: bool = True,
) -> tuple[httpx.Response, str, str]:
    """Run the browser part of the code flow; returns (last response, verifier, state)."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    params = {
        "client_id": "gateway",
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(16),
    }
    if pkce:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    response = client.get(discovery["authorization_endpoint"], params=params)
    response = _follow_until_callback(client, response)
    if response.is_redirect or response.status_code != 200 or "<form" not in response.text:
        return response, verifier, state
    form = client.post(_login_form(response), data={"login": login, "password": password})
    return _follow_until_callback(client, form), verifier, state


def _callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.is_redirect, (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(CALLBACK), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _code_flow(discovery: dict, login: str, password: str, **kwargs: str) -> dict:
    with httpx.Client(follow_redirects=False) as client:
        response, verifier, state = _authorize(
            client, discovery, login=login, password=password, **kwargs
        )
        params = _callback_params(response)
    assert params["state"] == state
    assert params["iss"] == discovery["issuer"]  # RFC 9207
    token = httpx.post(
        discovery["token_endpoint"],
        auth=("gateway", devidp.CLIENTS["gateway"]),
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    return token.json()


def test_discovery(idp: devidp.DevIdp, discovery: dict) -> None:
    assert discovery["issuer"] == idp.issuer
    assert idp.issuer.startswith("http://127.0.0.1:")
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert discovery["backchannel_logout_supported"] is True
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    for key in (
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
        "token_endpoint",
    ):
        assert discovery[key].startswith(idp.issuer + "/"), key
    assert "client_credentials" in discovery["grant_types_supported"]


def test_client_credentials_jwt(discovery: dict) -> None:
    response = httpx.post(
        discovery["token_endpoint"],
        auth=("svc-publisher", devidp.CLIENTS["svc-publisher"]),
        data={"grant_type": "client_credentials", "scope": "ws publish"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    access_token = body["access_token"]
    assert _header(access_token)["typ"] == "at+jwt"
    token = _decode(access_token, discovery)
    assert token.header["typ"] == "at+jwt"
    claims = token.claims
    assert claims["aud"] == devidp.API_AUDIENCE
    assert claims["iss"] == discovery["issuer"]
    assert claims["client_id"] == "svc-publisher"
    assert "publish" in claims["scope"].split()
    for claim in ("exp", "iat", "jti", "sub"):
        assert claim in claims


def test_client_credentials_scope_is_limited(discovery: dict) -> None:
    response = httpx.post(
        discovery["token_endpoint"],
        auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
        data={"grant_type": "client_credentials", "scope": "ws publish"},
    )
    # resource scopes the client may not have are dropped, not granted
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "ws"
    assert _decode(response.json()["access_token"], discovery).claims["scope"] == "ws"


def test_code_flow_alice(discovery: dict) -> None:
    tokens = _code_flow(discovery, "alice", "alice-password")
    id_token = _decode(tokens["id_token"], discovery).claims
    assert id_token["sub"] == "alice"
    assert id_token["aud"] == "gateway"
    assert id_token["groups"] == ["engineering", "admins"]
    assert id_token["roles"] == ["admin", "developer"]
    assert id_token["email"] == "alice@example.com"
    assert id_token["email_verified"] is True
    assert id_token["sid"]

    token = _decode(tokens["access_token"], discovery)
    assert token.header["typ"] == "at+jwt"
    access = token.claims
    assert access["aud"] == devidp.API_AUDIENCE
    assert access["sub"] == "alice"
    assert access["client_id"] == "gateway"
    assert access["groups"] == ["engineering", "admins"]
    assert access["roles"] == ["admin", "developer"]
    assert set(access["scope"].split()) == {"ws", "publish"}
    assert access["sid"] == id_token["sid"]


def test_wrong_password_gives_no_code(discovery: dict) -> None:
    with httpx.Client(follow_redirects=False) as client:
        response, _, _ = _authorize(client, discovery, login="alice", password="bob-password")
        assert not response.is_redirect
        assert response.status_code in (200, 401)
        assert "Invalid username or password" in response.text
        assert 'name="password"' in response.text


def test_pkce_is_required(discovery: dict) -> None:
    with httpx.Client(follow_redirects=False) as client:
        response, _, _ = _authorize(
            client, discovery, login="alice", password="alice-password", pkce=False
        )
    # refused before any login: an error redirect to the callback, never a code
    params = _callback_params(response)
    assert "code" not in params
    assert params["error"] == "invalid_request"
    assert "PKCE" in params.get("error_description", "")


def test_refresh_and_group_change(idp: devidp.DevIdp, discovery: dict) -> None:
    tokens = _code_flow(discovery, "bob", "bob-password", scope="openid email ws")
    assert "refresh_token" in tokens
    idp.set_groups("bob", ["engineering", "ops"], ["developer", "operator"])
    try:
        response = httpx.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": "gateway",
                "client_secret": devidp.CLIENTS["gateway"],  # client_secret_post
            },
        )
        assert response.status_code == 200, response.text
        refreshed = response.json()
        id_token = _decode(refreshed["id_token"], discovery).claims
        access = _decode(refreshed["access_token"], discovery).claims
        assert id_token["groups"] == ["engineering", "ops"]
        assert access["groups"] == ["engineering", "ops"]
        assert access["roles"] == ["developer", "operator"]
        assert access["scope"] == "ws"
    finally:
        idp.set_groups("bob", devidp.USERS["bob"]["groups"], devidp.USERS["bob"]["roles"])


def test_introspection_of_opaque_token(discovery: dict) -> None:
    response = httpx.post(
        discovery["token_endpoint"],
        auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
        data={
            "grant_type": "client_credentials",
            "scope": "ws",
            "resource": devidp.OPAQUE_AUDIENCE,
        },
    )
    assert response.status_code == 200, response.text
    opaque = response.json()["access_token"]
    assert opaque.count(".") == 0
    introspection = httpx.post(
        discovery["introspection_endpoint"],
        auth=("gateway", devidp.CLIENTS["gateway"]),
        data={"token": opaque},
    )
    assert introspection.status_code == 200, introspection.text
    body = introspection.json()
    assert body["active"] is True
    assert body["client_id"] == "svc-reader"
    assert body["aud"] == devidp.OPAQUE_AUDIENCE
    assert body["scope"] == "ws"

    revoked = httpx.post(
        discovery["revocation_endpoint"],
        auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
        data={"token": opaque},
    )
    assert revoked.status_code == 200, revoked.text
    again = httpx.post(
        discovery["introspection_endpoint"],
        auth=("gateway", devidp.CLIENTS["gateway"]),
        data={"token": opaque},
    )
    assert again.json() == {"active": False}


def test_rotate_keys(idp: devidp.DevIdp, discovery: dict) -> None:
    before = httpx.post(
        discovery["token_endpoint"],
        auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
        data={"grant_type": "client_credentials", "scope": "ws"},
    ).json()["access_token"]
    old_kid = _header(before)["kid"]

    new_kid = idp.rotate_keys()
    assert new_kid != old_kid
    kids = [key["kid"] for key in _jwks(discovery)["keys"]]
    assert kids[0] == new_kid
    assert old_kid in kids
    assert all("d" not in key for key in _jwks(discovery)["keys"])  # public keys only

    after = httpx.post(
        discovery["token_endpoint"],
        auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
        data={"grant_type": "client_credentials", "scope": "ws"},
    ).json()["access_token"]
    assert _header(after)["kid"] == new_kid
    # both verify against the current JWKS
    assert _decode(before, discovery).claims["client_id"] == "svc-reader"
    assert _decode(after, discovery).claims["client_id"] == "svc-reader"
    # the keys file holds both private keys, new one first
    import json

    stored = json.loads(idp.keys_file.read_text())
    assert [key["kid"] for key in stored["keys"]][:2] == [new_kid, old_kid]
