"""Every grant change in the admin shows its preview first (issue 22): add, edit, delete and
the bulk delete action save nothing until confirmed with the token of that exact change at
that grant version; going back saves nothing; the change log keeps the preview's counts and
each process's outcome; logins keep the claims the preview uses for people not connected."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.auth.signals import user_logged_in
from django.test import Client, RequestFactory
from django.utils import timezone

from config.asgi import application
from gateway.grants.outcome import Outcomes, outcomes
from gateway.grants.store import cache
from gateway.login.known import lines, matched_as, principal_of_known
from gateway.login.sessions import AUTH_KEY, session_store_class
from gateway.models import Grant, GrantChange, GrantOutcome, KnownClaims
from gateway.ops.roster import (
    CLAIMS_KEY,
    INFO_KEY,
    ROSTER_KEY,
    MemoryRoster,
    RedisRoster,
    SocketEntry,
    matcher_view,
    this_process,
    use_roster,
)
from gateway.oversight.preview import review, stage_save
from tests.channels.conftest import ISSUER, token

pytestmark = pytest.mark.django_db(transaction=True)

ISS = "https://idp.example.com"
LOGIN_ISSUER = settings.GATEWAY.issuer
URL = "/admin/gateway/grant/"
SHARED_ROSTER = "redis://127.0.0.1:6379/13"  # a database of our own on the shared server


@pytest.fixture(autouse=True)
def _discovered(discovered: None) -> None:
    """The login issuer as discovered (tests/channels/conftest.py)."""


def known(subject: str, groups: list[str], days_ago: float = 0) -> None:
    KnownClaims.objects.create(
        issuer=ISS, subject=subject, username=subject, seen_at=timezone.now() - timedelta(days=days_ago),
        snapshot={"issuer": ISS, "subject": subject, "groups": groups, "roles": [], "scopes": []},
        groups=lines(groups))


@pytest.fixture
def roster() -> Iterator[MemoryRoster]:
    """bob holds team.alpha on two processes, carol holds team.oncall on one; dave and erin
    are known users without a socket; frank was seen too long ago to count."""
    live = MemoryRoster()
    use_roster(live)
    cache.clear()
    Grant.objects.create(issuer=ISS, claim="groups", value="eng", target="team.*")
    Grant.objects.create(issuer=ISS, claim="groups", value="ops", target="ops")
    GrantChange.objects.all().delete()  # the log of the setup itself
    for subject, groups in (("bob", ["eng"]), ("carol", ["eng"]), ("dave", ["eng"]),
                            ("erin", ["ops"])):
        known(subject, groups)
    known("frank", ["eng"], days_ago=KnownClaims.KEEP_DAYS + 1)
    for n, (subject, process, channels) in enumerate((
            ("bob", "host-a:1", ("team.alpha",)), ("bob", "host-b:2", ("team.alpha", "ops")),
            ("carol", "host-b:2", ("team.oncall",)))):
        groups = ["eng", "ops"] if channels == ("team.alpha", "ops") else ["eng"]
        async_to_sync(live.opened)(SocketEntry(
            socket=f"s{n}", issuer=ISS, subject=subject, route="/ws/events/", credential="bearer",
            process=process, connected_at=time.time(), channels=channels,
            **matcher_view(groups, [], {"iss": ISS, "sub": subject})))
    yield live
    use_roster(None)
    cache.clear()


def admin_client(*permissions: str, superuser: bool = True) -> Client:
    user = get_user_model().objects.create_user(f"admin-{time.monotonic_ns()}", is_staff=True,
                                                is_superuser=superuser)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="gateway",
                                                        codename__in=permissions))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf(client: Client, url: str) -> str:
    page = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def hidden(page: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page):
        fields.setdefault(name, []).append(value.replace("&quot;", '"').replace("&amp;", "&"))
    return {k: v if len(v) > 1 else v[0] for k, v in fields.items()}


def form(client: Client, url: str, **changes: Any) -> dict[str, Any]:
    data = {"issuer": ISS, "claim": "groups", "value": "eng", "target": "team.*",
            "subscribe": "on", "note": "", "_save": "Save", "csrfmiddlewaretoken": csrf(client, url)}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def grant_id(target: str) -> int:
    return int(Grant.objects.get(target=target).pk)


def test_narrowing_a_pattern_previews_then_going_back_saves_nothing_and_confirming_saves_it(
        roster: MemoryRoster) -> None:
    client = admin_client()
    url = f"{URL}{grant_id('team.*')}/change/"
    page = client.post(url, form(client, url, target="team.oncall")).content.decode()

    assert Grant.objects.filter(target="team.*").exists() and not GrantChange.objects.exists()
    effect = re.search(r'data-target="team\.\*".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    assert 'data-operation="subscribe"' in effect and "bob, carol, dave (3)" in effect
    assert "frank" not in page and "erin" not in effect
    assert 'data-target="team.oncall"' not in page  # nobody gains or loses there
    assert 'id="preview-sockets" data-revoked="2"' in page
    assert 'data-process="host-a:1" data-sockets="1"' in page
    assert 'data-process="host-b:2" data-sockets="1"' in page  # carol's keeps team.oncall
    assert re.search(r'id="preview-offline" data-count="1">dave:', page)
    assert "no claims on record" in page and "next token refresh" in page

    fields = hidden(page)
    back = client.post(url, {**fields, "_preview_back": "Go back"})
    assert back.status_code == 200 and 'value="team.oncall"' in back.content.decode()
    assert Grant.objects.filter(target="team.*").exists() and not GrantChange.objects.exists()

    done = client.post(url, {**fields, "_preview_confirm": "Confirm and save"})
    assert done.status_code == 302
    assert not Grant.objects.filter(target="team.*").exists()
    change = GrantChange.objects.get()
    assert change.action == "update" and change.after["target"] == "team.oncall"  # type: ignore[index]
    assert change.preview is not None and change.batch
    assert change.preview["sockets_revoked"] == 2
    assert change.preview["by_process"] == {"host-a:1": 1, "host-b:2": 1}
    assert change.preview["losing"] == 3 and change.preview["not_connected"] == 1


def test_a_confirm_applies_only_the_previewed_change_at_the_previewed_version(
        roster: MemoryRoster) -> None:
    client = admin_client()
    url = f"{URL}{grant_id('team.*')}/change/"
    fields = hidden(client.post(url, form(client, url, target="team.oncall")).content.decode())

    tampered = client.post(url, {**fields, "target": "team.other", "_preview_confirm": "1"})
    assert tampered.status_code == 200 and "Review the grant change" in tampered.content.decode()
    assert not GrantChange.objects.exists()

    Grant.objects.create(issuer=ISS, claim="groups", value="eng", target="elsewhere")  # meanwhile
    stale = client.post(url, {**fields, "_preview_confirm": "1"})
    assert stale.status_code == 200 and "changed since that preview" in stale.content.decode()
    assert Grant.objects.filter(target="team.*").exists()

    fresh = hidden(stale.content.decode())
    assert client.post(url, {**fresh, "_preview_confirm": "1"}).status_code == 302
    assert Grant.objects.filter(target="team.oncall").exists()

    forged = {**fields, "_preview_token": fields["_preview_token"][:-2] + "xx"}
    client.post(url, {**forged, "target": "team.*", "_preview_confirm": "1"})
    assert Grant.objects.filter(target="team.oncall").exists()


def test_adding_a_grant_previews_who_gains_before_it_is_saved(roster: MemoryRoster) -> None:
    client = admin_client()
    url = f"{URL}add/"
    page = client.post(url, form(client, url, value="ops", target="team.*", publish="on")
                       ).content.decode()
    assert not Grant.objects.filter(value="ops", target="team.*").exists()
    effect = re.search(r'data-target="team\.\*".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    gains = re.search(r'class="preview-gains">(.*?)</td>', effect, re.S).group(1)  # type: ignore[union-attr]
    assert "subscribe</strong>: erin (1)" in gains  # bob (socket: eng+ops) already subscribes
    assert "publish</strong>: bob, erin (2)" in gains
    assert 'data-revoked="0"' in page
    done = client.post(url, {**hidden(page), "_preview_confirm": "1"})
    assert done.status_code == 302 and Grant.objects.filter(value="ops", target="team.*").exists()
    assert GrantChange.objects.get().preview["gaining"] == 2  # type: ignore[index]


def test_deleting_a_grant_previews_first_and_needs_the_token(roster: MemoryRoster) -> None:
    client = admin_client()
    url = f"{URL}{grant_id('team.*')}/delete/"
    page = client.get(url).content.decode()
    assert 'data-revoked="3"' in page and "Confirm and delete" in page
    fields = hidden(page)
    without = client.post(url, {"post": "yes", "csrfmiddlewaretoken": fields["csrfmiddlewaretoken"]})
    assert without.status_code == 302 and Grant.objects.filter(target="team.*").exists()
    assert client.post(url, fields).status_code == 302
    assert not Grant.objects.filter(target="team.*").exists()
    assert GrantChange.objects.get().preview["sockets_revoked"] == 3  # type: ignore[index]


def test_the_bulk_delete_action_previews_all_selected_and_records_one_batch(
        roster: MemoryRoster) -> None:
    client = admin_client()
    ids = [str(grant_id("team.*")), str(grant_id("ops"))]
    data = {"action": "delete_selected", "_selected_action": ids,
            "csrfmiddlewaretoken": csrf(client, URL)}
    page = client.post(URL, data).content.decode()
    assert Grant.objects.count() == 2 and 'data-revoked="3"' in page
    assert 'data-target="ops"' in page and 'data-target="team.*"' in page
    fields = hidden(page)
    assert client.post(URL, fields).status_code == 302
    assert not Grant.objects.exists()
    changes = list(GrantChange.objects.all())
    assert len(changes) == 2 and len({c.batch for c in changes}) == 1
    assert all(c.preview and c.preview["sockets_revoked"] == 3 for c in changes)


def test_previews_are_for_staff_with_the_permission_only(roster: MemoryRoster) -> None:
    url = f"{URL}{grant_id('team.*')}/change/"
    viewer = admin_client("view_grant", superuser=False)
    answer = viewer.post(url, form(viewer, url, target="team.oncall"))
    assert answer.status_code == 403
    anonymous = Client()
    assert anonymous.post(url, {"target": "team.oncall"}).status_code == 302  # to the login
    admin = admin_client()
    no_csrf = Client(enforce_csrf_checks=True)
    no_csrf.force_login(get_user_model().objects.get(pk=admin.session["_auth_user_id"]))
    assert no_csrf.post(url, {"target": "team.oncall"}).status_code == 403
    assert Grant.objects.filter(target="team.*").exists() and not GrantChange.objects.exists()


async def test_each_process_records_what_it_revoked_and_the_change_log_shows_it() -> None:
    one, two = Outcomes(delay=0.01), Outcomes(delay=0.01)  # two processes
    for lost in (1, 0, 2):
        one.report(7, "host-a:1", lost)
    two.report(7, "host-b:2", 1)
    await one.flush()
    await two.flush()
    one.report(7, "host-a:1", 1)  # a late socket adds to the row
    await one.flush()
    rows = {r.process: r async for r in GrantOutcome.objects.filter(version=7)}
    assert (rows["host-a:1"].rechecked, rows["host-a:1"].revoked_sockets,
            rows["host-a:1"].revoked_channels) == (4, 3, 4)
    assert rows["host-b:2"].revoked_sockets == 1


def test_the_change_log_shows_the_preview_beside_what_each_process_revoked(
        roster: MemoryRoster) -> None:
    client = admin_client()
    url = f"{URL}{grant_id('team.*')}/change/"
    fields = hidden(client.post(url, form(client, url, target="team.oncall")).content.decode())
    client.post(url, {**fields, "_preview_confirm": "1"})
    change = GrantChange.objects.get()
    GrantOutcome.objects.create(version=change.version, process="host-a:1", rechecked=1,
                                revoked_sockets=1, revoked_channels=1)
    GrantOutcome.objects.create(version=change.version, process="host-b:2", rechecked=2,
                                revoked_sockets=1, revoked_channels=1)
    grant_page = client.get(url).content.decode()
    log_url = re.search(r'href="([^"]+)" id="grant-changes"', grant_page).group(1)  # type: ignore[union-attr]
    log = client.get(log_url.replace("&amp;", "&")).content.decode()
    assert "2 (host-a:1: 1, host-b:2: 1); 3 lose" in log
    assert "2: host-a:1: 1, host-b:2: 1" in log
    detail = client.get(f"/admin/gateway/grantchange/{change.pk}/change/").content.decode()
    assert "2: host-a:1: 1, host-b:2: 1" in detail and "sockets_revoked" in detail


def test_a_login_keeps_its_claims_for_the_preview_and_forgets_old_ones() -> None:
    known("old", ["eng"], days_ago=KnownClaims.KEEP_DAYS + 1)
    user = get_user_model().objects.create_user("bob")
    request = RequestFactory().get("/")
    request.session = session_store_class()()
    request.session[AUTH_KEY] = {"claims": {
        "issuer": ISS, "subject": "bob", "groups": ["eng"] * 5000, "roles": [], "scopes": []}}
    request.session.save()
    user_logged_in.send(sender=type(user), request=request, user=user)
    row = KnownClaims.objects.get(subject="bob")
    assert row.username == "bob" and row.snapshot["truncated"] is True
    assert len(row.snapshot["groups"]) < 5000
    assert not KnownClaims.objects.filter(subject="old").exists()


def test_a_change_on_a_claim_path_reads_the_sockets_and_logins_claims(
        roster: MemoryRoster) -> None:
    """Beyond groups and roles, the preview reads full claims: the login snapshot's email,
    a socket's token claims; a login whose groups hold a line break is read from its snapshot."""
    KnownClaims.objects.filter(subject="erin").update(snapshot={
        "issuer": ISS, "subject": "erin", "groups": ["ops"], "roles": [], "scopes": [],
        "email": "erin@example.com"})
    KnownClaims.objects.create(issuer=ISS, subject="odd", username="odd", seen_at=timezone.now(),
                               snapshot={"issuer": ISS, "subject": "odd", "roles": [],
                                         "groups": ["two\nlines", "eng"], "scopes": []},
                               groups=lines(["two\nlines", "eng"]))
    async_to_sync(roster.opened)(SocketEntry(
        socket="s9", issuer=ISS, subject="gina", route="/ws/events/", credential="bearer",
        process="host-c:3", connected_at=time.time(), channels=("mail",),
        **matcher_view([], [], {"email": "gina@example.com"})))
    Grant.objects.create(issuer=ISS, claim="email", value="gina@example.com", target="mail")
    client = admin_client()

    url = f"{URL}add/"
    page = client.post(url, form(client, url, claim="email", value="erin@example.com",
                                 target="mail")).content.decode()
    assert "subscribe</strong>: erin (1)" in page  # found through the JSON text filter
    KnownClaims.objects.create(issuer=ISS, subject="zoe", username="zoe", seen_at=timezone.now(),
                               snapshot={"issuer": ISS, "subject": "zoe", "groups": [],
                                         "email": 'zo\u00e9 "z"@example.com'})
    page = client.post(url, form(client, url, claim="email", value='zo\u00e9 "z"@example.com',
                                 target="mail")).content.decode()
    assert "subscribe</strong>: zoe (1)" in page  # a value JSON may escape: no filter

    delete = client.get(f"{URL}{grant_id('mail')}/delete/").content.decode()
    assert 'data-revoked="1"' in delete and 'data-process="host-c:3"' in delete

    narrow = f"{URL}{grant_id('team.*')}/change/"
    page = client.post(narrow, form(client, narrow, target="team.oncall")).content.decode()
    assert "bob, carol, dave, odd (4)" in page  # odd's groups come from the snapshot


