"""docs/quickstart-browser.md, run in real Chromium: both of its modules, as they are written,
on a page of another origin (an app server on its own port), against a gateway that lists
that origin in GATEWAY_ALLOWED_ORIGINS.

- The first gets alice's access token from the app (a real one from the development
  provider, audience urn:wsgateway:api, which the gateway accepts), mints tickets with it
  across origins, subscribes, and receives what a backend publishes.
- The second's backend answers 401: the client must stop (state closed, 4401) after at
  most two ticket requests instead of retrying for ever.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext, Page

from devidp.stack import GatewayProcess, free_port, start_gateway
from tests.browser.conftest import BrowserStack
from tests.e2e.flows import user_tokens
from tests.quickstart import block, pointed_at

DOC = "quickstart-browser.md"


@dataclass
class App:
    """The web app on its own origin: pages holding the quick start's modules, the user's
    access token, and a ticket endpoint that says the user is signed out."""

    origin: str
    pages: dict[str, str]
    access_token: str
    ticket_requests: list[float] = field(default_factory=list)


def _handler(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/access-token":
                self._send(200, json.dumps({"access_token": app.access_token}).encode(),
                           "application/json")
            elif self.path in app.pages:
                page = ("<!doctype html><meta charset=utf-8><title>app</title>"
                        f'<script type="module">{app.pages[self.path]}</script>')
                self._send(200, page.encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"{}", "application/json")

        def do_POST(self) -> None:
            if self.path == "/api/gateway-ticket":
                app.ticket_requests.append(time.monotonic())
                self._send(401, b'{"error": "signed_out"}', "application/json")
            else:
                self._send(404, b"{}", "application/json")

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def app_and_gateway(stack: BrowserStack, grants: None) -> Iterator[tuple[App, GatewayProcess]]:
    """A gateway like the tier's, plus the app's origin in GATEWAY_ALLOWED_ORIGINS, and the
    app server with both modules pointed at it."""
    app_port, port = free_port(), free_port()
    origin, url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{port}"
    env = stack.envs[0] | {"GATEWAY_PUBLIC_URL": url, "GATEWAY_ALLOWED_ORIGINS": f"{url},{origin}"}
    gateway = start_gateway(port, env, stack.tmp / "quickstart-gateway.log")
    token = user_tokens(stack.idp.issuer, stack.gateway, "alice", "alice-password")["access_token"]
    pages = {f"/{name}": pointed_at(block(DOC, name), gateway=url)
             for name in ("browser-module", "browser-get-ticket")}
    for text in pages.values():
        assert "127.0.0.1:8000" not in text and "</script" not in text
    app = App(origin, pages, token)
    server = ThreadingHTTPServer(("127.0.0.1", app_port), _handler(app))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, gateway
    finally:
        server.shutdown()
        server.server_close()
        gateway.stop()


def _wait_for(page: Page, lines: list[str], prefix: str, timeout: float = 10.0) -> str:
    """The first console line starting with ``prefix``; Playwright delivers console events
    while it runs, so the wait is the page's own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in lines:
            if line.startswith(prefix):
                return line
        page.wait_for_timeout(50)
    raise AssertionError(f"no console line {prefix!r}; saw {lines!r}")


def test_the_module_connects_from_another_origin_and_receives_a_message(
        app_and_gateway: tuple[App, GatewayProcess], context: BrowserContext,
        stack: BrowserStack, publisher: str) -> None:
    app, gateway = app_and_gateway
    page = context.new_page()
    lines: list[str] = []
    page.on("console", lambda message: lines.append(message.text))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{app.origin}/browser-module")
    assert _wait_for(page, lines, "connected as") == "connected as alice"
    _wait_for(page, lines, "subscribed deploys")
    # the page is on another origin than the gateway: the ticket was minted across origins
    assert app.origin != gateway.url
    stack.publish(publisher, "deploys", {"version": "1.2.3"})
    assert _wait_for(page, lines, "message ") == 'message deploys {"version":"1.2.3"}'
    assert not errors, errors


def test_a_get_ticket_that_throws_401_stops_the_client(
        app_and_gateway: tuple[App, GatewayProcess], context: BrowserContext) -> None:
    app, _ = app_and_gateway
    page = context.new_page()
    lines: list[str] = []
    page.on("console", lambda message: lines.append(message.text))
    page.goto(f"{app.origin}/browser-get-ticket")
    assert _wait_for(page, lines, "stopped") == "stopped 4401 reauthenticate"
    asked = len(app.ticket_requests)
    page.wait_for_timeout(3000)  # a retrying client would ask again within its first backoff
    assert asked == len(app.ticket_requests) <= 2, app.ticket_requests

