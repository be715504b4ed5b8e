"""One credential per handshake (docs/errors.md): two explicit carriers are refused with 1008
``ambiguous_credentials`` and audited; the ambient session cookie yields to an explicit one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from config.asgi import application
from gateway.handshake.tickets import InvalidTicket, redeem_ticket, store_ticket
from tests.channels.conftest import ORIGIN, token

pytestmark = pytest.mark.django_db(transaction=True)

V1 = "gateway.v1"


def _bearer(raw: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {raw}".encode())


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import gateway.handshake.middleware

    events: list[dict[str, Any]] = []
    monkeypatch.setattr(gateway.handshake.middleware, "audit",
                        lambda event, outcome, reason, **fields: events.append(
                            {"event": event, "outcome": outcome, "reason": reason, **fields}))
    return events


async def _outcome(headers: list[tuple[bytes, bytes]], subprotocols: list[str]) -> dict[str, Any]:
    comm = WebsocketCommunicator(application, "/ws/", headers=headers, subprotocols=subprotocols)
    connected, _ = await comm.connect()
    assert connected  # accept-then-close: a browser can read the code
    message: dict[str, Any] = await comm.receive_output()
    await comm.disconnect()
    return message


async def _ticket(subject: str = "alice") -> str:
    return await sync_to_async(store_ticket)("https://issuer", subject, session_key=f"s-{subject}")


@pytest.mark.parametrize(("headers", "subprotocols", "carriers"), [
    ("header", ["bearer"], "bearer+subprotocol"),
    ("header", ["ticket"], "bearer+ticket"),
    (None, ["bearer", "bearer-other"], "subprotocol+subprotocol"),
    (None, ["bearer", "bearer"], "subprotocol+subprotocol"),
    (None, ["bearer", "ticket"], "subprotocol+ticket"),
    (None, ["ticket", "ticket-other"], "ticket+ticket"),
    ("header+cookie", ["bearer"], "bearer+subprotocol"),
], ids=["header+subprotocol", "header+ticket", "two bearer subprotocols",
        "the same bearer subprotocol twice", "subprotocol+ticket", "two tickets",
        "cookie, header and subprotocol"])
async def test_two_explicit_credentials_are_refused_1008_and_audited(
        headers: str | None, subprotocols: list[str], carriers: str,
        audited: list[dict[str, Any]]) -> None:
    good, other = token(), token(sub="mallory")
    tickets = {"ticket": await _ticket(), "ticket-other": await _ticket("bob")}
    values = {"bearer": f"gateway.bearer.{good}", "bearer-other": f"gateway.bearer.{other}",
              "ticket": f"gateway.ticket.{tickets['ticket']}",
              "ticket-other": f"gateway.ticket.{tickets['ticket-other']}"}
    sent = [(b"origin", ORIGIN.encode())]
    if headers and "header" in headers:
        sent.append(_bearer(good))
    if headers and "cookie" in headers:
        sent.append((b"cookie", b"sessionid=abc"))
    closed = await _outcome(sent, [V1, *(values[s] for s in subprotocols)])
    assert (closed["type"], closed["code"], closed["reason"]) == (
        "websocket.close", 1008, "ambiguous_credentials")
    [event] = audited
    assert (event["event"], event["outcome"], event["reason"], event["credential"]) == (
        "connect", "deny", "ambiguous_credentials", carriers)
    written = json.dumps(event)
    assert good not in written and other not in written
    assert not any(t in written for t in tickets.values())
    for kind, ticket in tickets.items():  # a ticket offered in the refused handshake is spent
        if kind in subprotocols:
            with pytest.raises(InvalidTicket):
                await redeem_ticket(ticket, now=0)


async def test_each_carrier_alone_is_still_accepted() -> None:
    for headers, subprotocols in (([_bearer(token())], [V1]),
                                  ([], [V1, f"gateway.bearer.{token()}"])):
        comm = WebsocketCommunicator(application, "/ws/", headers=headers,
                                     subprotocols=subprotocols)
        assert (await comm.connect())[0]
        assert json.loads(await comm.receive_from())["type"] == "welcome"
        await comm.disconnect()


@pytest.mark.parametrize("carrier", ["header", "subprotocol"])
async def test_the_ambient_session_cookie_yields_to_an_explicit_bearer(
        carrier: str, audited: list[dict[str, Any]]) -> None:
    """A browser sends the gateway's cookie with every handshake and the page cannot leave it
    out: the explicit credential is used and the cookie is not read (an unknown session
    would otherwise close 4401 no_session)."""
    headers = [(b"origin", ORIGIN.encode()), (b"cookie", b"sessionid=unknown-session")]
    subprotocols = [V1]
    if carrier == "header":
        headers.append(_bearer(token()))
    else:
        subprotocols.append(f"gateway.bearer.{token()}")
    comm = WebsocketCommunicator(application, "/ws/", headers=headers, subprotocols=subprotocols)
    assert (await comm.connect())[0]
    welcome = json.loads(await comm.receive_from())
    assert welcome["principal"]["subject"] == "svc-1"
    assert welcome["principal"]["credential"] == ("bearer" if carrier == "header" else "subprotocol")
    await comm.disconnect()
    assert [(e["outcome"], e["reason"]) for e in audited] == [("allow", "allowed")]


async def test_the_ambient_session_cookie_yields_to_a_ticket() -> None:
    """The documented same-origin flow: a page mints a ticket, and its browser sends the
    cookie along with the ticket subprotocol; the ticket is used."""
    import time

    from gateway.handshake.authn import principal_for_token
    from gateway.handshake.tickets import principal_snapshot
    from oidc.types import CredentialKind

    principal = await principal_for_token(token(), CredentialKind.BEARER, now=time.time())
    ticket = await sync_to_async(store_ticket)(principal.issuer, principal.subject,
                                               principal=principal_snapshot(principal))
    comm = WebsocketCommunicator(
        application, "/ws/", headers=[(b"origin", ORIGIN.encode()),
                                      (b"cookie", b"sessionid=unknown-session")],
        subprotocols=[V1, f"gateway.ticket.{ticket}"])
    assert (await comm.connect())[0]
    welcome = json.loads(await comm.receive_from())
    assert (welcome["principal"]["subject"], welcome["principal"]["credential"]) == ("svc-1", "ticket")
    await comm.disconnect()
