"""End-to-end tests of the development OpenID provider (devidp/server.mjs).

They start the real provider (Node, oidc-provider 9.x) on a free loopback port and talk
to it over HTTP; no gateway and no Django is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator
from html import unescape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, KeySetSerialization

import devidp

pytestmark = [pytest.mark.e2e, pytest.mark.database_free]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _BackchannelRecorder(BaseHTTPRequestHandler):
    """Stands in for the gateway: records back-channel logout POSTs, answers 200."""

    received: list[str]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = parse_qs(self.rfile.read(length).decode())
        if self.path == "/oidc/backchannel-logout/" and "logout_token" in body:
            self.server.received.append(body["logout_token"][0])  # type: ignore[attr-defined]
            self.send_response(200)
        else:
            self.send_response(400)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gateway_stub() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BackchannelRecorder)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


GATEWAY_URL = ""  # set by the idp fixture to the stub's URL
CALLBACK = ""
EXTRA_GATEWAY_URL = "http://127.0.0.1:1"  # never contacted


@pytest.fixture(scope="module")
def idp(
    tmp_path_factory: pytest.TempPathFactory, gateway_stub: ThreadingHTTPServer
) -> Iterator[devidp.DevIdp]:
    global GATEWAY_URL, CALLBACK
    try:
        devidp.check_installed()
    except devidp.DevIdpError as exc:
        pytest.fail(f"the development provider is not installed: {exc} (run scripts/setup)")
    GATEWAY_URL = f"http://127.0.0.1:{gateway_stub.server_address[1]}"
    CALLBACK = f"{GATEWAY_URL}/oidc/callback/"
    base: Path = tmp_path_factory.mktemp("devidp")
    instance = devidp.start(
        _free_port(),
        GATEWAY_URL,
        extra_gateway_urls=[EXTRA_GATEWAY_URL],
        keys_file=base / "keys.json",
        log_file=base / "devidp.log",
    )
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def discovery(idp: devidp.DevIdp) -> dict[str, Any]:
    response = httpx.get(f"{idp.issuer}/.well-known/openid-configuration")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def _jwks(discovery: dict[str, Any]) -> KeySetSerialization:
    response = httpx.get(discovery["jwks_uri"])
    response.raise_for_status()
    jwks: KeySetSerialization = response.json()
    return jwks


def _decode(token: str, discovery: dict[str, Any]) -> jwt.Token:
    return jwt.decode(token, KeySet.import_key_set(_jwks(discovery)), algorithms=["RS256"])


def _header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def _follow_until_callback(
    client: httpx.Client, response: httpx.Response, callback: str, *, limit: int = 10
) -> httpx.Response:
    """Follow provider redirects by hand; stop at the gateway callback or a non-redirect."""
    for _ in range(limit):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(callback):
            return response
        response = client.get(location)
    raise AssertionError("too many redirects")


def _login_form(page: httpx.Response) -> str:
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, page.text
    return urljoin(str(page.url), unescape(match.group(1)))


def _authorize(
    client: httpx.Client,
    discovery: dict[str, Any],
    *,
    login: str,
    password: str,
    scope: str = "openid profile email ws publish",
    pkce: bool = True,
    callback: str | None = None,
) -> tuple[httpx.Response, str, str]:
    """Run the browser part of the code flow; returns (last response, verifier, state).

    With a provider session already in ``client``'s cookies no login form is shown.
    """
    callback = callback or CALLBACK
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(16)
    params = {
        "client_id": "gateway",
        "response_type": "code",
        "redirect_uri": callback,
        "scope": scope,
        "state": state,
        "nonce": secrets.token_urlsafe(16),
    }
    if pkce:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    response = client.get(discovery["authorization_endpoint"], params=params)
    response = _follow_until_callback(client, response, callback)
    if response.is_redirect or response.status_code != 200 or "<form" not in response.text:
        return response, verifier, state
    form = client.post(_login_form(response), data={"login": login, "password": password})
    return _follow_until_callback(client, form, callback), verifier, state


def _callback_params(response: httpx.Response, callback: str | None = None) -> dict[str, str]:
    assert response.is_redirect, (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(callback or CALLBACK), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _code_flow(
    discovery: dict[str, Any],
    login: str,
    password: str,
    *,
    scope: str = "openid profile email ws publish",
    callback: str | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    callback = callback or CALLBACK
    with httpx.Client(follow_redirects=False) as own_client:
        response, verifier, state = _authorize(
            client or own_client,
            discovery,
            login=login,
            password=password,
            scope=scope,
            callback=callback,
        )
    params = _callback_params(response, callback)
    assert params["state"] == state
    assert params["iss"] == discovery["issuer"]  # RFC 9207
    token = httpx.post(
        discovery["token_endpoint"],
        auth=("gateway", devidp.CLIENTS["gateway"]),
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": callback,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
    tokens: dict[str, Any] = token.json()
    return tokens


def test_discovery(idp: devidp.DevIdp, discovery: dict[str, Any]) -> None:
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


def test_client_credentials_jwt(discovery: dict[str, Any]) -> None:
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


def test_client_credentials_scope_is_limited(discovery: dict[str, Any]) -> None:
    response = httpx.post(
        discovery["token_endpoint"],
        auth=("svc-reader", devidp.CLIENTS["svc-reader"]),
        data={"grant_type": "client_credentials", "scope": "ws publish"},
    )
    # resource scopes the client may not have are dropped, not granted
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "ws"
    assert _decode(response.json()["access_token"], discovery).claims["scope"] == "ws"


def test_code_flow_alice(discovery: dict[str, Any]) -> None:
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


def test_wrong_password_gives_no_code(discovery: dict[str, Any]) -> None:
    with httpx.Client(follow_redirects=False) as client:
        response, _, _ = _authorize(client, discovery, login="alice", password="bob-password")
        assert not response.is_redirect
        assert response.status_code in (200, 401)
        assert "Invalid username or password" in response.text
        assert 'name="password"' in response.text


def test_pkce_is_required(discovery: dict[str, Any]) -> None:
    with httpx.Client(follow_redirects=False) as client:
        response, _, _ = _authorize(
            client, discovery, login="alice", password="alice-password", pkce=False
        )
    # refused before any login: an error redirect to the callback, never a code
    params = _callback_params(response)
    assert "code" not in params
    assert params["error"] == "invalid_request"
    assert "PKCE" in params.get("error_description", "")


def test_refresh_and_group_change(idp: devidp.DevIdp, discovery: dict[str, Any]) -> None:
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


def test_introspection_of_opaque_token(discovery: dict[str, Any]) -> None:
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


def test_extra_gateway_url_is_a_valid_redirect(discovery: dict[str, Any]) -> None:
    extra_callback = f"{EXTRA_GATEWAY_URL}/oidc/callback/"
    tokens = _code_flow(discovery, "bob", "bob-password", callback=extra_callback)
    assert _decode(tokens["id_token"], discovery).claims["sub"] == "bob"


def test_unregistered_redirect_is_refused(discovery: dict[str, Any]) -> None:
    with httpx.Client(follow_redirects=False) as client:
        response, _, _ = _authorize(
            client,
            discovery,
            login="alice",
            password="alice-password",
            callback="http://127.0.0.1:2/oidc/callback/",
        )
    assert response.status_code == 400
    assert "redirect_uri" in response.text


def test_logout_sends_backchannel_logout(
    idp: devidp.DevIdp, discovery: dict[str, Any], gateway_stub: ThreadingHTTPServer
) -> None:
    received: list[str] = gateway_stub.received  # type: ignore[attr-defined]
    received.clear()
    with httpx.Client(follow_redirects=False) as client:
        tokens = _code_flow(discovery, "alice", "alice-password", client=client)
        sid = _decode(tokens["id_token"], discovery).claims["sid"]

        # single sign-on: a second authorization needs no login form
        again, _, _ = _authorize(client, discovery, login="", password="")
        assert "code" in _callback_params(again)

        state = secrets.token_urlsafe(8)
        page = client.get(
            discovery["end_session_endpoint"],
            params={
                "id_token_hint": tokens["id_token"],
                "post_logout_redirect_uri": f"{GATEWAY_URL}/",
                "state": state,
            },
        )
        assert page.status_code == 200, page.text
        action = re.search(r'<form id="op.logoutForm" method="post" action="([^"]+)"', page.text)
        xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
        assert action, page.text
        assert xsrf, page.text
        done = client.post(
            urljoin(str(page.url), unescape(action.group(1))),
            data={"xsrf": xsrf.group(1), "logout": "yes"},
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"{GATEWAY_URL}/?state={state}"

        # the back-channel logout was delivered before the redirect
        assert len(received) == 1
        logout = _decode(received[0], discovery).claims
        assert logout["sub"] == "alice"
        assert logout["aud"] == "gateway"
        assert logout["sid"] == sid
        assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
        assert "nonce" not in logout

        # the session is gone: the login form is shown again
        after = client.get(
            discovery["authorization_endpoint"],
            params={
                "client_id": "gateway",
                "response_type": "code",
                "redirect_uri": CALLBACK,
                "scope": "openid",
                "code_challenge": _pkce()[1],
                "code_challenge_method": "S256",
            },
        )
        after = _follow_until_callback(client, after, CALLBACK)
        assert after.status_code == 200
        assert 'name="password"' in after.text

    # refresh tokens of the ended session are dead too
    refreshed = httpx.post(
        discovery["token_endpoint"],
        auth=("gateway", devidp.CLIENTS["gateway"]),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


def test_dev_endpoints_validate_input(idp: devidp.DevIdp) -> None:
    with pytest.raises(devidp.DevIdpError, match="404"):
        idp.set_groups("mallory", ["x"], [])
    bad = httpx.post(f"{idp.issuer}/__dev/users/alice/groups", json={"groups": "admins"})
    assert bad.status_code == 400


def test_missing_node_modules_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import devidp.launcher

    monkeypatch.setattr(devidp.launcher, "NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(devidp.DevIdpError, match=r"run: npm ci --prefix devidp"):
        devidp.start(_free_port(), "http://127.0.0.1:8000")


def test_rotate_keys(idp: devidp.DevIdp, discovery: dict[str, Any]) -> None:
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
    stored = json.loads(idp.keys_file.read_text())
    assert [key["kid"] for key in stored["keys"]][:2] == [new_kid, old_kid]


def test_a_provider_process_that_stalls_is_replaced(tmp_path: Path) -> None:
    port = _free_port()
    env = devidp.launcher.build_env(port, "http://127.0.0.1:1", keys_file=tmp_path / "keys.json")
    log_handle = (tmp_path / "idp.log").open("ab")
    stalled = subprocess.Popen(["sleep", "60"])

    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen([devidp.launcher._node(), str(devidp.launcher.SERVER_SCRIPT)],
                                cwd=devidp.launcher.PACKAGE_DIR, env=env,
                                stdout=log_handle, stderr=subprocess.STDOUT)

    idp = devidp.DevIdp(issuer=f"http://127.0.0.1:{port}", port=port, process=stalled,
                        keys_file=tmp_path / "keys.json", log_file=tmp_path / "idp.log",
                        _log_handle=log_handle)
    try:
        devidp.launcher.wait_ready_relaunching(idp, launch, timeout=2.0, attempts=2)
        assert stalled.poll() is not None, "the stalled process is stopped"
        assert idp.process is not stalled
        discovery = httpx.get(f"{idp.issuer}/.well-known/openid-configuration").json()
        assert discovery["issuer"] == idp.issuer
        assert "launcher: attempt 1 stalled" in idp.log_tail()
        assert ", wchan " in idp.log_tail(), "the note says what the stalled process was doing"
    finally:
        idp.stop()
        devidp.launcher.stop_process(stalled)


def test_a_provider_that_stalls_on_every_attempt_fails_naming_its_state(tmp_path: Path) -> None:
    log_handle = (tmp_path / "idp.log").open("ab")
    idp = devidp.DevIdp(issuer=f"http://127.0.0.1:{_free_port()}", port=0,
                        process=subprocess.Popen(["sleep", "60"]),
                        keys_file=tmp_path / "keys.json", log_file=tmp_path / "idp.log",
                        _log_handle=log_handle)
    launched: list[subprocess.Popen[bytes]] = []

    def launch() -> subprocess.Popen[bytes]:
        launched.append(subprocess.Popen(["sleep", "60"]))
        return launched[-1]

    try:
        with pytest.raises(devidp.DevIdpError, match=r"within 1s .*state S"):
            devidp.launcher.wait_ready_relaunching(idp, launch, timeout=1.0, attempts=2)
        assert len(launched) == 1
    finally:
        idp.stop()
