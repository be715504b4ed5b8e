"""Browser-like flows against Keycloak's own pages: its login form and its logout confirmation."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin

import httpx

from tests.e2e.flows import follow


def _form(page: httpx.Response, form_id_or_action: str) -> tuple[str, dict[str, str]]:
    """The action URL and hidden inputs of the first form whose tag mentions the marker."""
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page.text, re.S):
        attributes, body = match.groups()
        if form_id_or_action not in attributes:
            continue
        action = re.search(r'action="([^"]+)"', attributes)
        assert action, attributes
        hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"',
                                 body))
        return urljoin(str(page.url), unescape(action.group(1))), hidden
    raise AssertionError(f"no form {form_id_or_action!r} on {page.url}: {page.text[:800]}")


LOOPBACK_COOKIE_DOMAINS = ("127.0.0.1", "localhost", "localhost.local")  # http.cookiejar: .local


def browser() -> httpx.Client:
    """A browser-like client that sends ``Secure`` cookies to http://127.0.0.1 and localhost.

    Browsers treat loopback as a potentially trustworthy origin; Keycloak marks its login
    cookies ``Secure; SameSite=None`` even over http, and httpx would withhold them.
    """
    client = httpx.Client(follow_redirects=False, timeout=20)

    def loopback_is_secure(response: httpx.Response) -> None:
        for cookie in client.cookies.jar:
            if cookie.domain in LOOPBACK_COOKIE_DOMAINS:
                cookie.secure = False

    client.event_hooks["response"] = [loopback_is_secure]
    return client


def post_keycloak_login(client: httpx.Client, page: httpx.Response, username: str,
                        password: str) -> httpx.Response:
    """Fill in Keycloak's login form (``kc-form-login``) like a person would."""
    action, _ = _form(page, 'id="kc-form-login"')
    return client.post(action, data={"username": username, "password": password,
                                     "credentialId": ""})


def login(gateway: str, username: str, password: str) -> httpx.Client:
    """Log in at the gateway through Keycloak's login form; return the browser-like client."""
    client = browser()
    start = client.get(f"{gateway}/oidc/authenticate/")
    assert start.is_redirect, start.text[:300]
    callback = f"{gateway}/oidc/callback/"
    page = follow(client, client.get(start.headers["location"]), stop_at=callback)
    if not page.is_redirect:  # the login form (no Keycloak SSO session yet)
        assert page.status_code == 200, page.text[:500]
        page = follow(client, post_keycloak_login(client, page, username, password),
                      stop_at=callback)
    assert page.is_redirect, page.text[:800]
    done = client.get(urljoin(str(page.url), page.headers["location"]))
    assert done.status_code == 302 and done.headers["location"] == "/", done.text[:300]
    return client


def logout_at_keycloak(end_session_endpoint: str, client: httpx.Client) -> None:
    """RP-initiated logout at Keycloak's end_session endpoint, confirmed on its own page.

    Without an ``id_token_hint`` Keycloak asks "Do you want to log out?"; posting the
    confirmation ends the SSO session and makes Keycloak send back-channel logouts.
    """
    page = client.get(end_session_endpoint, params={"client_id": "gateway"})
    assert page.status_code == 200, page.text[:500]
    action, hidden = _form(page, "logout-confirm")
    done = client.post(action, data=hidden | {"confirmLogout": "Logout"})
    assert done.status_code in (200, 302, 303), done.text[:500]
    assert "You are logged out" in done.text or done.is_redirect, done.text[:500]