async def test_a_revoking_grant_change_is_counted_by_the_process_that_revoked() -> None:
    cache.clear()
    grant = await Grant.objects.acreate(issuer=ISSUER, claim="groups", value="eng",
                                        target="deploys")
    comm = WebsocketCommunicator(application, "/ws/events/", headers=[
        (b"authorization", f"Bearer {token(sub='bob', groups=['eng'])}".encode())])
    assert (await comm.connect())[0]
    await comm.receive_from()  # welcome
    await comm.send_to(text_data='{"v": 1, "type": "subscribe", "id": 1, "channel": "deploys"}')
    await comm.receive_from()  # ack
    grant_pk = grant.pk
    await grant.adelete()
    assert '"revoked"' in await comm.receive_from(timeout=2)
    await outcomes.flush()
    change = await GrantChange.objects.filter(grant_id=grant_pk, action="delete").afirst()
    assert change is not None
    row = await GrantOutcome.objects.aget(version=change.version, process=this_process())
    assert (row.rechecked, row.revoked_sockets, row.revoked_channels) == (1, 1, 1)
    await comm.disconnect()
    await sync_to_async(cache.clear)()


@pytest.mark.parametrize("snapshot", [
    {"issuer": ISS, "subject": "a", "groups": ["eng", "ops"], "roles": ["dev"], "email": "a@x"},
    {"issuer": ISS, "subject": "a"},
    {"issuer": ISS, "subject": "a", "groups": 3},
    {"issuer": ISS, "groups": ["eng"]},
    {"subject": "a"},
])
def test_the_preview_reads_a_login_as_its_session_principal_is_matched(
        snapshot: dict[str, Any]) -> None:
    principal = principal_of_known(snapshot)
    seen = matched_as(snapshot)
    if principal is None:
        assert seen is None
        return
    assert seen is not None
    assert seen[:4] == (principal.issuer, principal.subject, principal.groups, principal.roles)
    assert dict(seen[4]) == dict(principal.claims)


