"""In-band re-authentication on an open socket (issue 5): same subject only, grants re-checked."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from gateway.grants.store import cache
from gateway.models import Grant
from tests.channels.conftest import ISSUER, token

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def grants() -> None:
    cache.clear()
    await Grant.objects.acreate(issuer=ISSUER, claim="groups", value="engineering",
                                target="deploys", subscribe=True)
    await Grant.objects.acreate(issuer=ISSUER, claim="groups", value="admins",
                                target="alerts.*", subscribe=True)


def user_token(groups: list[str], **claims: Any) -> str:
    return token(sub="alice", groups=groups, **claims)


async def _request(comm: WebsocketCommunicator, **frame: Any) -> dict[str, Any]:
    await comm.send_to(text_data=json.dumps({"v": 1} | frame))
    reply: dict[str, Any] = json.loads(await comm.receive_from())
    return reply


async def _connected(groups: list[str]) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/events/", headers=[
        (b"authorization", f"Bearer {user_token(groups)}".encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    return comm


async def test_refreshed_token_with_fewer_groups_revokes_lost_channels() -> None:
    comm = await _connected(["engineering", "admins"])
    assert (await _request(comm, type="subscribe", id=1, channel="alerts.critical"))["type"] == "ack"
    assert (await _request(comm, type="subscribe", id=2, channel="deploys"))["type"] == "ack"
    later = time.time() + 900
    reply = await _request(comm, type="auth", id=3, token=user_token(["engineering"], exp=later))
    assert reply["type"] == "ack"
    assert reply["expires_at"] == pytest.approx(later)
    notice = json.loads(await comm.receive_from())
    assert notice == {"v": 1, "type": "unsubscribed", "channel": "alerts.critical",
                      "reason": "revoked"}
    told = json.loads(await comm.receive_from())
    assert told == {"v": 1, "type": "channels",
                    "channels": [{"channel": "deploys", "operations": ["subscribe"]}]}
    again = await _request(comm, type="subscribe", id=4, channel="alerts.critical")
    assert again["error"] == "forbidden"
    await comm.disconnect()


async def test_refreshed_token_with_more_groups_allows_new_channels() -> None:
    comm = await _connected(["engineering"])
    assert (await _request(comm, type="subscribe", id=1, channel="alerts.x"))["type"] == "error"
    assert (await _request(comm, type="auth", id=2,
                           token=user_token(["engineering", "admins"])))["type"] == "ack"
    told = json.loads(await comm.receive_from())
    assert [c["channel"] for c in told["channels"]] == ["alerts.*", "deploys"]
    assert (await _request(comm, type="subscribe", id=3, channel="alerts.x"))["type"] == "ack"
    await comm.disconnect()


@pytest.mark.parametrize(("new_token", "reason"), [
    (lambda: token(sub="mallory", groups=["admins"]), "subject_changed"),
    (lambda: user_token(["engineering"], exp=1), "expired_token"),
    (lambda: user_token(["engineering"], aud="elsewhere"), "invalid_audience"),
])
async def test_bad_refresh_closes_4401(new_token: Any, reason: str) -> None:
    comm = await _connected(["engineering"])
    await comm.send_to(text_data=json.dumps({"v": 1, "type": "auth", "id": 1,
                                             "token": new_token()}))
    closing = await comm.receive_output()
    assert (closing["type"], closing["code"], closing["reason"]) == ("websocket.close", 4401,
                                                                      reason)


async def test_principal_route_reauth_sends_new_welcome() -> None:
    comm = WebsocketCommunicator(application, "/ws/", headers=[
        (b"authorization", f"Bearer {user_token(['engineering'])}".encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["principal"]["groups"] == ["engineering"]
    await comm.send_to(text_data=json.dumps({"type": "auth",
                                             "token": user_token(["engineering", "admins"])}))
    welcome = json.loads(await comm.receive_from())
    assert welcome["principal"]["groups"] == ["admins", "engineering"]
    assert welcome["principal"]["credential"] == "message"
    await comm.send_to(text_data=json.dumps({"type": "auth", "token": token(sub="mallory")}))
    closing = await comm.receive_output()
    assert (closing["code"], closing["reason"]) == (4401, "subject_changed")


async def _ticket_for(raw_token: str, **binding: Any) -> str:
    from asgiref.sync import sync_to_async

    from gateway.handshake.authn import principal_for_token
    from gateway.handshake.tickets import principal_snapshot, store_ticket
    from oidc.types import CredentialKind

    if binding:
        return await sync_to_async(store_ticket)(ISSUER, "alice", **binding)
    principal = await principal_for_token(raw_token, CredentialKind.BEARER, now=time.time())
    return await sync_to_async(store_ticket)(principal.issuer, principal.subject,
                                             principal=principal_snapshot(principal))


async def test_a_ticket_re_authenticates_in_band_once() -> None:
    comm = await _connected(["engineering"])
    later = time.time() + 900
    ticket = await _ticket_for(user_token(["engineering"], exp=later))
    reply = await _request(comm, type="auth", id=1, ticket=ticket)
    assert reply["type"] == "ack"
    assert reply["expires_at"] == pytest.approx(later)
    await comm.send_to(text_data=json.dumps({"v": 1, "type": "auth", "id": 2, "ticket": ticket}))
    closed = await comm.receive_output()
    assert (closed["code"], closed["reason"]) == (4401, "invalid_ticket")


async def test_a_session_ticket_cannot_renew_a_socket_of_no_session() -> None:
    comm = await _connected(["engineering"])
    ticket = await _ticket_for("", session_key="someone-elses-session")
    await comm.send_to(text_data=json.dumps({"v": 1, "type": "auth", "id": 1, "ticket": ticket}))
    closed = await comm.receive_output()
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 4401


async def test_auth_takes_exactly_one_of_token_and_ticket() -> None:
    comm = await _connected(["engineering"])
    reply = await _request(comm, type="auth", id=1, token=user_token(["engineering"]), ticket="t")
    assert (reply["type"], reply["error"]) == ("error", "missing_field")


async def test_a_refresh_updates_the_claims_the_roster_keeps_for_the_grant_preview() -> None:
    from gateway.ops.roster import MemoryRoster, use_roster

    roster = MemoryRoster()
    use_roster(roster)
    try:
        comm = await _connected(["engineering", "admins"])
        assert (await _request(comm, type="subscribe", id=1, channel="deploys"))["type"] == "ack"
        [entry] = await roster.entries()
        assert entry.groups == ("admins", "engineering") and entry.claims["sub"] == "alice"
        assert (await _request(comm, type="auth", id=2, token=user_token(
            ["engineering"], department="sre")))["type"] == "ack"
        [entry] = await roster.entries()
        assert entry.groups == ("engineering",) and entry.claims["department"] == "sre"
        assert entry.channels == ("deploys",)  # kept
        await comm.disconnect()
    finally:
        use_roster(None)
