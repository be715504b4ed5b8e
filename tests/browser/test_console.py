"""Issue 12, "What must be shown": the console in real Chromium, signed in through the dev IdP.

alice (engineering, admins) holds `ops` (subscribe, publish, presence) and `deploys`; bob
(engineering) holds `deploys` only (tests/browser/conftest.py, USERS_GRANTS).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import BrowserStack, channel_item, open_console, screenshot


def test_alice_sees_her_principal_and_channels_and_a_published_message_arrives(
        stack: BrowserStack, grants: None, alice: BrowserContext, publisher: str,
        shots: Path) -> None:
    page = open_console(alice, stack)
    expect(page.get_by_test_id("principal-subject")).to_have_text("alice")
    expect(page.get_by_test_id("principal-groups")).to_have_text("admins, engineering")
    expect(page.get_by_test_id("principal-roles")).to_have_text("admin, developer")
    countdown = page.get_by_test_id("expiry-countdown")
    expect(countdown).to_have_text(re.compile(r"^in \d+:\d\d "))
    seconds = int(countdown.get_attribute("data-seconds") or 0)
    assert 0 < seconds <= 3600
    expect(countdown).not_to_have_attribute("data-seconds", str(seconds))  # it counts down
    items = page.get_by_test_id("channel-item")
    expect(items).to_have_count(2)
    expect(channel_item(page, "ops")).to_have_attribute("data-subscribed", "false")
    expect(channel_item(page, "deploys")).to_be_visible()
    expect(page.get_by_test_id("publish-panel")).to_be_visible()  # ops allows publish

    channel_item(page, "ops").get_by_test_id("subscribe-button").click()
    expect(channel_item(page, "ops")).to_have_attribute("data-subscribed", "true")
    expect(page.get_by_test_id("presence-member")).to_have_text([f"alice ({stack.idp.issuer})"])

    sent = stack.publish(publisher, "ops", {"release": "2026.11", "by": "svc-publisher"})
    message = page.locator(f'[data-testid="message"][data-mid="{sent["mid"]}"]')
    expect(message).to_have_attribute("data-channel", "ops")
    expect(message).to_contain_text('"release": "2026.11"')
    expect(page.get_by_test_id("errors")).to_be_empty()
    screenshot(page, shots / "console.png")
    page.close()


def test_bob_does_not_see_alices_channels_and_a_forbidden_subscribe_shows_the_error(
        stack: BrowserStack, grants: None, bob: BrowserContext, publisher: str) -> None:
    page = open_console(bob, stack)
    expect(page.get_by_test_id("principal-subject")).to_have_text("bob")
    expect(page.get_by_test_id("principal-groups")).to_have_text("engineering")
    expect(page.get_by_test_id("channel-item")).to_have_count(1)
    expect(channel_item(page, "deploys")).to_be_visible()
    expect(channel_item(page, "ops")).to_have_count(0)
    expect(page.get_by_test_id("publish-panel")).to_be_hidden()  # no grant lets bob publish

    page.get_by_test_id("channel-input").fill("ops")
    page.get_by_test_id("channel-subscribe").click()
    expect(page.get_by_test_id("error")).to_have_count(1)
    expect(page.get_by_test_id("error")).to_contain_text("subscribe ops: forbidden")
    expect(channel_item(page, "ops")).to_have_count(0)

    # Nothing published to ops reaches him; his own channel still works.
    stack.publish(publisher, "ops", {"secret": "for admins"})
    stack.publish(publisher, "deploys", {"version": "1.2.3"})  # before he subscribes
    channel_item(page, "deploys").get_by_test_id("subscribe-button").click()
    expect(channel_item(page, "deploys")).to_have_attribute("data-subscribed", "true")
    sent = stack.publish(publisher, "deploys", {"version": "1.2.4"})
    expect(page.locator(f'[data-testid="message"][data-mid="{sent["mid"]}"]')).to_be_visible()
    expect(page.get_by_test_id("message")).to_have_count(1)
    page.close()
