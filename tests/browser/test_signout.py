"""Signing out in a second tab closes the first tab's socket, and the page says why."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import BrowserStack, open_console, sign_in


def test_signing_out_in_another_tab_closes_the_console_socket_and_shows_the_reason(
        stack: BrowserStack, grants: None, context: BrowserContext) -> None:
    sign_in(context.new_page(), stack, "alice")  # a session of its own: the tier's alice stays
    console = open_console(context, stack)

    other = context.new_page()
    other.goto(f"{stack.gateway}/")
    other.get_by_role("button", name="Sign out").click()
    other.get_by_role("button", name="Yes, sign me out").click()  # oidc-provider's own page
    other.wait_for_url(f"{stack.gateway}/?**")  # back home from the provider's end_session
    expect(other.locator("#signout-notice")).to_have_attribute("data-notice", "signed_out")
    expect(other.locator("#login")).to_have_count(1)  # the anonymous page's "Sign in" link

    reason = console.get_by_test_id("close-reason")
    expect(reason).to_be_visible()
    expect(reason).to_have_attribute("data-code", "4401")
    expect(reason).to_have_attribute("data-reason", "logged_out")
    expect(reason).to_contain_text("4401 logged_out")
    expect(console.get_by_test_id("connection-state")).to_have_attribute("data-state", "closed")
    expect(console.get_by_test_id("reconnect-button")).to_be_visible()
    expect(console.get_by_test_id("reconnect-count")).to_have_text("0")  # it did not retry
