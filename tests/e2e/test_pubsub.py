"""Issue 4 end to end: grants from the admin, pub/sub over real sockets, the publish API.

Two gateway processes share SQLite and a real Redis. Subscribers connect to gateway 0;
the publisher and the admin's grant changes go through gateway 1's configuration.
Grant changes are made with the admin's own ``save_model``/``delete_model`` in a
separate Django process (same database, same Redis), as an administrator saves them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

import devidp
from devidp.stack import ROOT, gateway_env
from tests.e2e.conftest import REDIS_URL, Stack
from tests.e2e.flows import open_ws, service_token, user_tokens

ADMIN_SCRIPT = """
import json, sys, time
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from gateway.models import Grant
user, _ = get_user_model().objects.get_or_create(
    username="e2e-admin", defaults={"is_staff": True, "is_superuser": True})
request = RequestFactory().post("/admin/gateway/grant/")
request.user = user
grant_admin = admin.site._registry[Grant]
for action, fields in json.loads(sys.argv[-1]):
    if action == "add":
        if not Grant.objects.filter(**fields).exists():
            grant_admin.save_model(request, Grant(**fields), None, False)
    else:
        grant_admin.delete_model(request, Grant.objects.get(**fields))
print(json.dumps({"committed_at": time.time()}))
"""


def admin_change(stack: Stack, changes: list[tuple[str, dict[str, Any]]]) -> float:
    """Apply grant changes as the admin saves them, configured like gateway 1."""
    env = gateway_env(stack.idp.issuer, stack.gateways[1].port,
                      database_file=stack.tmp / "gateway.sqlite3", redis_url=REDIS_URL)
    done = subprocess.run([sys.executable, "-c",
                           "import django; django.setup()\n" + ADMIN_SCRIPT, json.dumps(changes)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(json.loads(done.stdout.strip().splitlines()[-1])["committed_at"])


def grant(stack: Stack, group: str, target: str) -> dict[str, Any]:
    return {"issuer": stack.idp.issuer, "claim": "groups", "value": group, "target": target,
            "subscribe": True}


@pytest.fixture(scope="module")
def grants(stack: Stack) -> None:
    admin_change(stack, [("add", grant(stack, "engineering", "deploys")),
                         ("add", grant(stack, "admins", "deploys")),
                         ("add", grant(stack, "admins", "alerts.*"))])


@pytest.fixture(scope="module")
def tokens(stack: Stack) -> dict[str, str]:
    issuer, api = stack.idp.issuer, devidp.API_AUDIENCE
    return {
        "alice": user_tokens(issuer, stack.gateway, "alice", "alice-password")["access_token"],
        "bob": user_tokens(issuer, stack.gateway, "bob", "bob-password")["access_token"],
        "publisher": service_token(issuer, "svc-publisher", "ws publish", api),
        "reader": service_token(issuer, "svc-reader", "ws publish", api),
    }


class Client:
    """One pub/sub socket speaking protocol v1."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.next_id = ws, 0
        self.inbox: list[dict[str, Any]] = []
        self.channels: list[str] = []  # what the grants allow, from welcome and `channels`

    @classmethod
    async def open(cls, gateway: str, token: str) -> Client:
        client = cls(await open_ws(gateway, path="/ws/events/",
                                   headers={"Authorization": f"Bearer {token}"}))
        hello = json.loads(await asyncio.wait_for(client.ws.recv(), 2.0))
        assert hello["type"] == "welcome", hello
        client.channels = [c["channel"] for c in hello["channels"]]
        return client

    async def recv(self, timeout: float = 2.0) -> dict[str, Any]:
        """The next frame; ``channels`` notices only update ``self.channels``."""
        while True:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if frame.get("type") != "channels":
                return frame
            self.channels = [c["channel"] for c in frame["channels"]]

    async def request(self, type: str, **fields: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send(json.dumps({"v": 1, "type": type, "id": self.next_id, **fields}))
        while True:
            reply = await self.recv()
            if reply.get("id") == self.next_id:
                return reply
            self.inbox.append(reply)

    async def subscribe(self, channel: str) -> dict[str, Any]:
        return await self.request("subscribe", channel=channel)

    async def nothing_within(self, seconds: float) -> bool:
        try:
            got = await self.recv(timeout=seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {got!r}")

    async def close(self) -> None:
        await self.ws.close()


def publish(gateway: str, token: str | None, channel: str, payload: Any, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{gateway}/api/publish", json={"channel": channel, "payload": payload},
                      headers=headers, timeout=10, **kwargs)


async def test_bob_gets_deploys_but_not_alerts_and_alice_gets_both(
        stack: Stack, grants: None, tokens: dict[str, str]) -> None:
    bob = await Client.open(stack.gateway, tokens["bob"])
    alice = await Client.open(stack.gateway, tokens["alice"])
    assert (await bob.subscribe("deploys"))["type"] == "ack"
    refused = await bob.subscribe("alerts.critical")
    assert (refused["type"], refused["error"]) == ("error", "forbidden")
    assert (await alice.subscribe("deploys"))["type"] == "ack"
    assert (await alice.subscribe("alerts.critical"))["type"] == "ack"
    await bob.close()
    await alice.close()


async def test_published_message_reaches_exactly_the_authorised_subscribers_across_processes(
        stack: Stack, grants: None, tokens: dict[str, str]) -> None:
    bob = await Client.open(stack.gateways[0].url, tokens["bob"])
    alice = await Client.open(stack.gateways[0].url, tokens["alice"])
    reader = await Client.open(stack.gateways[0].url, tokens["reader"])  # no grants at all
    await bob.subscribe("deploys")
    await bob.subscribe("alerts.critical")  # refused
    await alice.subscribe("deploys")
    await alice.subscribe("alerts.critical")
    assert (await reader.subscribe("deploys"))["error"] == "forbidden"

    sent = publish(stack.gateways[1].url, tokens["publisher"], "alerts.critical", {"sev": 1})
    assert sent.status_code == 202, sent.text
    got = await alice.recv()
    assert (got["type"], got["channel"], got["payload"], got["mid"]) == (
        "message", "alerts.critical", {"sev": 1}, sent.json()["mid"])
    assert await bob.nothing_within(0.5)

    sent = publish(stack.gateways[1].url, tokens["publisher"], "Deploys", {"v": "1.2.3"})
    assert sent.status_code == 202, sent.text
    for client in (alice, bob):
        got = await client.recv()
        assert (got["channel"], got["payload"]) == ("deploys", {"v": "1.2.3"})
        assert await client.nothing_within(0.3)
    assert await reader.nothing_within(0.3)
    for client in (alice, bob, reader):
        await client.close()


def test_publish_api_refusals(stack: Stack, tokens: dict[str, str]) -> None:
    url = stack.gateways[1].url
    refused = publish(url, tokens["reader"], "deploys", {})
    assert (refused.status_code, refused.json()["error"]) == (403, "insufficient_scope")
    assert publish(url, None, "deploys", {}).status_code == 401
    assert publish(url, "not.a.token", "deploys", {}).status_code == 401
    assert publish(url, tokens["publisher"], "alerts.*", {}).json()["error"] == "wildcard_channel"
    assert publish(url, tokens["publisher"], "deploys", "x" * 70_000).status_code == 413
    wrong_type = httpx.post(f"{url}/api/publish", content=b"channel=deploys", timeout=10,
                            headers={"Authorization": f"Bearer {tokens['publisher']}",
                                     "Content-Type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 415
    time.sleep(0.2)
    reasons = [e["reason"] for e in stack.audit_events(1) if e["event"] == "publish"]
    assert {"insufficient_scope", "not_authenticated", "wildcard_channel",
            "payload_too_large", "unsupported_media_type"} <= set(reasons)


async def test_grant_removed_in_admin_unsubscribes_live_socket_within_one_second(
        stack: Stack, grants: None, tokens: dict[str, str]) -> None:
    admin_change(stack, [("add", grant(stack, "engineering", "releases"))])
    bob = await Client.open(stack.gateways[0].url, tokens["bob"])
    assert (await bob.subscribe("releases"))["type"] == "ack"
    assert "releases" in bob.channels

    committed_at = admin_change(stack, [("delete", grant(stack, "engineering", "releases"))])
    notice = await bob.recv(timeout=3)
    received_at = time.time()
    assert notice == {"v": 1, "type": "unsubscribed", "channel": "releases", "reason": "revoked"}
    assert received_at - committed_at < 1.0

    sent = publish(stack.gateways[1].url, tokens["publisher"], "releases", "after revocation")
    assert sent.status_code == 202
    assert await bob.nothing_within(0.5)
    assert "releases" not in bob.channels
    assert (await bob.subscribe("releases"))["error"] == "forbidden"

    admin_change(stack, [("add", grant(stack, "engineering", "releases"))])
    assert (await bob.subscribe("releases"))["type"] == "ack"  # no reconnect needed
    await bob.close()


async def test_bad_frames_over_real_socket(stack: Stack, tokens: dict[str, str]) -> None:
    client = await Client.open(stack.gateway, tokens["bob"])
    await client.ws.send(b"\x00binary")
    assert (await client.recv())["error"] == "binary_frame"
    await client.ws.send("x" * (64 * 1024 + 1))
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
