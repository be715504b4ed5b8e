"""The admin at 1280 px: branded with the gateway's name, and the grants list readable to its
last column (issue 24 §5)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import BrowserStack, screenshot

WIDTH = 1280
ENTRA = "https://login.microsoftonline.com/0b9c6c8e-5d3a-4bb3-9b3e-5d1a7c2f4e10/v2.0"
LONG_NOTE = "granted for the on-call rota, reviewed every quarter by the platform team"


def test_the_admin_carries_the_gateways_name_and_the_grants_list_fits_1280_px(
        stack: BrowserStack, alice: BrowserContext, shots: Path) -> None:
    stack.add_grants({"value": "/platform/on-call/primary-responders", "target": "alerts.*",
                      "subscribe": True, "publish": True, "presence": True, "note": LONG_NOTE})
    stack.django("from gateway.models import Grant\n"  # an issuer as long as Entra's
                 "Grant.objects.get_or_create(issuer=ENTRA, claim='roles', value='Gateway.Ops',"
                 " target='ops', note='Entra app role')".replace("ENTRA", repr(ENTRA)))
    page = alice.new_page()
    page.set_viewport_size({"width": WIDTH, "height": 800})
    try:
        page.goto(f"{stack.gateway}/admin/")
        expect(page.locator("#site-name")).to_have_text("Websocket gateway administration")
        expect(page).to_have_title("Site administration | Websocket gateway")
        assert "Django administration" not in page.content()

        page.goto(f"{stack.gateway}/admin/gateway/grant/")
        expect(page).to_have_title("Select grant to change | Websocket gateway")
        table = page.locator("#result_list")
        expect(table).to_be_visible()
        note = table.locator("td.field-note").filter(has_text=LONG_NOTE)
        expect(note).to_have_count(1)
        screenshot(page, shots / "admin-grants-1280.png")
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH  # no sideways scroll
        screenshot(page, shots / "admin-grants-1280.png")
        results = page.locator("#changelist .results")  # the table scrolls inside it, clipped
        assert results.evaluate("box => box.scrollWidth <= box.clientWidth"), \
            results.evaluate("box => [box.scrollWidth, box.clientWidth]")
        edge = results.bounding_box()
        assert edge is not None
        for cell in (table.locator("thead th.column-note"), note):
            box = cell.bounding_box()
            assert box is not None and box["x"] + box["width"] <= edge["x"] + edge["width"], box
        assert note.evaluate("cell => cell.scrollWidth <= cell.clientWidth")  # not clipped
        assert note.inner_text().strip() == LONG_NOTE
        expect(table.locator("tr").filter(has_text="Entra app role")).to_contain_text(
            "login.microsoftonline.com")
    finally:
        page.close()
