"""One-time websocket tickets for clients that cannot send cookies or headers on a socket.

``POST /ws/ticket`` (``ticket_view``) returns ``{"ticket": ..., "expires_in": 30}``. It is
minted either by a logged-in browser session (CSRF-protected) or with ``Authorization: Bearer <token>``. The
ticket is presented once, as subprotocol ``gateway.ticket.<ticket>`` or in an ``auth``
message, within 30 s, and yields the principal that minted it. Tickets wait in
``gateway.handshake.ticketstore`` (Redis, or this process): redeeming one is a single
atomic take, with no database write on the handshake path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import async_to_sync
from redis.exceptions import RedisError

from gateway.handshake.credentials import TICKET_PREFIX
from gateway.handshake.ticketstore import tickets
from oidc.errors import OidcError
from oidc.introspection import PrincipalCache
from oidc.types import CredentialKind, Principal

logger = logging.getLogger("gateway.tickets")

TICKET_TTL = 30.0
MAX_TICKET_CHARS = 128


class TicketsUnavailable(OidcError):
    """The ticket store (Redis) did not answer: try again later."""

    error = "tickets_unavailable"
    status = "unavailable"


class InvalidTicket(OidcError):
    """Unknown, expired or already used ticket."""

    error = "invalid_ticket"
    status = "unauthenticated"


@dataclasses.dataclass(frozen=True)
class Redeemed:
    session_key: str | None
    principal: Principal | None  # set for tickets minted with a bearer token


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def store_ticket(issuer: str, subject: str, **binding: Any) -> str:
    """Record a fresh ticket (only its hash is kept) and return it (sync: minting views)."""
    ticket = secrets.token_urlsafe(32)
    record = {"issuer": issuer, "subject": subject, "expires_at": time.time() + TICKET_TTL,
              **binding}
    try:
        async_to_sync(tickets().put)(_hash(ticket), record, TICKET_TTL)
    except (RedisError, OSError) as exc:
        raise TicketsUnavailable(type(exc).__name__) from exc
    return ticket


def principal_snapshot(principal: Principal) -> str:
    """What a bearer-minted ticket remembers of its principal: canonical JSON text, the
    same for every ticket of the same principal, so their redemptions share one object."""
    return json.dumps({**principal.as_dict(), "claims": dict(principal.claims),
                       "kid": principal.kid, "jti_hash": principal.jti_hash,
                       "issued_at": principal.issued_at},
                      sort_keys=True, separators=(",", ":"), default=str)


# One principal object per snapshot text, so what sockets derive from it once (welcome
# frame, roster view: ``oidc.perprincipal``) is shared by every ticket it minted.
redeemed_principals = PrincipalCache(ttl=300.0, max_entries=10_000)


def _redeemed_principal(snapshot: str | dict[str, Any], now: float) -> Principal:
    if isinstance(snapshot, dict):  # minted by a process from before snapshots were text
        return _principal_from_snapshot(snapshot)
    principal = redeemed_principals.get(snapshot, now)
    if principal is None:
        principal = _principal_from_snapshot(json.loads(snapshot))
        redeemed_principals.put(snapshot, principal, now)
    return principal


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _principal_from_snapshot(snapshot: dict[str, Any]) -> Principal:
    return Principal(
        issuer=snapshot["issuer"], subject=snapshot["subject"], client_id=snapshot["client_id"],
        groups=frozenset(snapshot["groups"]), roles=frozenset(snapshot["roles"]),
        scopes=frozenset(snapshot["scopes"]), claims=MappingProxyType(snapshot["claims"]),
        expires_at=float(snapshot["expires_at"]), sid=snapshot["sid"],
        credential=CredentialKind.TICKET, kid=snapshot.get("kid"),
        jti_hash=snapshot.get("jti_hash"), groups_overage=snapshot.get("groups_overage") is True,
        issued_at=_number_or_none(snapshot.get("issued_at")),
    )


MAX_BURNT_PER_URL = 16


def _url_values(scope: Mapping[str, Any]) -> set[str]:
    query = scope.get("query_string", b"").decode("latin-1")
    values = {value.removeprefix(TICKET_PREFIX)
              for _, value in parse_qsl(query, keep_blank_values=True)}
    return {v for v in values if 0 < len(v) <= MAX_TICKET_CHARS}


async def burn_url_tickets(scope: Mapping[str, Any]) -> int:
    """Use up any ticket that appeared in a URL, before the handshake is refused.

    A URL may be logged by proxies, so a ticket seen there is no longer secret: it
    must not be redeemable afterwards through a subprotocol or an ``auth`` frame.
    """
    return await burn_tickets(_url_values(scope))


async def burn_tickets(offered: Iterable[str]) -> int:
    """Use up these tickets (a refused handshake offered them: in a URL, or beside another
    credential), so they cannot be redeemed afterwards."""
    values = {t for t in offered if 0 < len(t) <= MAX_TICKET_CHARS}
    hashes = [_hash(value) for value in sorted(values)[:MAX_BURNT_PER_URL]]
    if not hashes:
        return 0
    try:
        return await tickets().burn(hashes)
    except (RedisError, OSError):  # it still expires within TICKET_TTL
        logger.warning("could not burn %d ticket(s) offered in a refused handshake: Redis did"
                       " not answer", len(hashes))
        return 0


async def redeem_ticket(ticket: str, *, now: float) -> Redeemed:
    """Consume a ticket atomically; return what it is bound to."""
    if not ticket or len(ticket) > MAX_TICKET_CHARS or not ticket.isascii():
        raise InvalidTicket()
    try:
        record = await tickets().take(_hash(ticket))  # single use, even across processes
    except (RedisError, OSError) as exc:
        raise TicketsUnavailable(type(exc).__name__) from exc
    if record is None or float(record["expires_at"]) <= now:
        raise InvalidTicket()
    if record.get("principal") is not None:
        return Redeemed(None, _redeemed_principal(record["principal"], now))
    return Redeemed(record.get("session_key"), None)
