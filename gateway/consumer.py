"""A mixin that brings the gateway's socket lifetime to a host's own Channels consumers.

    class ChatConsumer(GatewayConsumerMixin, AsyncJsonWebsocketConsumer): ...

Put it before Channels' ``AsyncWebsocketConsumer`` or ``AsyncJsonWebsocketConsumer``. The
consumer keeps its own ``channel_name``, ``group_add`` and ``group_send``: the mixin joins,
through that same channel layer, the groups a logout is sent to (the socket's session, subject
and ``sid``, ``gateway.sockets.addressing``) and the grant-change group. It then:

- refreshes a session socket's tokens server-side before they expire (``on_principal_changed``),
  calls ``on_expiring()`` for a bearer socket, and closes with 4401 ``expired`` at expiry;
- closes it with 4401 ``logged_out`` on a logout (RP-initiated, back-channel, admin);
- answers the gateway's subprotocol (``accept()``) when the credential came in it;
- takes a fresh token in band (``await self.reauthenticate(token)``), same subject, same route;
- calls ``on_grants_changed()`` once the admin changed the grants (``await self.may(...)``).

The service's own consumers (``consumers.base``) read the layer through one switchboard per
process instead, a fast path for many sockets; a host needs none of it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from django.conf import settings

from gateway.grants.may import may
from gateway.grants.store import GRANTS_GROUP, cache
from gateway.handshake.authn import principal_for_token
from gateway.handshake.credentials import selected_subprotocol
from gateway.login.refresh import shared_refresh
from gateway.sockets.addressing import session_group, sid_group, subject_group
from gateway.sockets.closecodes import CloseCode, close_for, reason_text
from oidc.errors import OidcError
from oidc.lifetime import notice_time
from oidc.policy import evaluate
from oidc.types import CredentialKind, Principal


class SubjectChanged(OidcError):
    """An in-band token names another issuer or subject than the connection's."""

    error = "subject_changed"
    status = "unauthenticated"


class RouteDenied(OidcError):
    """The refreshed principal no longer satisfies the route's policy."""

    error = "forbidden"
    status = "forbidden"


def address_groups(principal: Principal, session_key: str | None) -> list[str]:
    """The layer groups that logout handlers send ``gateway.revoke`` to for this socket."""
    groups = [subject_group(principal.issuer, principal.subject)]
    if principal.sid:
        groups.append(sid_group(principal.issuer, principal.sid))
    if session_key:
        groups.append(session_group(session_key))
    return groups


