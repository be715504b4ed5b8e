"""The admin as an identity-provider administrator uses it, in real Chromium.

alice is in the dev IdP's `admins` group, which the stack maps to superuser
(GATEWAY_ADMIN_GROUPS=admins); bob is not. Grant changes made in alice's admin reach bob's
open console live; the live connections page disconnects his socket with a reason.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, Page, Response, expect

from tests.browser.conftest import BrowserStack, channel_item, open_console, screenshot

ADMIN_HEADER_BG = "rgb(65, 118, 144)"  # --header-bg in django/contrib/admin/static/admin/css/base.css


def test_an_admin_group_member_reaches_the_styled_admin_and_others_do_not(
        stack: BrowserStack, alice: BrowserContext, bob: BrowserContext) -> None:
    page = alice.new_page()
    stylesheets: list[Response] = []
    page.on("response", lambda r: stylesheets.append(r) if r.url.endswith(".css") else None)
    page.goto(f"{stack.gateway}/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    expect(page.locator("#user-tools")).to_contain_text("alice")
    base_css = [r for r in stylesheets if r.url.endswith("/admin/css/base.css")]
    assert [r.status for r in base_css] == [200], [(r.url, r.status) for r in stylesheets]
    assert "text/css" in base_css[0].headers["content-type"]
    expect(page.locator("#header")).to_have_css("background-color", ADMIN_HEADER_BG)
    expect(page.get_by_role("link", name="Live connections")).to_be_visible()
    expect(page.get_by_role("link", name="Check access")).to_be_visible()
    page.close()

    refused = bob.new_page()
    refused.goto(f"{stack.gateway}/admin/")
    expect(refused.locator("#login-form")).to_be_visible()  # the admin's login page, not the index
    refused.close()


def _add_grant(admin: Page, stack: BrowserStack, value: str, target: str) -> None:
    admin.goto(f"{stack.gateway}/admin/gateway/grant/add/")
    admin.fill("#id_issuer", stack.idp.issuer)
    admin.fill("#id_claim", "groups")
    admin.fill("#id_value", value)
    admin.fill("#id_target", target)
    expect(admin.locator("#id_subscribe")).to_be_checked()
    admin.fill("#id_note", "added in the browser test")
    admin.locator('input[name="_save"]').click()
    expect(admin.locator("#grant-preview")).to_be_visible()  # nothing is saved before the preview
    admin.get_by_role("button", name="Confirm and save").click()
    expect(admin.locator(".messagelist .success")).to_contain_text("was added successfully")


def _delete_grant(admin: Page, stack: BrowserStack, target: str) -> None:
    admin.goto(f"{stack.gateway}/admin/gateway/grant/?q={target}")
    admin.locator("#result_list tbody tr th a").filter(has_text=target).click()
    admin.locator("a.deletelink").click()
    expect(admin.locator("#grant-preview")).to_be_visible()
    admin.get_by_role("button", name="Confirm and delete").click()
    expect(admin.locator(".messagelist .success")).to_contain_text("was deleted successfully")


def test_a_grant_made_in_the_admin_reaches_the_other_users_console_live_and_its_removal_revokes_it(
        stack: BrowserStack, grants: None, alice: BrowserContext, bob: BrowserContext,
        publisher: str, shots: Path) -> None:
    console = open_console(bob, stack)
    expect(channel_item(console, "releases")).to_have_count(0)
    channel_item(console, "deploys").get_by_test_id("subscribe-button").click()
    expect(channel_item(console, "deploys")).to_have_attribute("data-subscribed", "true")
    admin = alice.new_page()

    _add_grant(admin, stack, "engineering", "releases")
    item = channel_item(console, "releases")
    expect(item).to_have_attribute("data-subscribed", "false")  # no reload: a `channels` frame
    expect(console.get_by_test_id("event-log")).to_contain_text("the channels your grants allow changed")
    item.get_by_test_id("subscribe-button").click()
    expect(item).to_have_attribute("data-subscribed", "true")
    sent = stack.publish(publisher, "releases", {"release": "r1"})
    expect(console.locator(f'[data-testid="message"][data-mid="{sent["mid"]}"]')).to_be_visible()
    admin.goto(f"{stack.gateway}/admin/gateway/grant/")
    expect(admin.locator("#result_list")).to_contain_text("releases")
    screenshot(admin, shots / "admin-grants.png")

    _delete_grant(admin, stack, "releases")
    expect(channel_item(console, "releases")).to_have_count(0)
    expect(console.get_by_test_id("error")).to_contain_text(["unsubscribed from releases: revoked"])
    expect(console.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
    stack.publish(publisher, "releases", {"release": "r2"})
    marker = stack.publish(publisher, "deploys", {"after": "revocation"})  # sent after r2
    expect(console.locator(f'[data-testid="message"][data-mid="{marker["mid"]}"]')).to_be_visible()
    expect(console.locator('[data-testid="message"][data-channel="releases"]')).to_have_count(1)  # r1
    admin.close()
    console.close()


def test_live_connections_lists_the_sockets_and_a_disconnect_closes_the_browsers_socket(
        stack: BrowserStack, grants: None, alice: BrowserContext, bob: BrowserContext,
        shots: Path) -> None:
    console = open_console(bob, stack)
    channel_item(console, "deploys").get_by_test_id("subscribe-button").click()
    expect(channel_item(console, "deploys")).to_have_attribute("data-subscribed", "true")
    mine = open_console(alice, stack)

    admin = alice.new_page()
    admin.goto(f"{stack.gateway}/admin/live/")
    bobs = admin.locator('tr.live-socket[data-subject="bob"]')
    expect(bobs).to_have_count(1)
    expect(bobs.locator(".live-channels")).to_have_text("deploys")
    expect(bobs).to_contain_text("/ws/events/")
    expect(bobs).to_contain_text("session")
    expect(admin.locator('tr.live-socket[data-subject="alice"]')).to_have_count(1)
    screenshot(admin, shots / "admin-live.png")

    bobs.locator('input[name="reason"]').fill("maintenance window")
    bobs.locator('input[type="submit"]').click()
    expect(admin.locator(".messagelist .success")).to_contain_text("4410 admin_disconnect")

    reason = console.get_by_test_id("close-reason")
    expect(reason).to_have_attribute("data-code", "4410")
    expect(reason).to_have_attribute("data-reason", "admin_disconnect")
    expect(reason).to_contain_text("Reason given: maintenance window")
    expect(console.get_by_test_id("connection-state")).to_have_attribute("data-state", "closed")
    expect(console.get_by_test_id("reconnect-count")).to_have_text("0")  # no automatic reconnect
    expect(mine.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")

    admin.reload()
    expect(admin.locator('tr.live-socket[data-subject="bob"]')).to_have_count(0)
    console.get_by_test_id("reconnect-button").click()  # the person reconnects by hand
    expect(console.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
    expect(reason).to_be_hidden()
    admin.reload()
    expect(admin.locator('tr.live-socket[data-subject="bob"]')).to_have_count(1)
    for page in (admin, mine, console):
        page.close()


def test_check_access_shows_what_a_user_gets_and_why(
        stack: BrowserStack, grants: None, alice: BrowserContext, bob: BrowserContext,
        shots: Path) -> None:
    open_console(bob, stack).close()  # bob has signed in: his claims are stored
    admin = alice.new_page()
    admin.goto(f"{stack.gateway}/admin/access/")
    admin.locator("#user").select_option(label="bob (bob)")
    admin.fill("#user-channel", "ops")
    admin.get_by_role("button", name="Check user").click()
    expect(admin.locator("#principal")).to_contain_text("engineering")
    expect(admin.locator("#targets")).to_contain_text("deploys")
    expect(admin.locator("#targets")).not_to_contain_text("ops")
    expect(admin.locator("#channel-operations")).to_have_text("Allowed: nothing.")
    expect(admin.locator("#channel-grants")).to_contain_text("groups=admins")
    screenshot(admin, shots / "admin-access.png")
    admin.close()
