"""Browser smoke test: a person signs in through the dev IdP's form in real Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import devidp
from tests.browser.conftest import BrowserStack, screenshot, sign_in


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_sign_in_shows_the_users_groups_on_the_home_page(stack: BrowserStack, page: Page,
                                                         user: str, tmp_path: Path) -> None:
    sign_in(page, stack, user)
    expect(page.locator("#subject")).to_have_text(user)
    groups = page.locator("#groups").inner_text()
    shot = screenshot(page, tmp_path / f"home-{user}.png")
    assert set(groups.split(", ")) == set(devidp.USERS[user]["groups"]), shot
    assert "sessionid" in {c["name"] for c in page.context.cookies(stack.gateway)}


def test_a_wrong_password_stays_on_the_provider_with_an_error(stack: BrowserStack,
                                                              page: Page) -> None:
    page.goto(f"{stack.gateway}/oidc/authenticate/")
    page.fill("#login", "alice")
    page.fill("#password", "not-alice-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".error")).to_have_text("Invalid username or password.")
    assert page.url.startswith(f"{stack.idp.issuer}/interaction/")
