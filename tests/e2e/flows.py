"""Browser-like flows over real HTTP: follow real redirects and post the provider's login form."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from html import unescape
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol


def follow(client: httpx.Client, response: httpx.Response, *, stop_at: str | None = None,
           limit: int = 12) -> httpx.Response:
    """Follow redirects by hand; stop before requesting a URL that starts with `stop_at`."""
    for _ in range(limit):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if stop_at and location.startswith(stop_at):
            return response
        response = client.get(location)
    raise AssertionError("too many redirects")


def post_login_form(client: httpx.Client, page: httpx.Response, login: str,
                    password: str) -> httpx.Response:
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, page.text[:500]
    return client.post(urljoin(str(page.url), unescape(match.group(1))),
                       data={"login": login, "password": password})


def authorize(client: httpx.Client, gateway: str, login: str, password: str,
              *, tamper_auth_request: Callable[[str], str] | None = None) -> str:
    """Run the login up to the provider's redirect back; return the callback URL."""
    start = client.get(f"{gateway}/oidc/authenticate/")
    assert start.is_redirect, start.text[:300]
    auth_url = start.headers["location"]
    if tamper_auth_request is not None:
        auth_url = tamper_auth_request(auth_url)
    page = follow(client, client.get(auth_url), stop_at=f"{gateway}/oidc/callback/")
    if not page.is_redirect:
        page = follow(client, post_login_form(client, page, login, password),
                      stop_at=f"{gateway}/oidc/callback/")
    assert page.is_redirect, page.text[:300]
    return urljoin(str(page.url), page.headers["location"])


def login(gateway: str, user: str, password: str) -> httpx.Client:
    """A logged-in browser-like client (cookies for both the gateway and the provider)."""
    client = httpx.Client(follow_redirects=False, timeout=10)
    done = client.get(authorize(client, gateway, user, password))
    assert done.status_code == 302 and done.headers["location"] == "/", done.text[:300]
    return client


def replace_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def session_cookie(client: httpx.Client) -> str:
    return f"sessionid={client.cookies['sessionid']}"


def ws_url(gateway: str, path: str = "/ws/") -> str:
    return gateway.replace("http://", "ws://") + path


async def open_ws(gateway: str, *, path: str = "/ws/", headers: dict[str, str] | None = None,
                  subprotocols: list[str] | None = None) -> ClientConnection:
    offered = cast("list[Subprotocol] | None", subprotocols)  # Subprotocol is a NewType of str
    return await connect(ws_url(gateway, path), additional_headers=headers or {},
                         subprotocols=offered, open_timeout=5, close_timeout=2)


async def first_message(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def frames_until(ws: ClientConnection, deadline: float) -> AsyncIterator[dict[str, Any]]:
    """The JSON frames ``ws`` receives until ``deadline`` (``time.monotonic()``); a close
    raises ``ConnectionClosed``."""
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return
        yield frame


async def closed_with(gateway: str, **kwargs: Any) -> tuple[int, str]:
    """Connect and expect the gateway to close at once; return (code, reason)."""
    from websockets.exceptions import ConnectionClosed

    ws = await open_ws(gateway, **kwargs)
    try:
        message = await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError(f"socket stayed open and sent {message!r}")


def discovery(issuer: str) -> dict[str, Any]:
    metadata: dict[str, Any] = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    return metadata


def service_token(issuer: str, client: str, scope: str, resource: str) -> str:
    """A client_credentials access token from the real provider."""
    import devidp

    response = httpx.post(discovery(issuer)["token_endpoint"],
                          auth=(client, devidp.CLIENTS[client]),
                          data={"grant_type": "client_credentials", "scope": scope,
                                "resource": resource})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def user_tokens(issuer: str, gateway: str, user: str, password: str,
                scope: str = "openid profile email offline_access ws") -> dict[str, Any]:
    """A user's tokens from a hand-driven code flow with PKCE (the gateway's client)."""
    import base64
    import hashlib
    import secrets

    import devidp

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    meta = discovery(issuer)
    callback = f"{gateway}/oidc/callback/"
    client = httpx.Client(follow_redirects=False, timeout=10)
    page = client.get(meta["authorization_endpoint"], params={
        "client_id": "gateway", "response_type": "code", "redirect_uri": callback, "scope": scope,
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.decode(), "code_challenge_method": "S256"})
    page = follow(client, page, stop_at=callback)
    if not page.is_redirect:
        page = follow(client, post_login_form(client, page, user, password), stop_at=callback)
    code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    response = httpx.post(meta["token_endpoint"], auth=("gateway", devidp.CLIENTS["gateway"]),
                          data={"grant_type": "authorization_code", "code": code,
                                "redirect_uri": callback, "code_verifier": verifier})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def logout_at_provider(issuer: str, client: httpx.Client) -> None:
    """RP-initiated logout at the provider, confirmed like a user would (triggers BCL)."""
    page = client.get(discovery(issuer)["end_session_endpoint"], params={"client_id": "gateway"})
    action = re.search(r'<form id="op.logoutForm" method="post" action="([^"]+)"', page.text)
    xsrf = re.search(r'name="xsrf" value="([^"]+)"', page.text)
    assert action, page.text[:500]
    assert xsrf, page.text[:500]
    done = client.post(urljoin(str(page.url), unescape(action.group(1))),
                       data={"xsrf": xsrf.group(1), "logout": "yes"})
    assert done.status_code in (302, 303), done.text[:300]


def sign_out(client: httpx.Client, gateway: str) -> httpx.Response:
    """Press "Sign out" on the gateway's home page (a POST with its CSRF token)."""
    home = client.get(f"{gateway}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', home.text)
    assert token, home.text[:500]
    return client.post(f"{gateway}/oidc/logout/", data={"csrfmiddlewaretoken": token.group(1)},
                       headers={"Origin": gateway})


def provider_asks_for_password(client: httpx.Client, issuer: str, gateway: str) -> bool:
    """Whether the provider, asked for a code without ``prompt`` in this browser, shows its
    password form (its session is gone) rather than signing the user in at once."""
    import base64
    import hashlib
    import secrets

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    callback = f"{gateway}/oidc/callback/"
    page = client.get(discovery(issuer)["authorization_endpoint"], params={
        "client_id": "gateway", "response_type": "code", "redirect_uri": callback,
        "scope": "openid", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge.decode(), "code_challenge_method": "S256"})
    page = follow(client, page, stop_at=callback)
    return not page.is_redirect and 'name="password"' in page.text
