"""When the gateway restarts, the console's client reconnects and resubscribes by itself.

The gateway process is stopped (SIGTERM: its sockets close with 1001 going away) and a new
one starts on the same port with the same database, as a deploy does. The session cookie
still holds, so the client's backoff reconnect succeeds without anyone touching the page.
"""

from __future__ import annotations

import time

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import BrowserStack, channel_item, open_console

RECONNECT_TIMEOUT_MS = 40_000  # stop and start (~10 s) plus backoff of 1, 2, 4, 8 s at most


def _published_until_seen(page: Page, stack: BrowserStack, publisher: str, channel: str,
                          timeout: float = 10.0) -> None:
    """Publish until a message shows: the resubscribe is acknowledged on its own schedule."""
    deadline = time.monotonic() + timeout
    while True:
        sent = stack.publish(publisher, channel, {"after": "restart"})
        shown = page.locator(f'[data-testid="message"][data-mid="{sent["mid"]}"]')
        try:
            expect(shown).to_be_visible(timeout=1000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_after_a_gateway_restart_the_client_reconnects_and_resubscribes_by_itself(
        stack: BrowserStack, grants: None, alice: BrowserContext, publisher: str) -> None:
    page = open_console(alice, stack)
    channel_item(page, "ops").get_by_test_id("subscribe-button").click()
    expect(channel_item(page, "ops")).to_have_attribute("data-subscribed", "true")
    expect(page.get_by_test_id("reconnect-count")).to_have_text("0")

    stack.restart()

    expect(page.get_by_test_id("event-log")).to_contain_text("closed 1001", timeout=RECONNECT_TIMEOUT_MS)
    state = page.get_by_test_id("connection-state")
    expect(page.get_by_test_id("reconnect-count")).not_to_have_text("0", timeout=RECONNECT_TIMEOUT_MS)
    expect(state).to_have_attribute("data-state", "open", timeout=RECONNECT_TIMEOUT_MS)
    expect(page.get_by_test_id("close-reason")).to_be_hidden()
    expect(channel_item(page, "ops")).to_have_attribute("data-subscribed", "true")
    _published_until_seen(page, stack, publisher, "ops")
    assert page.get_by_test_id("error").count() == 0, page.get_by_test_id("errors").inner_text()
    page.close()