async def test_the_preview_predicts_exactly_what_live_sockets_then_drop() -> None:
    """In process, real consumers: the preview's sockets and channels to revoke are the
    ``unsubscribed`` notices the sockets get once the change is saved."""
    live = MemoryRoster()
    use_roster(live)
    cache.clear()
    wide = await Grant.objects.acreate(issuer=ISSUER, claim="groups", value="eng", target="team.*")
    await Grant.objects.acreate(issuer=ISSUER, claim="groups", value="ops", target="team.ops")
    await Grant.objects.acreate(issuer=ISSUER, claim="roles", value="lead", target="team.b")
    plans = {"ann": (["eng"], [], ["team.a", "team.b", "team.c.d"]),
             "ben": (["eng", "ops"], [], ["team.ops", "team.b"]),
             "cat": (["eng"], ["lead"], ["team.b", "team.a"]),
             "dan": (["ops"], [], ["team.ops"])}
    sockets = {}
    for subject, (groups, roles, channels) in plans.items():
        comm = WebsocketCommunicator(application, "/ws/events/", headers=[(
            b"authorization",
            f"Bearer {token(sub=subject, groups=groups, roles=roles)}".encode())])
        assert (await comm.connect())[0]
        await comm.receive_from()  # welcome
        for n, channel in enumerate(channels):
            await comm.send_to(text_data=json.dumps(
                {"v": 1, "type": "subscribe", "id": n, "channel": channel}))
            assert json.loads(await comm.receive_from())["type"] == "ack", (subject, channel)
        sockets[subject] = comm

    narrowed = await Grant.objects.aget(pk=wide.pk)
    narrowed.target = "team.a"
    found = await sync_to_async(review)(stage_save(wide, narrowed))
    predicted = {p.process: p for p in found.processes}
    assert found.revoked_sockets == 2 and set(predicted) == {this_process()}

    await narrowed.asave()
    dropped: dict[str, set[str]] = {}
    for subject, comm in sockets.items():
        while not await comm.receive_nothing(timeout=1):  # until a second passes quietly
            frame = json.loads(await comm.receive_from())
            if frame["type"] == "channels":
                continue
            assert frame["type"] == "unsubscribed" and frame["reason"] == "revoked"
            dropped.setdefault(subject, set()).add(frame["channel"])
        await comm.disconnect()
    assert dropped == {"ann": {"team.b", "team.c.d"}, "ben": {"team.b"}}
    row = predicted[this_process()]
    assert set(row.channels) == {"team.b", "team.c.d"} and row.sockets == 2
    assert set(row.holders.shown) == {"ann (" + ISSUER + ")", "ben (" + ISSUER + ")"}
    use_roster(None)
    cache.clear()


