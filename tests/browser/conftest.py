"""Browser tier: real headless Chromium (Debian's, driven by Playwright) against the dev IdP
and a gateway under uvicorn, started the way tests/e2e/conftest.py starts them.

Playwright's own browser download is never used: `scripts/ensure-chromium` installs Debian's
`chromium`, and a missing browser fails the tier with that fix (it is never skipped).
Everything runs against real servers, so these tests need no Django database of their own.

The fixtures are package-scoped, not session-scoped: sync Playwright leaves its event loop
marked as running in the main thread while it is open, so pytest-asyncio's tests cannot run
until it is closed. Package scope closes it as soon as the tier is done.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

import devidp
from devidp.stack import ROOT, GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.conftest import Stack
from tests.e2e.flows import service_token

CHROMIUM = Path("/usr/bin/chromium")
REDIS_URL = "redis://127.0.0.1:6379/8"  # the e2e tier uses /7
TIMEOUT_MS = 10_000
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
# Set BROWSER_SCREENSHOTS=docs/screenshots to (re)write the README's screenshots; by default
# the tests save theirs in a temporary folder, so a test run leaves the tree alone.
SCREENSHOTS_ENV = "BROWSER_SCREENSHOTS"

expect.set_options(timeout=TIMEOUT_MS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: browser test in real Chromium (Playwright)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@dataclass
class BrowserStack(Stack):
    """The e2e Stack, plus each gateway's environment so a test can restart one."""

    envs: list[dict[str, str]] = field(default_factory=list)

    def restart(self, index: int = 0) -> GatewayProcess:
        """Stop gateway `index` and start it again on the same port (clients reconnect)."""
        old = self.gateways[index]
        old.stop()
        log = self.tmp / f"gateway{index}-restart.log"
        self.gateways[index] = start_gateway(old.port, self.envs[index], log)
        return self.gateways[index]

    def django(self, code: str, *args: str) -> str:
        """Run Python with Django set up as gateway 0 is (same database, same Redis): grant
        changes made there reach the running gateway through its signals, as the admin's do."""
        done = subprocess.run([sys.executable, "-c", "import django; django.setup()\n" + code, *args],
                              cwd=ROOT, env=self.envs[0], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def add_grants(self, *grants: dict[str, object]) -> None:
        """Create grants of this stack's issuer (claim defaults to groups)."""
        rows = [{"issuer": self.idp.issuer, "claim": "groups", **g} for g in grants]
        self.django("import json, sys\nfrom gateway.models import Grant\n"
                    "for row in json.loads(sys.argv[-1]):\n"
                    "    Grant.objects.get_or_create(**row)\n", json.dumps(rows))

    def publish(self, token: str, channel: str, payload: object) -> dict[str, object]:
        """POST /api/publish as a backend does; returns the 202 answer."""
        answer = httpx.post(f"{self.gateway}/api/publish", json={"channel": channel, "payload": payload},
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 202, answer.text
        return dict(answer.json())


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserStack]:
    """The dev IdP and one gateway on Redis, SQLite in tmp (see devidp.stack.gateway_env)."""
    tmp = tmp_path_factory.mktemp("browser-stack")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = devidp.start(free_port(), url, log_file=tmp / "idp.log", keys_file=tmp / "keys.json")
    built = BrowserStack(idp, [], tmp)
    try:
        env = gateway_env(idp.issuer, port, database_file=tmp / "gateway.sqlite3", redis_url=REDIS_URL)
        migrate(env)
        built.envs.append(env)
        built.gateways.append(start_gateway(port, env, tmp / "gateway0.log"))
        yield built
    finally:
        for gateway in built.gateways:
            gateway.stop()
        idp.stop()


@pytest.fixture(scope="package")
def playwright(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playwright]:
    """Sync Playwright with HOME in a temp folder (Chromium writes its profile bits there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("browser-home")))
        with sync_playwright() as driver:
            yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless. Missing means failure, naming the fix, never a skip."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium "
                    "(apt-get install chromium); the browser tier needs Debian's Chromium.",
                    pytrace=False)
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
    yield chromium
    chromium.close()


def new_context(browser: Browser) -> BrowserContext:
    ctx = browser.new_context(viewport=VIEWPORT)
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test; open several tabs with new_page()."""
    ctx = new_context(browser)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, stack: Stack, user: str, password: str | None = None) -> None:
    """Sign `user` in through the gateway's login and the dev IdP's login form, as a person
    would, and wait until the browser is back on the gateway's home page."""
    page.goto(f"{stack.gateway}/oidc/authenticate/")
    page.wait_for_url(f"{stack.idp.issuer}/interaction/**")
    page.fill("#login", user)
    page.fill("#password", password if password is not None else devidp.USERS[user]["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.gateway}/")
    expect(page.locator("#login")).to_have_count(0)  # the anonymous page's "Sign in" link


def screenshot(page: Page, path: Path) -> Path:
    """Save a full-page screenshot (for a failing test's evidence or the docs)."""
    page.screenshot(path=str(path), full_page=True)
    return path


# --- signed-in people, grants and a publisher, shared by the tier ----------------------------

USERS_GRANTS = (
    {"value": "admins", "target": "ops", "subscribe": True, "publish": True, "presence": True},
    {"value": "engineering", "target": "deploys", "subscribe": True},
)
"""alice (engineering, admins) gets ops and deploys; bob (engineering) gets deploys only."""


@pytest.fixture(scope="package")
def grants(stack: BrowserStack) -> None:
    stack.add_grants(*USERS_GRANTS)


@pytest.fixture(scope="package")
def publisher(stack: BrowserStack) -> str:
    """A client_credentials access token with the `publish` scope (svc-publisher)."""
    return service_token(stack.idp.issuer, "svc-publisher", "ws publish", devidp.API_AUDIENCE)


def _signed_in(browser: Browser, stack: BrowserStack, user: str) -> Iterator[BrowserContext]:
    ctx = new_context(browser)
    sign_in(ctx.new_page(), stack, user)
    for page in ctx.pages:
        page.close()
    yield ctx
    ctx.close()


@pytest.fixture(scope="package")
def alice(browser: Browser, stack: BrowserStack) -> Iterator[BrowserContext]:
    """alice's browser, signed in once for the tier; tests open their own tabs in it."""
    yield from _signed_in(browser, stack, "alice")


@pytest.fixture(scope="package")
def bob(browser: Browser, stack: BrowserStack) -> Iterator[BrowserContext]:
    yield from _signed_in(browser, stack, "bob")


def open_console(context: BrowserContext, stack: Stack) -> Page:
    """A new tab on /console/, once its socket is open and the welcome has arrived."""
    page = context.new_page()
    page.goto(f"{stack.gateway}/console/")
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("event-log")).to_contain_text("welcome:")
    return page


def channel_item(page: Page, channel: str) -> Locator:
    return page.locator(f'[data-testid="channel-item"][data-channel="{channel}"]')


@pytest.fixture(scope="package")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/screenshots when BROWSER_SCREENSHOTS names it, else tmp."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = (ROOT / chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder

