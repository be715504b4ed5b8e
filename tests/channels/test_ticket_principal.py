"""Issue 23: the tickets one principal minted redeem to one principal object.

So what sockets derive from a principal once (welcome frame, roster view:
``oidc.perprincipal``) is shared by every socket of its tickets, as by the sockets of its
token, instead of being built again for each redemption.
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from asgiref.sync import sync_to_async

from gateway.handshake.authn import principal_for_token
from gateway.handshake.tickets import (
    _hash,
    principal_snapshot,
    redeem_ticket,
    store_ticket,
)
from gateway.handshake.ticketstore import tickets
from oidc.types import CredentialKind, Principal
from tests.channels.conftest import token

pytestmark = pytest.mark.django_db(transaction=True)


async def _principal(raw: str) -> Principal:
    return await principal_for_token(raw, CredentialKind.BEARER, now=time.time())


async def _mint(principal: Principal) -> str:
    return await sync_to_async(store_ticket)(principal.issuer, principal.subject,
                                             principal=principal_snapshot(principal))


async def test_two_tickets_of_one_principal_redeem_to_one_object() -> None:
    minted_by = await _principal(token(jti="same-token"))
    first, second = await _mint(minted_by), await _mint(minted_by)
    a = (await redeem_ticket(first, now=time.time())).principal
    b = (await redeem_ticket(second, now=time.time())).principal
    assert a is not None and a is b
    assert a.credential is CredentialKind.TICKET
    assert (a.subject, a.groups, dict(a.claims)) == (minted_by.subject, minted_by.groups,
                                                     dict(minted_by.claims))


async def test_another_principal_gets_its_own_object() -> None:
    mine = await _principal(token(jti="mine", sub="svc-1"))
    theirs = await _principal(token(jti="theirs", sub="svc-2"))
    a = (await redeem_ticket(await _mint(mine), now=time.time())).principal
    b = (await redeem_ticket(await _mint(theirs), now=time.time())).principal
    assert a is not None and b is not None and a is not b
    assert (a.subject, b.subject) == ("svc-1", "svc-2")


async def test_the_snapshot_is_the_same_text_for_an_equal_principal() -> None:
    principal = await _principal(token(jti="stable"))
    reordered = dataclasses.replace(principal, claims=dict(reversed(list(principal.claims.items()))))
    assert list(reordered.claims) != list(principal.claims)
    assert principal_snapshot(reordered) == principal_snapshot(principal)


async def test_a_ticket_minted_before_snapshots_were_text_still_redeems() -> None:
    """A rolling upgrade: a record written by an older process holds the snapshot as an
    object; it is redeemed as before (tickets live 30 s)."""
    minted_by = await _principal(token(jti="older"))
    record = {"issuer": minted_by.issuer, "subject": minted_by.subject,
              "expires_at": time.time() + 30,
              "principal": json.loads(principal_snapshot(minted_by))}
    await tickets().put(_hash("an-older-ticket"), record, 30)
    redeemed = (await redeem_ticket("an-older-ticket", now=time.time())).principal
    assert redeemed is not None and redeemed.subject == minted_by.subject
    assert redeemed.credential is CredentialKind.TICKET
