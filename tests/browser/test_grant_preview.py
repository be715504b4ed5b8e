"""The preview of a grant change, in real Chromium, against two gateway processes on Redis.

bob holds `team.alpha` on each of two gateway processes (one console per process; both
share the SQLite database, Redis and the session), alice holds `team.oncall` on the second.
alice, as administrator, narrows `groups=engineering -> team.*` to `team.oncall`: the preview
names alice and bob as losing `subscribe` on `team.*` and counts one socket on each process,
held by bob. Going back changes nothing (bob still gets messages on both); confirming revokes
bob's subscriptions on both processes, keeps alice's, and the change log shows the preview's
counts beside what each process reported.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from devidp.stack import GatewayProcess, free_port, gateway_env, start_gateway
from tests.browser.conftest import REDIS_URL, BrowserStack, channel_item, screenshot

GRANT = {"value": "engineering", "target": "team.*", "subscribe": True}


@pytest.fixture(scope="module")
def second(stack: BrowserStack) -> Iterator[GatewayProcess]:
    """A second gateway process on the same database and Redis (its own port and origin)."""
    port = free_port()
    env = gateway_env(stack.idp.issuer, port, database_file=stack.tmp / "gateway.sqlite3",
                      redis_url=REDIS_URL)
    gateway = start_gateway(port, env, stack.tmp / "gateway-second.log")
    yield gateway
    gateway.stop()


def console_on(context: BrowserContext, base: str, channel: str) -> Page:
    """A console tab on one gateway process, subscribed to ``channel``."""
    page = context.new_page()
    page.goto(f"{base}/console/")
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
    page.get_by_test_id("channel-input").fill(channel)
    page.get_by_test_id("channel-subscribe").click()
    expect(channel_item(page, channel)).to_have_attribute("data-subscribed", "true")
    return page


def grant_state(stack: BrowserStack) -> dict[str, object]:
    out = stack.django(
        "import json\nfrom gateway.models import Grant, GrantChange\n"
        "print(json.dumps({'targets': sorted(Grant.objects.filter(value='engineering')"
        ".values_list('target', flat=True)), 'changes': GrantChange.objects.count()}))\n")
    return dict(json.loads(out.strip().splitlines()[-1]))


def targets(stack: BrowserStack) -> list[str]:
    found = grant_state(stack)["targets"]
    assert isinstance(found, list)
    return [str(t) for t in found]


def test_narrowing_a_pattern_previews_who_loses_and_the_sockets_on_each_process_then_revokes_them(
        stack: BrowserStack, second: GatewayProcess, alice: BrowserContext, bob: BrowserContext,
        publisher: str, shots: Path) -> None:
    stack.add_grants(GRANT)
    bob_first = console_on(bob, stack.gateway, "team.alpha")
    bob_second = console_on(bob, second.url, "team.alpha")
    alice_second = console_on(alice, second.url, "team.oncall")
    before = grant_state(stack)

    admin = alice.new_page()
    admin.goto(f"{stack.gateway}/admin/gateway/grant/?q=team")
    admin.locator("#result_list tbody tr th a").filter(has_text="team.*").click()
    edit_url = admin.url
    admin.fill("#id_target", "team.oncall")
    admin.locator('input[name="_save"]').click()

    effect = admin.locator('tr.preview-effect[data-target="team.*"]')
    expect(effect.locator('.preview-losses [data-operation="subscribe"]')).to_contain_text(
        "alice, bob (2)")
    expect(admin.locator('tr.preview-effect[data-target="team.oncall"]')).to_have_count(0)
    expect(admin.locator("#preview-sockets")).to_have_attribute("data-revoked", "2")
    expect(admin.locator("#preview-sockets")).to_contain_text("held by bob.")
    processes = admin.locator("tr.preview-process")
    expect(processes).to_have_count(2)
    for row in processes.all():
        expect(row).to_have_attribute("data-sockets", "1")
        expect(row).to_contain_text("team.alpha")
    names = {row.get_attribute("data-process") for row in processes.all()}
    assert len(names) == 2, names
    expect(admin.locator("#preview-limits")).to_contain_text("no claims on record")
    expect(admin.locator("#preview-limits")).to_contain_text("next token refresh")
    screenshot(admin, shots / "admin-grant-preview.png")

    admin.get_by_role("button", name="Go back").click()  # back to the form, as typed
    expect(admin.locator("#id_target")).to_have_value("team.oncall")
    assert grant_state(stack) == before
    sent = stack.publish(publisher, "team.alpha", {"still": "subscribed"})
    for console in (bob_first, bob_second):
        expect(console.locator(f'[data-testid="message"][data-mid="{sent["mid"]}"]')).to_be_visible()
        expect(channel_item(console, "team.alpha")).to_have_attribute("data-subscribed", "true")

    admin.locator('input[name="_save"]').click()
    expect(admin.locator("#preview-sockets")).to_have_attribute("data-revoked", "2")
    admin.get_by_role("button", name="Confirm and save").click()
    expect(admin.locator(".messagelist .success")).to_contain_text("was changed successfully")

    for console in (bob_first, bob_second):  # one socket on each process
        expect(console.get_by_test_id("error")).to_contain_text(
            ["unsubscribed from team.alpha: revoked"])
        expect(console.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
    expect(channel_item(alice_second, "team.oncall")).to_have_attribute("data-subscribed", "true")
    now = targets(stack)
    assert "team.oncall" in now and "team.*" not in now

    admin.goto(edit_url)
    admin.locator("#grant-changes").click()
    row = admin.locator("#result_list tbody tr").first
    expect(row).to_contain_text("team.* => team.oncall")
    expect(row).to_contain_text("2 (")  # the preview: two sockets, one per process
    for name in names:
        expect(row).to_contain_text(f"{name}: 1")
    revoked = row.locator("td.field-revoked")
    for _ in range(50):  # each process writes its outcome about a second after the change
        if revoked.inner_text().startswith("2:"):
            break
        time.sleep(0.2)
        admin.reload()
        row = admin.locator("#result_list tbody tr").first
        revoked = row.locator("td.field-revoked")
    expect(revoked).to_contain_text("2: ")
    for name in names:
        expect(revoked).to_contain_text(f"{name}: 1")
    for page in (admin, bob_first, bob_second, alice_second):
        page.close()


def test_the_bulk_delete_action_and_the_delete_button_preview_first_and_going_back_keeps_the_grants(
        stack: BrowserStack, alice: BrowserContext) -> None:
    stack.add_grants({"value": "engineering", "target": "bulk.one"},
                     {"value": "engineering", "target": "bulk.two"})
    admin = alice.new_page()
    admin.goto(f"{stack.gateway}/admin/gateway/grant/?q=bulk")
    expect(admin.locator("#result_list tbody tr")).to_have_count(2)

    admin.locator("#action-toggle").check()
    admin.locator('select[name="action"]').select_option("delete_selected")
    admin.locator('button[name="index"]').click()
    for target in ("bulk.one", "bulk.two"):
        row = admin.locator(f'tr.preview-effect[data-target="{target}"]')
        expect(row.locator('.preview-losses [data-operation="subscribe"]')).to_contain_text("alice, bob")
    admin.locator("#preview-back").click()
    expect(admin.locator("#result_list tbody tr")).to_have_count(2)
    assert {"bulk.one", "bulk.two"} <= set(targets(stack))

    admin.locator("#result_list tbody tr th a").filter(has_text="bulk.one").click()
    admin.locator("a.deletelink").click()
    expect(admin.locator('tr.preview-effect[data-target="bulk.one"]')).to_be_visible()
    admin.locator("#preview-back").click()  # back to the grant, nothing deleted
    expect(admin.locator("#id_target")).to_have_value("bulk.one")

    admin.goto(f"{stack.gateway}/admin/gateway/grant/?q=bulk")
    admin.locator("#action-toggle").check()
    admin.locator('select[name="action"]').select_option("delete_selected")
    admin.locator('button[name="index"]').click()
    admin.get_by_role("button", name="Confirm and delete").click()
    expect(admin.locator(".messagelist .success")).to_contain_text("Deleted 2 grant(s).")
    assert not {"bulk.one", "bulk.two"} & set(targets(stack))
    admin.close()
