"""Sign-out completes at a stock identity provider (RP-Initiated Logout 1.0) and comes home.

The gateway ends its session, then sends the browser to the provider's end_session_endpoint
by GET (the default ``GATEWAY_OIDC_END_SESSION_METHOD``) with ``client_id``,
``post_logout_redirect_uri`` and ``state``: no ID token in the URL. panva's oidc-provider,
run with its own logout pages (no shim), asks "Do you want to sign-out from ...?"; the user
answers "Yes, sign me out", the provider session ends (back-channel logout follows), and the
browser lands on the gateway's home page, which checks ``state`` and says what happened.
Afterwards the provider itself asks for the password again, even without ``prompt=login``.

A provider without end_session_endpoint (the same oidc-provider with RP-initiated logout
off) cannot end its session: the gateway signs out, says so, and its next sign-in asks the
provider for ``prompt=login``, so the password form is shown all the same.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from playwright.sync_api import sync_playwright

import devidp
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.conftest import Stack
from tests.e2e.flows import discovery, follow, login, provider_asks_for_password, sign_out

CHROMIUM = "/usr/bin/chromium"


def _logout_events(stack: Stack, outcome: str, reason: str) -> int:
    return sum(1 for e in stack.audit_events()
               if (e["event"], e["outcome"], e["reason"]) == ("logout", outcome, reason))


def _audited(stack: Stack, outcome: str, reason: str, before: int) -> bool:
    """Whether a new ``logout`` event with this outcome and reason was written (the audit
    writer is a thread that writes in batches)."""
    deadline = time.monotonic() + 5
    while _logout_events(stack, outcome, reason) <= before:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _confirm_page(page: httpx.Response) -> tuple[str, dict[str, str]]:
    """oidc-provider's own confirm page: the form's action and its hidden inputs."""
    assert page.status_code == 200, page.text[:500]
    assert "Do you want to sign-out from" in page.text, page.text[:500]
    assert 'name="logout" value="yes"' in unescape(page.text).replace(
        'value="yes" name="logout"', 'name="logout" value="yes"')  # the "Yes" button
    action = re.search(r'<form id="op.logoutForm" method="post" action="([^"]+)"', page.text)
    assert action, page.text[:500]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return urljoin(str(page.url), unescape(action.group(1))), hidden


def test_sign_out_by_get_ends_the_provider_session_and_lands_home_verified(stack: Stack) -> None:
    gateway, issuer = stack.gateway, stack.idp.issuer
    client = login(gateway, "alice", "alice-password")
    signed_out = _logout_events(stack, "allow", "end_session_get")
    out = sign_out(client, gateway)
    assert out.status_code == 303, out.text[:300]
    leave = urlsplit(out.headers["location"])
    assert f"{leave.scheme}://{leave.netloc}{leave.path}" == discovery(issuer)["end_session_endpoint"]
    query = parse_qs(leave.query)
    assert set(query) == {"client_id", "post_logout_redirect_uri", "state"}  # no token in the URL
    assert query["client_id"] == ["gateway"] and query["post_logout_redirect_uri"] == [f"{gateway}/"]

    action, hidden = _confirm_page(client.get(out.headers["location"]))
    done = client.post(action, data=hidden | {"logout": "yes"})  # "Yes, sign me out"
    assert done.status_code == 303, done.text[:300]
    back = urlsplit(done.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{gateway}/"
    assert parse_qs(back.query)["state"] == query["state"]
    landed = client.get(done.headers["location"])
    assert landed.status_code == 200 and 'id="login"' in landed.text
    assert 'data-notice="signed_out"' in landed.text  # the state matched
    assert 'data-notice' not in client.get(f"{gateway}/").text  # said once

    assert provider_asks_for_password(client, issuer, gateway)  # the provider session is gone
    again = follow(client, client.get(f"{gateway}/oidc/authenticate/"),
                   stop_at=f"{gateway}/oidc/callback/")
    assert not again.is_redirect and 'name="password"' in again.text
    assert _audited(stack, "allow", "end_session_get", signed_out)


def test_a_return_with_another_state_is_not_taken_as_a_provider_sign_out(stack: Stack) -> None:
    gateway = stack.gateway
    client = login(gateway, "bob", "bob-password")
    out = sign_out(client, gateway)
    assert out.status_code == 303
    refused = _logout_events(stack, "deny", "invalid_logout_state")
    landed = client.get(f"{gateway}/?state=forged")
    assert landed.status_code == 200 and 'data-notice="unverified_return"' in landed.text
    assert _audited(stack, "deny", "invalid_logout_state", refused)
    # the provider session was not ended, yet the gateway's next sign-in asks for the password
    assert not provider_asks_for_password(client, stack.idp.issuer, gateway)
    start = client.get(f"{gateway}/oidc/authenticate/")
    assert parse_qs(urlsplit(start.headers["location"]).query)["prompt"] == ["login"]
    again = follow(client, start, stop_at=f"{gateway}/oidc/callback/")
    assert not again.is_redirect and 'name="password"' in again.text


def test_sign_out_in_chromium_through_the_providers_own_page(stack: Stack) -> None:
    """A real browser: the redirect, oidc-provider's confirm page clicked like a user, home."""
    gateway = stack.gateway
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{gateway}/")
            page.click("#login")
            page.fill("#login", "bob")
            page.fill("#password", "bob-password")
            page.click("button[type=submit]")
            page.wait_for_selector("#subject")
            page.click("text=Sign out")
            page.get_by_role("button", name="Yes, sign me out").click()
            page.wait_for_url(re.compile(re.escape(f"{gateway}/") + r"\?state="))
            notice = page.locator("#signout-notice")
            assert notice.get_attribute("data-notice") == "signed_out"
            page.click("#login")
            page.wait_for_selector("#password")  # the provider asks for credentials again
            assert page.url.startswith(stack.idp.issuer)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def no_end_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A provider without end_session_endpoint, and a gateway federated with it."""
    tmp = tmp_path_factory.mktemp("no-end-session")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = devidp.start(free_port(), url, log_file=tmp / "idp.log", keys_file=tmp / "keys.json",
                       end_session=False)
    gateway: GatewayProcess | None = None
    try:
        env = gateway_env(idp.issuer, port, database_file=tmp / "gateway.sqlite3")
        migrate(env)
        gateway = start_gateway(port, env, tmp / "gateway.log")
        yield idp.issuer, gateway.url
    finally:
        if gateway is not None:
            gateway.stop()
        idp.stop()


def test_without_end_session_the_gateway_says_so_and_asks_for_the_password_again(
        no_end_session: tuple[str, str]) -> None:
    issuer, gateway = no_end_session
    assert "end_session_endpoint" not in discovery(issuer)
    client = login(gateway, "alice", "alice-password")
    out = sign_out(client, gateway)
    assert out.status_code == 302 and out.headers["location"] == "/"
    landed = client.get(urljoin(gateway, "/"))
    assert 'data-notice="signed_out_locally"' in landed.text and 'id="login"' in landed.text
    # the provider's session survives (nothing can end it from here) ...
    assert not provider_asks_for_password(client, issuer, gateway)
    # ... but the gateway's next sign-in makes it ask for the password
    again = follow(client, client.get(f"{gateway}/oidc/authenticate/"),
                   stop_at=f"{gateway}/oidc/callback/")
    assert not again.is_redirect and 'name="password"' in again.text
