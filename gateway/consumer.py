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

import functools
import time
from typing import Any

from django.conf import settings

from gateway.grants.may import may
from gateway.grants.store import GRANTS_GROUP, cache
from gateway.handshake.authn import principal_for_token
from gateway.handshake.credentials import selected_subprotocol
from gateway.login.refresh import shared_refresh
from gateway.sockets.addressing import session_group, sid_group, subject_group
from gateway.sockets.closecodes import CloseCode, close_for, reason_text
from gateway.sockets.lifetime import Lifetime
from oidc.errors import OidcError
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
    _gateway_lifetime: Lifetime

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        self.principal = self.scope["principal"]
        self._gateway_lifetime = Lifetime(self._expiring, functools.partial(
            self.close_with, CloseCode.UNAUTHENTICATED, "expired"))
        groups = (*address_groups(self.principal, self.scope.get("session_key")), GRANTS_GROUP)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self._gateway_groups = groups
        cache.watch()
        self._gateway_lifetime.arm(self.principal, settings.GATEWAY.expiry_notice)
        await super().websocket_connect(message)  # type: ignore[misc]

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if (lifetime := getattr(self, "_gateway_lifetime", None)) is not None:
            lifetime.end()
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

    async def _expiring(self) -> None:
        await (self._refresh_session() if self.scope.get("session_key") else self.on_expiring())

    async def _refresh_session(self) -> None:
        """Browser sockets: the session's tokens are refreshed server-side (shared by the
        session's sockets in this process); a provider that is down leaves the socket to
        close at expiry, a refusal closes it now."""
        expiring_at = self.principal.expires_at
        try:
            fresh = await shared_refresh(self.scope["session_key"], not_before=expiring_at)
            if self._gateway_lifetime.gone or fresh.expires_at <= expiring_at:
                return
            self._adopt(fresh)
        except OidcError as exc:
            if exc.status != "unavailable" and not self._gateway_lifetime.gone:
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
        self._gateway_lifetime.arm(fresh, settings.GATEWAY.expiry_notice)
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
