"""The base websocket consumer: robust JSON frames, addressing groups, revocation."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import secrets
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from prometheus_client import Gauge

from consumers.protocol import encode
from consumers.ratelimit import TokenBucket
from consumers.roster import RosterMixin
from gateway.api import CloseCode, RouteDenied, SubjectChanged, close_for, reason_text
from gateway.api.consumers import (
    OPEN_CONNECTIONS,
    REDIS,
    Credential,
    Lifetime,
    WriteNow,
    audit,
    authenticate,
    closes,
    ledger,
    principal_for_token,
    selected_subprotocol,
    session_group,
    shared_refresh,
    sid_group,
    subject_group,
    switchboard,
    write_now_of,
)
from oidc.errors import OidcError
from oidc.perprincipal import PerPrincipal
from oidc.policy import evaluate
from oidc.types import CredentialKind, Principal

logger = logging.getLogger("consumers")

PROTOCOL_VERSION = 1


class SessionChanged(OidcError):
    """An in-band ticket was minted by another session than the one this socket serves."""

    error = "session_changed"
    status = "unauthenticated"


LIVE: weakref.WeakSet[GatewayConsumer] = weakref.WeakSet()  # this process's open sockets
EVERY: weakref.WeakSet[GatewayConsumer] = weakref.WeakSet()  # every socket not yet collected
OUTBOX_FRAMES = 1000  # frames one socket may have waiting behind a slow client
_TASKS: set[asyncio.Future[Any]] = set()  # event handlers and writers, kept referenced


_names: tuple[int, str, Iterator[int]] = (0, "", iter(()))


def socket_name() -> str:
    """``ws.<process>.<n>``: unique across processes (a random prefix per process, made
    anew after a fork) without a random draw per socket, as a ``uuid4`` would take."""
    global _names
    pid, prefix, counter = _names
    if pid != os.getpid():
        pid, prefix, counter = _names = (os.getpid(), secrets.token_hex(8), itertools.count())
    return f"ws.{prefix}.{next(counter):x}"


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def _send_unless_gone(send: Any, message: dict[str, Any]) -> None:
    """The server's send; a socket already gone (uvicorn's ClientDisconnected, an OSError)
    drops the message: its disconnect is on its way and cleans up."""
    try:
        await send(message)
    except OSError:
        logger.debug("dropping %s for a closed socket", message.get("type"))


async def close_all_local(code: CloseCode, reason: str) -> int:
    """Close every socket of this process (used when the message bus is lost)."""
    consumers = list(LIVE)
    for consumer in consumers:
        LIVE.discard(consumer)
        await consumer.close_with(code, reason)
    return len(consumers)


def _closed_socket_work() -> float:
    """Timers and tasks still pending for sockets already disconnected: always 0."""
    return float(sum(consumer.lifetime.pending() for consumer in list(EVERY)
                     if consumer.lifetime.gone))


CLOSED_SOCKET_WORK = Gauge(
    "gateway_closed_socket_work",
    "Timers and tasks still pending for disconnected sockets (0 unless something leaks)")
CLOSED_SOCKET_WORK.set_function(_closed_socket_work)


def _principal_groups(p: Principal) -> tuple[str, ...]:
    subject = subject_group(p.issuer, p.subject)
    return (subject, sid_group(p.issuer, p.sid)) if p.sid else (subject,)


principal_groups = PerPrincipal(_principal_groups)  # one set of names per principal


class GatewayConsumer(RosterMixin, AsyncWebsocketConsumer):
    """Accepts the principal the handshake middleware put in the scope.

    Joins groups that let any gateway process address this socket by session,
    subject and `sid` (``gateway.revoke`` events close it with 4401). Enforces the
    sockets-per-subject limit (4429 ``too_many_connections``, across processes through
    ``gateway.ops.ledger``) and the per-connection frame rate (4429 ``rate_limited``).

    Unlike a stock Channels consumer it has no channel-layer channel of its own: the
    process's switchboard (``gateway.sockets.switchboard``) reads the layer once for
    every local socket and calls :meth:`deliver`. Client frames and group events are
    handled one at a time, in order (``serial``); outgoing frames queue in order behind
    a slow client, up to ``OUTBOX_FRAMES``, then the socket closes with 1013
    ``slow_consumer``.
    """

    principal: Principal
    open: bool = False  # accepted and not closed by us: frames are handled
    outbox: deque[str] | None = None  # frames waiting behind one being written
    write_now: WriteNow | None = None  # the server's synchronous writer, if it has one
    base_send: Callable[[dict[str, Any]], Awaitable[None]]
    bucket: TokenBucket | None = None  # made at the first client frame (``_bucket``)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Channels' consumer loop minus the per-socket layer channel and its two tasks."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = socket_name()  # this socket's name in ledger and roster
        self.base_send = functools.partial(_send_unless_gone, send)
        self.write_now = write_now_of(scope)
        self.serial = asyncio.Lock()
        self.joined: list[str] = []  # a few groups: a list is half a set's size
        self.lifetime = Lifetime(self._expiring, self._close_expired)
        EVERY.add(self)
        try:
            while True:
                message = await receive()
                async with self.serial:
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            await self.leave_all()

    # --- groups, through the process's switchboard --------------------------------

    async def join(self, group: str) -> None:
        await switchboard().join(group, self)
        if group not in self.joined:
            self.joined.append(group)

    async def leave(self, group: str) -> None:
        if group in self.joined:
            self.joined.remove(group)
        await switchboard().leave(group, self)

    async def leave_all(self) -> None:
        for group in list(getattr(self, "joined", ())):
            try:
                await self.leave(group)
            except Exception as exc:  # the bus may be gone; nothing left to leave
                REDIS.noted("socket leaving its groups", exc)

    def deliver(self, event: dict[str, Any], shared: dict[str, Any]) -> None:
        """A group event from the switchboard: handled in turn with the client's frames."""
        _in_background(self._handle_event(event))

    async def _handle_event(self, event: dict[str, Any]) -> None:
        async with self.serial:
            try:
                await self.dispatch(event)
            except Exception:
                logger.exception("handling %s failed", event.get("type"))

    # --- outgoing frames, in order, bounded behind a slow client --------------------

    async def send(self, text_data: str | None = None, bytes_data: bytes | None = None,
                   close: bool | int = False) -> None:
        if self.outbox is not None and text_data is not None and not close:
            self.push_frame(text_data)  # behind the frames already waiting
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    def push_frame(self, frame: str, encoded: bytes | None = None) -> None:
        """Write ``frame`` after those waiting: at once if the server can (``write_now``)
        and nothing waits, else by one writer task per burst, not per frame."""
        if not self.open:
            return  # refused or closing: nothing more is written
        if self.outbox is None and self.write_now is not None and self.write_now(
                encoded if encoded is not None else frame.encode()):
            return
        if self.outbox is None:
            self.outbox = deque((frame,))
            _in_background(self._write_outbox())
        elif len(self.outbox) < OUTBOX_FRAMES:
            self.outbox.append(frame)
        else:
            self.outbox.clear()
            self._deny("message", "slow_consumer", f"{OUTBOX_FRAMES} frames waiting")
            self.open = False
            _in_background(self.close_with(CloseCode.TRY_AGAIN_LATER, "slow_consumer"))

    async def _write_outbox(self) -> None:
        outbox = self.outbox
        try:
            while outbox:
                await AsyncWebsocketConsumer.send(self, text_data=outbox.popleft())
        except Exception:  # the client is gone: its disconnect is on its way
            logger.debug("dropping frames for a closed socket")
        finally:
            self.outbox = None

    async def connect(self) -> None:
        self.principal = self.scope["principal"]
        limits = settings.GATEWAY.limits
        subprotocol = selected_subprotocol(self.scope)
        if not await self._hold_socket(limits.sockets_per_subject):
            self._deny("connect", "too_many_connections",
                       f"at most {limits.sockets_per_subject} sockets per subject")
            await self.accept(subprotocol)  # accept-then-close: browsers can read the code
            await self.close_with(CloseCode.RATE_LIMITED, "too_many_connections")
            return
        for group in self._address_groups():
            await self.join(group)
        await self.accept(subprotocol)
        self.open = True
        OPEN_CONNECTIONS.inc()
        self.counted = True
        LIVE.add(self)
        self.lifetime.arm(self.principal, settings.GATEWAY.expiry_notice)
        await self.enrol()  # the admin's live connections view
        await self.on_connected()

    @property
    def who(self) -> tuple[str, str]:
        return self.principal.issuer, self.principal.subject

    async def _hold_socket(self, limit: int) -> bool:
        """Count this socket for its subject (skipped entirely when there is no limit)."""
        if limit <= 0:
            return True
        self.socket_held = await ledger().acquire_socket(self.who, self.channel_name, limit)
        return self.socket_held

    def _deny(self, event: str, reason: str, detail: str | None = None) -> None:
        audit(event, "deny", reason, issuer=self.principal.issuer,
              subject=self.principal.subject, route=self.scope.get("path"), detail=detail)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        """Every client frame takes a token first; an empty bucket closes with 4429."""
        if not self.open:
            return  # refused or closing: nothing more is handled
        if not self._bucket().take():
            self._deny("message", "rate_limited")
            await self.close_with(CloseCode.RATE_LIMITED, "rate_limited")
            return
        await super().websocket_receive(message)

    def _bucket(self) -> TokenBucket:
        """The frame-rate bucket, made at the first frame: most sockets never send one,
        and a bucket made at connect would be just as full by then (it caps at burst)."""
        if self.bucket is None:
            limits = settings.GATEWAY.limits
            self.bucket = TokenBucket(limits.message_rate, limits.message_burst)
        return self.bucket

    async def reauthenticate(self, credential: Credential) -> Principal:
        """In-band re-authentication with a fresh token or a one-time ticket, validated
        like a new connection. A ticket must belong to this socket's session, if any."""
        if credential.kind is CredentialKind.TICKET:
            result = await authenticate(credential, now=time.time())
            if result.session_key != self.scope.get("session_key"):
                raise SessionChanged()
            fresh = result.principal
        else:
            fresh = await principal_for_token(credential.secret, CredentialKind.MESSAGE,
                                              now=time.time())
        self.adopt(fresh, "reauth")
        return fresh

    def adopt(self, fresh: Principal, event: str) -> None:
        """Take a renewed principal: same issuer and subject, still allowed by the route.

        The expiry timers are re-armed. Raises OidcError (the caller closes with its code).
        """
        if (fresh.issuer, fresh.subject) != (self.principal.issuer, self.principal.subject):
            raise SubjectChanged()
        decision = evaluate(fresh, self.scope["route"], now=time.time())
        if not decision.allowed:
            raise RouteDenied(decision.reason)
        self.principal = fresh
        self.lifetime.arm(fresh, settings.GATEWAY.expiry_notice)
        audit(event, "allow", "groups_overage_admitted" if fresh.groups_overage else "refreshed",
              issuer=fresh.issuer, subject=fresh.subject,
              route=self.scope.get("path"), kid=fresh.kid, jti_hash=fresh.jti_hash)

    async def on_principal_changed(self) -> None:
        """Hook for subclasses: the server refreshed the principal (new claims, new expiry)."""

    async def refresh_session(self) -> None:
        """Browser sockets: refresh the session's tokens server-side and keep the socket.

        The refresh is shared by the session's sockets in this process and outlives a
        socket closed meanwhile (the session keeps the new tokens), but a closed socket
        never adopts its result. A refresh the spacing floor declined leaves the socket to
        close at expiry."""
        expiring_at = self.principal.expires_at
        try:
            fresh = await shared_refresh(self.scope["session_key"], not_before=expiring_at)
            if self.lifetime.gone or fresh.expires_at <= expiring_at:
                return
            self.adopt(fresh.with_credential(self.principal.credential), "refresh")
        except OidcError as exc:
            if self.lifetime.gone:
                return
            if exc.status == "unavailable":  # provider down: keep running until expiry
                logger.warning("session refresh postponed: %s", exc.error)
                return
            await self.refuse_reauth(exc)
            return
        await self.send_json({"v": PROTOCOL_VERSION, "type": "auth.refreshed",
                              "expires_at": self.principal.expires_at})
        await self.on_principal_changed()

    async def refuse_reauth(self, exc: Exception) -> None:
        code, reason = close_for(exc)
        audit("reauth", "deny", reason, issuer=self.principal.issuer,
              subject=self.principal.subject, route=self.scope.get("path"))
        await self.close_with(code, reason)

    async def _expiring(self) -> None:
        await self.send_json({"v": PROTOCOL_VERSION, "type": "auth.expiring",
                              "expires_at": self.principal.expires_at})
        if self.scope.get("session_key"):
            await self.refresh_session()

    async def _close_expired(self) -> None:
        await self.close_with(CloseCode.UNAUTHENTICATED, "expired")

    def _address_groups(self) -> list[str]:
        groups = list(principal_groups(self.principal))
        if self.scope.get("session_key"):
            groups.append(session_group(self.scope["session_key"]))
        return groups

    async def on_connected(self) -> None:
        """Hook for subclasses: the socket is accepted and addressable."""

    async def close_with(self, code: CloseCode, reason: str) -> None:
        self.open = False
        if self.outbox:
            self.outbox.clear()  # nothing more is written once the close is decided
        await self.close(code=int(code), reason=reason_text(reason))

    async def disconnect(self, code: int) -> None:
        self.open = False
        self.lifetime.end()
        if getattr(self, "counted", False):
            OPEN_CONNECTIONS.dec()
            self.counted = False
        if getattr(self, "socket_held", False):
            self.socket_held = False
            try:
                await ledger().release_socket(self.who, self.channel_name)
            except Exception as exc:  # Redis gone: the entry expires with its heartbeat
                REDIS.noted("socket ledger", exc)
        LIVE.discard(self)
        await self.strike_off()
        await self.leave_all()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch minus its thread hop per message (``aclose_old_connections``).

        Channels 4.3 hops to the database thread before every handler, three times per
        socket even if no handler touches the database. Our consumers use only the async
        ORM, and ``gateway.ops.lifespan`` closes stale connections once a minute instead.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' handler minus its own thread hop (see ``dispatch``); when many sockets
        close together, their cleanups are spread over loop turns (``closegate``)."""
        try:
            await closes.wait()
        finally:  # cancelled while waiting (shutdown): clean up all the same
            await self.disconnect(message["code"])
        raise StopConsumer()

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=encode(content))

    async def gateway_revoke(self, event: dict[str, Any]) -> None:
        """Sent by logout handlers on any process: close this socket with 4401 (once: a
        logout may address it through its session and its ``sid``)."""
        if not self.open:
            return
        await self.close_with(CloseCode.UNAUTHENTICATED, str(event.get("reason", "logged_out")))
