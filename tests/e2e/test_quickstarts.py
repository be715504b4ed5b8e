"""The quick starts, run as a reader would: docs/quickstart-backend.md's blocks publish
against the e2e stack, and docs/quickstart-provider.md's configuration signs a user in at a
stock oidc-provider (the development provider, where the client is registered as its step 1
says). The browser quick start runs in real Chromium (tests/browser/test_quickstart_browser.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import devidp
from devidp.stack import ROOT, GatewayProcess, free_port, migrate, start_gateway
from tests.e2e.conftest import Stack
from tests.e2e.flows import login, open_ws, session_cookie
from tests.e2e.test_pubsub import Client, admin_change, grant
from tests.quickstart import block, env_block, pointed_at

CHANNEL = "deploys"  # the channel the backend quick start publishes on


@pytest.fixture(scope="module")
def subscriber_grant(stack: Stack) -> None:
    admin_change(stack, [("add", grant(stack, "engineering", CHANNEL))])


async def _published_by(stack: Stack, command: list[str], script: str) -> tuple[str, dict[str, object]]:
    """Run a quick-start block while bob listens on the channel; its output and bob's frame."""
    cookie = session_cookie(await asyncio.to_thread(login, stack.gateway, "bob", "bob-password"))
    bob = Client(await open_ws(stack.gateway, path="/ws/events/",
                               headers={"Cookie": cookie, "Origin": stack.gateway}))
    try:
        assert json.loads(await asyncio.wait_for(bob.ws.recv(), 5))["type"] == "welcome"
        assert (await bob.subscribe(CHANNEL))["type"] == "ack"
        done = await asyncio.to_thread(subprocess.run, [*command, script], capture_output=True,
                                       text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr[-2000:]
        frame = await bob.recv(timeout=5)
    finally:
        await bob.close()
    return done.stdout, frame


@pytest.mark.parametrize(("name", "command"), [("publish-sh", ["bash", "-euc"]),
                                               ("publish-py", [sys.executable, "-c"])])
async def test_the_backend_quick_start_publishes_to_subscribers(
        stack: Stack, subscriber_grant: None, name: str, command: list[str]) -> None:
    script = pointed_at(block("quickstart-backend.md", name), gateway=stack.gateway,
                        provider=stack.idp.issuer)
    assert "127.0.0.1:8000" not in script and "127.0.0.1:9000" not in script
    output, frame = await _published_by(stack, command, script)
    assert '"channel": "deploys"' in output or "'channel': 'deploys'" in output, output
    if name == "publish-py":
        assert output.startswith("202 "), output
    assert (frame["type"], frame["channel"], frame["payload"]) == (
        "message", CHANNEL, {"version": "1.2.3"})


@pytest.fixture(scope="module")
def provider_quick_start(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway configured by the page's .env block alone, the example values replaced by a
    stock oidc-provider's (the dev provider) and this gateway's URL."""
    tmp = tmp_path_factory.mktemp("quickstart-provider")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = devidp.start(free_port(), url, log_file=tmp / "idp.log", keys_file=tmp / "keys.json")
    values = env_block("quickstart-provider.md", "provider-env") | {
        "GATEWAY_PUBLIC_URL": url,
        "GATEWAY_OIDC_ISSUER": idp.issuer,
        "GATEWAY_OIDC_CLIENT_SECRET": devidp.CLIENTS["gateway"],
        "GATEWAY_OIDC_AUDIENCES": devidp.API_AUDIENCE,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings",
            "GATEWAY_SQLITE_PATH": str(tmp / "gateway.sqlite3")} | values
    migrate(env)
    try:
        gateway = start_gateway(port, env, tmp / "gateway.log")
    except BaseException:
        idp.stop()
        raise
    try:
        yield gateway
    finally:
        gateway.stop()
        idp.stop()


async def test_the_provider_quick_start_signs_a_user_in(provider_quick_start: GatewayProcess) -> None:
    gateway = provider_quick_start
    client = await asyncio.to_thread(login, gateway.url, "alice", "alice-password")
    ws = await open_ws(gateway.url, headers={"Cookie": session_cookie(client), "Origin": gateway.url})
    try:
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
    finally:
        await ws.close()
    assert welcome["type"] == "welcome", welcome
    assert welcome["principal"]["subject"] == "alice"
    assert welcome["principal"]["credential"] == "session"


def test_the_pages_do_not_send_readers_to_missing_files() -> None:
    for doc in ("quickstart-provider.md", "quickstart-browser.md", "quickstart-backend.md"):
        text = (ROOT / "docs" / doc).read_text()
        for target in ("settings.md", "deploy.md", "clients.md", "keycloak.md", "protocol.md",
                       "errors.md"):
            if f"]({target}" in text:
                assert (ROOT / "docs" / target).is_file(), target
        for path in ("tests/e2e/test_quickstarts.py", "tests/browser/test_quickstart_browser.py",
                     "tests/keycloak/test_client_auth.py", "tests/unit/test_quickstart_docs.py"):
            if path in text:
                assert Path(ROOT / path).is_file(), path