class GatewayConsumerMixin:
    """Expiry, logout, revocation, in-band re-authentication and grant changes for a
    Channels websocket consumer behind ``GatewayMiddlewareStack``."""

    scope: dict[str, Any]
    channel_layer: Any
    channel_name: str
    base_send: Any
    principal: Principal
    _gateway_groups: tuple[str, ...] = ()
    _gateway_timer: asyncio.TimerHandle | None = None
    _gateway_noticed_for: float | None = None  # the expiry whose notice was handled
    _gateway_tasks: set[asyncio.Future[None]]

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.principal = self.scope["principal"]
        self._gateway_tasks = set()
        groups = (*address_groups(self.principal, self.scope.get("session_key")), GRANTS_GROUP)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self._gateway_groups = groups
        cache.watch()
        self._arm_expiry()
        await super().websocket_connect(message)  # type: ignore[misc]

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self._gateway_timer is not None:
            self._gateway_timer.cancel()
            self._gateway_timer = None
        for task in list(getattr(self, "_gateway_tasks", ())):
            if task is not asyncio.current_task():
                task.cancel()
        if self._gateway_groups:
            cache.unwatch()
        for group in self._gateway_groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        self._gateway_groups = ()
        await super().websocket_disconnect(message)  # type: ignore[misc]

    async def accept(self, subprotocol: str | None = None, *args: Any, **kwargs: Any) -> None:
        """Channels' accept, selecting the gateway's fixed subprotocol when the client offered
        it with a token or ticket (browsers fail a socket whose offer is not answered)."""
        if subprotocol is None:
            subprotocol = selected_subprotocol(self.scope)
        await super().accept(subprotocol, *args, **kwargs)  # type: ignore[misc]

    # --- lifetime ---------------------------------------------------------------------

    def _arm_expiry(self) -> None:
        """One timer: the notice (``oidc.lifetime.notice_time``), once per credential, then
        the close at expiry."""
        if self._gateway_timer is not None:
            self._gateway_timer.cancel()
        now, p, loop = time.time(), self.principal, asyncio.get_running_loop()
        if p.expires_at == self._gateway_noticed_for:
            self._gateway_timer = loop.call_later(max(0.0, p.expires_at - now), self._expired)
            return
        due = notice_time(p.issued_at, p.expires_at, settings.GATEWAY.expiry_notice, now=now)
        self._gateway_timer = loop.call_later(max(0.0, due - now), self._expiring)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._gateway_tasks.add(task)
        task.add_done_callback(self._gateway_tasks.discard)

    def _expiring(self) -> None:
        self._gateway_noticed_for = self.principal.expires_at
        remaining = max(0.0, self.principal.expires_at - time.time())
        self._gateway_timer = asyncio.get_running_loop().call_later(remaining, self._expired)
        self._spawn(self._refresh_session() if self.scope.get("session_key")
                    else self.on_expiring())

    def _expired(self) -> None:
        self._gateway_timer = None
        self._spawn(self.close_with(CloseCode.UNAUTHENTICATED, "expired"))

    async def _refresh_session(self) -> None:
        """Browser sockets: the session's tokens are refreshed server-side (shared by the
        session's sockets in this process); a provider that is down leaves the socket to
        close at expiry, a refusal closes it now."""
        expiring_at = self.principal.expires_at
        try:
            fresh = await shared_refresh(self.scope["session_key"], not_before=expiring_at)
            if fresh.expires_at <= expiring_at:
                return
            self._adopt(fresh)
        except OidcError as exc:
            if exc.status != "unavailable":
                await self.close_with(*close_for(exc))
            return
        await self.on_principal_changed()

    def _adopt(self, fresh: Principal) -> Principal:
        """Take a renewed principal: same issuer and subject, still allowed by the route."""
        if (fresh.issuer, fresh.subject) != (self.principal.issuer, self.principal.subject):
            raise SubjectChanged()
        fresh = fresh.with_credential(self.principal.credential)
        route = self.scope.get("route")
        if route is not None:
            decision = evaluate(fresh, route, now=time.time())
            if not decision.allowed:
                raise RouteDenied(decision.reason)
        self.principal = fresh
        self._arm_expiry()
        return fresh

    async def on_expiring(self) -> None:
        """Hook: a bearer credential expires soon (``self.principal.expires_at``); ask the
        client for a fresh token and pass it to ``reauthenticate``. Session sockets are
        refreshed server-side instead."""

    async def on_principal_changed(self) -> None:
        """Hook: the server refreshed a session socket's principal (new claims, new expiry)."""

    async def close_with(self, code: int, reason: str) -> None:
        """Close with a gateway code and reason code (docs/errors.md)."""
        await self.base_send({"type": "websocket.close", "code": int(code),
                              "reason": reason_text(reason)})

    async def gateway_revoke(self, event: dict[str, Any]) -> None:
        """A logout on any process: close with 4401 and its reason (``logged_out``)."""
        await self.close_with(CloseCode.UNAUTHENTICATED, str(event.get("reason", "logged_out")))

    async def reauthenticate(self, token: str) -> Principal:
        """Take a fresh access token in band: same issuer and subject, still allowed by the
        route's policy. Raises ``OidcError``; ``close_for(exc)`` gives its close code."""
        return self._adopt(await principal_for_token(token, CredentialKind.MESSAGE,
                                                     now=time.time()))

    # --- grants ---------------------------------------------------------------------

    async def may(self, operation: str, channel: str) -> bool:
        """Whether this socket's principal may ``operation`` on ``channel`` (the admin's grants)."""
        return await may(self.principal, operation, channel)

    async def grants_changed(self, event: dict[str, Any]) -> None:
        await cache.at_least(int(event.get("version", 0)))
        await self.on_grants_changed()

    async def on_grants_changed(self) -> None:
        """Hook: the grants changed; re-check what this socket holds with ``self.may``."""
