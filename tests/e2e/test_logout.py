"""Sign-out completes at the identity provider (RP-Initiated Logout 1.0) and returns home.

The gateway ends its session, then sends the browser to the provider's end_session_endpoint
with a form POST (id_token_hint, client_id, post_logout_redirect_uri, state: no token in a
URL). The dev IdP (panva's oidc-provider) confirms by itself, ends its session, sends the
back-channel logout, and redirects to the gateway's home page. Afterwards a new sign-in asks
for credentials again.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from playwright.sync_api import sync_playwright

from tests.e2e.conftest import Stack
from tests.e2e.flows import discovery, follow, login

CHROMIUM = "/usr/bin/chromium"


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]* method="post" action="([^"]+)"', page.text)
    assert action, page.text[:500]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return urljoin(str(page.url), unescape(action.group(1))), {
        k: unescape(v) for k, v in fields.items()}


def _csrf(client: httpx.Client, gateway: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(f"{gateway}/").text)
    assert token
    return token.group(1)


def test_sign_out_ends_the_provider_session_and_lands_on_the_home_page(stack: Stack) -> None:
    gateway = stack.gateway
    client = login(gateway, "alice", "alice-password")
    out = client.post(f"{gateway}/oidc/logout/", data={"csrfmiddlewaretoken": _csrf(client, gateway)},
                      headers={"Origin": gateway})
    assert out.status_code == 200
    assert "no-store" in out.headers["cache-control"]  # the page carries the ID token hint
    action, fields = _form(out)
    assert action == discovery(stack.idp.issuer)["end_session_endpoint"]
    assert "id_token_hint" not in action and fields["post_logout_redirect_uri"] == f"{gateway}/"
    assert {"id_token_hint", "client_id", "state"} <= set(fields)

    confirm = client.post(action, data=fields)  # what the page's onload submit does
    assert confirm.status_code == 200, confirm.text[:300]
    assert "document.getElementById('op.logoutForm').submit()" in confirm.text
    confirm_action, confirm_fields = _form(confirm)
    assert confirm_fields.get("logout") == "yes" and "xsrf" in confirm_fields
    done = client.post(confirm_action, data=confirm_fields)
    assert done.status_code in (302, 303), done.text[:300]
    home = urlsplit(done.headers["location"])
    assert f"{home.scheme}://{home.netloc}{home.path}" == f"{gateway}/"
    assert parse_qs(home.query)["state"] == [fields["state"]]
    landed = client.get(done.headers["location"])
    assert landed.status_code == 200 and 'id="login"' in landed.text  # signed out at home

    again = follow(client, client.get(f"{gateway}/oidc/authenticate/"),
                   stop_at=f"{gateway}/oidc/callback/")
    assert not again.is_redirect, "the provider signed alice in again without credentials"
    assert 'name="password"' in again.text


def test_sign_out_in_chromium(stack: Stack) -> None:
    """The same in a real browser: the scripted form posts, and where the browser lands."""
    gateway = stack.gateway
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(10_000)
            page.goto(f"{gateway}/")
            page.click("#login")
            page.fill("#login", "bob")
            page.fill("#password", "bob-password")
            page.click("button[type=submit]")
            page.wait_for_selector("#subject")
            page.click("text=Sign out")
            page.wait_for_url(re.compile(re.escape(f"{gateway}/") + r"\?state="))
            page.wait_for_selector("#login")  # home page, signed out
            page.click("#login")
            page.wait_for_selector("#password")  # the provider asks for credentials again
            assert page.url.startswith(stack.idp.issuer)
        finally:
            browser.close()
