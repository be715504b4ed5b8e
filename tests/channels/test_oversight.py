"""Admin oversight pages (#12 point 3): live connections on every process, disconnecting a
subject (audited), and checking what a user or a claim set may access, and why."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

import gateway.oversight.access
import gateway.oversight.live
from gateway.grants.store import cache
from gateway.login.session_store import SessionStore
from gateway.login.sessions import AUTH_KEY
from gateway.models import Grant, OidcIdentity, SessionBinding
from gateway.ops.roster import MemoryRoster, this_process, use_roster
from gateway.sockets.closecodes import CloseCode
from tests.channels.test_pubsub import ALICE, BOB, ISS, connect, request

pytestmark = pytest.mark.django_db(transaction=True)

LOGIN_ISSUER = settings.GATEWAY.issuer


@pytest.fixture(autouse=True)
def fresh_roster() -> Iterator[MemoryRoster]:
    roster = MemoryRoster()
    use_roster(roster)
    yield roster
    use_roster(None)


@pytest.fixture(autouse=True)
def _discovered(discovered: None) -> None:
    """The login issuer as discovered (tests/channels/conftest.py)."""


@pytest.fixture(autouse=True)
async def grants() -> AsyncIterator[None]:
    cache.clear()
    await Grant.objects.acreate(issuer=ISS, claim="groups", value="engineering", target="deploys")
    await Grant.objects.acreate(issuer=ISS, claim="groups", value="admins", target="alerts.*",
                                presence=True)
    yield
    cache.clear()


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def record(event: str, outcome: str, reason: str, **fields: Any) -> dict[str, Any]:
        seen.append({"event": event, "outcome": outcome, "reason": reason, **fields})
        return {}

    monkeypatch.setattr(gateway.oversight.live, "audit", record)
    monkeypatch.setattr(gateway.oversight.access, "audit", record)
    return seen


def staff_client(*permissions: str, staff: bool = True) -> Client:
    user = get_user_model().objects.create_user(f"admin-{time.monotonic_ns()}", is_staff=staff)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="gateway",
                                                        codename__in=permissions))
    client = Client()
    client.force_login(user)
    return client


ALL = ("view_live_sockets", "disconnect_sockets", "check_access")


async def test_live_view_lists_sockets_and_disconnect_closes_the_subjects_sockets(
        audits: list[dict[str, Any]]) -> None:
    bob, bob2, alice = await connect(BOB), await connect(BOB), await connect(ALICE)
    await request(bob, type="subscribe", id=1, channel="deploys")
    client = await sync_to_async(staff_client)(*ALL)

    page = (await sync_to_async(client.get)("/admin/live/")).content.decode()
    assert page.count('class="live-socket"') == 3
    assert page.count('data-subject="bob"') == 2
    assert "/ws/events/" in page and this_process() in page
    assert '<td class="live-channels">deploys</td>' in page

    answer = await sync_to_async(client.post)("/admin/live/disconnect/", {
        "issuer": ISS, "subject": "bob", "reason": "leaked laptop\n"})
    assert answer.status_code == 302
    for comm in (bob, bob2):
        notice = json.loads(await comm.receive_from())
        assert notice == {"v": 1, "type": "disconnect", "reason": "admin_disconnect",
                          "detail": "leaked laptop"}
        closed = await comm.receive_output()
        assert (closed["type"], closed["code"], closed["reason"]) == (
            "websocket.close", CloseCode.ADMIN_DISCONNECT, "admin_disconnect")
        await comm.disconnect()
    assert await alice.receive_nothing()
    [event] = audits
    assert {k: v for k, v in event.items() if k != "detail"} == {
        "event": "disconnect", "outcome": "allow", "reason": "admin_disconnect",
        "issuer": ISS, "subject": "bob"}
    assert event["detail"].startswith("by admin-") and event["detail"].endswith(": leaked laptop")

    page = (await sync_to_async(client.get)("/admin/live/")).content.decode()
    assert page.count('class="live-socket"') == 1 and 'data-subject="alice"' in page
    await alice.disconnect()


async def test_live_pages_need_their_permissions(audits: list[dict[str, Any]]) -> None:
    bob = await connect(BOB)
    outsider = await sync_to_async(staff_client)(*ALL, staff=False)
    assert (await sync_to_async(outsider.get)("/admin/live/")).status_code == 302  # to login
    viewer = await sync_to_async(staff_client)("view_live_sockets")
    assert (await sync_to_async(viewer.get)("/admin/live/")).status_code == 200
    refused = await sync_to_async(viewer.post)("/admin/live/disconnect/", {
        "issuer": ISS, "subject": "bob", "reason": "no"})
    assert refused.status_code == 403
    assert await bob.receive_nothing()
    assert [(a["event"], a["outcome"], a["reason"]) for a in audits] == [
        ("disconnect", "deny", "forbidden")]
    nobody = await sync_to_async(staff_client)()
    assert (await sync_to_async(nobody.get)("/admin/live/")).status_code == 403
    assert (await sync_to_async(nobody.get)("/admin/access/")).status_code == 403
    await bob.disconnect()


# --- check access -------------------------------------------------------------------


def _session_for(user: Any, groups: list[str]) -> None:
    """What a browser login leaves: a session with the claims snapshot, and its binding."""
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store[AUTH_KEY] = {"expires_at": time.time() + 300, "claims": {
        "issuer": LOGIN_ISSUER, "subject": "sub-carol", "groups": groups, "roles": [],
        "scopes": ["openid", "ws"], "client_id": "gateway", "sid": "s1"}}
    store.save()
    assert store.session_key is not None
    SessionBinding.objects.create(session_key=store.session_key, issuer=LOGIN_ISSUER,
                                  subject="sub-carol", sid="s1")


def test_check_access_for_a_user_explains_channels_by_grant() -> None:
    Grant.objects.create(issuer=LOGIN_ISSUER, claim="groups", value="ops", target="alerts.*",
                         subscribe=True, presence=True)
    Grant.objects.create(issuer=LOGIN_ISSUER, claim="groups", value="other", target="alerts.x")
    carol = get_user_model().objects.create_user("carol")
    OidcIdentity.objects.create(user=carol, issuer=LOGIN_ISSUER, subject="sub-carol")
    _session_for(carol, ["ops"])
    query: dict[str, int | str] = {"user": carol.pk, "channel": "Alerts.X"}
    page = staff_client(*ALL).get("/admin/access/", query)
    html = page.content.decode()
    assert page.status_code == 200
    assert "session of" in html and "<code>sub-carol</code>" in html
    assert "<td><code>alerts.*</code></td><td>presence, subscribe</td>" in html
    assert '<p id="channel-operations">Allowed: <strong>presence, subscribe</strong>.</p>' in html
    assert "groups does not hold other" in html  # the grant that did not apply, and why
    assert "groups holds ops" in html
    assert "<td><code>/ws/events/</code></td><td>allow</td>" in html


def test_check_access_for_pasted_service_claims() -> None:
    Grant.objects.create(issuer=LOGIN_ISSUER, claim="client_id", value="svc-reader",
                         target="deploys")
    claims = {"iss": LOGIN_ISSUER, "sub": "svc-1", "client_id": "svc-reader", "scope": "ws",
              "exp": time.time() + 300}
    client = staff_client("check_access")
    html = client.post("/admin/access/", {"claims": json.dumps(claims)}).content.decode()
    assert "pasted claims" in html
    assert "<td><code>deploys</code></td><td>subscribe</td>" in html
    assert "client_id=svc-reader" in html
    nothing = client.post("/admin/access/", {"claims": json.dumps({**claims, "client_id": "x"})})
    assert 'id="no-targets"' in nothing.content.decode()


@pytest.mark.parametrize(("claims", "problem"), [
    ("not json", "not valid JSON"),
    ("[" * 30_000, "not valid JSON"),  # nested past the interpreter's recursion limit
    (json.dumps({"iss": LOGIN_ISSUER, "sub": "\ud800"}), "lone UTF-16 surrogate"),
    (json.dumps({"iss": LOGIN_ISSUER, "sub": "x", "exp": 10 ** 400}),
     "would refuse these claims: missing_claim"),
    ("[1]", "must be one JSON object"),
    ('{"iss": "https://evil.example.com", "sub": "x"}', "is not a trusted issuer"),
    (json.dumps({"iss": LOGIN_ISSUER}), "would refuse these claims: missing_claim"),
])
def test_check_access_says_what_is_wrong_with_pasted_claims(claims: str, problem: str) -> None:
    html = staff_client("check_access").post("/admin/access/", {"claims": claims}).content.decode()
    assert 'id="problem"' in html and problem in html


@pytest.mark.parametrize("user", ["\u00b2", "9" * 5000, "-1", "1.0"])
def test_check_access_for_a_user_id_that_is_no_id_says_no_such_user(user: str) -> None:
    html = staff_client("check_access").get("/admin/access/", {"user": user}).content.decode()
    assert "No such user." in html


def test_check_access_for_a_user_without_a_session_says_so() -> None:
    dave = get_user_model().objects.create_user("dave")
    html = staff_client("check_access").get("/admin/access/", {"user": dave.pk}).content.decode()
    assert "dave has no live browser session" in html