def test_a_groups_change_keeps_sockets_a_claim_path_grant_still_allows(
        roster: MemoryRoster) -> None:
    """A change on groups alone still reads the token claims (kept apart in the Redis roster)
    of sockets on channels a claim-path grant covers: gina keeps ``mail`` (her email's
    grant), as she does at runtime."""
    shared = RedisRoster(SHARED_ROSTER, ttl=60)
    client = redis.from_url(SHARED_ROSTER)
    client.delete(ROSTER_KEY, INFO_KEY, CLAIMS_KEY)
    for entry in [*async_to_sync(roster.entries)(), SocketEntry(
            socket="s9", issuer=ISS, subject="gina", route="/ws/events/", credential="bearer",
            process="host-c:3", connected_at=time.time(), channels=("mail",),
            **matcher_view([], [], {"email": "gina@example.com"}))]:
        async_to_sync(shared.opened)(entry)
    use_roster(shared)
    Grant.objects.create(issuer=ISS, claim="email", value="gina@example.com", target="mail")
    admin = admin_client()
    url = f"{URL}{grant_id('team.*')}/change/"
    try:
        page = admin.post(url, form(admin, url, target="team.oncall")).content.decode()
    finally:
        client.delete(ROSTER_KEY, INFO_KEY, CLAIMS_KEY)
    assert 'id="preview-sockets" data-revoked="2"' in page  # bob's two, not gina's
    assert 'data-process="host-c:3"' not in page
