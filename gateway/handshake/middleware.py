"""ASGI middleware for websockets. No state on instances: everything lives in the scope.

Composed in config/asgi.py:  OriginGuard -> Handshake(policies) -> route consumer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from gateway.bus.health import bus
from gateway.handshake.authn import (
    Authenticated,
    NotAuthenticated,
    OriginRequired,
    authenticate,
    presented,
)
from gateway.handshake.credentials import (
    AmbiguousCredentials,
    Credential,
    accept_message,
    find_credential,
    header,
    token_in_query,
)
from gateway.handshake.first_message import authenticate_first_message, close_accepted, replay_connect
from gateway.handshake.pacing import turns
from gateway.handshake.tickets import burn_tickets, burn_url_tickets
from gateway.observe.audit import audit, scope_fields
from gateway.observe.metrics import AUTH_SECONDS
from gateway.observe.sent import NotingSend
from gateway.sockets.closecodes import CloseCode, close_for, reason_text
from oidc.policy import RoutePolicy, evaluate, find_policy
from oidc.types import CredentialKind

logger = logging.getLogger("gateway.middleware")

ASGIApp = Callable[..., Awaitable[None]]


async def refuse_handshake(receive: Any, send: Any) -> None:
    """Refuse before accepting: the server answers the upgrade with HTTP 403."""
    await receive()
    await send({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION})


async def accept_and_close(scope: Mapping[str, Any], receive: Any, send: Any,
                           code: CloseCode, reason: str) -> None:
    """Accept, then close at once with a code the browser can read."""
    await receive()
    await send(accept_message(scope))
    await send({"type": "websocket.close", "code": int(code), "reason": reason_text(reason)})


async def run_consumer(app: ASGIApp, scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Run the route's consumer; a bus that fails under it refuses the socket with 1013.

    The bus watchdog notices a lost Redis within a second; a handshake in that window
    fails inside Channels (joining groups) and would otherwise end as HTTP 500.
    """
    noting = NotingSend(send, "websocket.accept")
    try:
        await app(scope, receive, noting)
    except (RedisError, OSError):
        audit("connect", "deny", "bus_unavailable", **scope_fields(scope))
        if not noting.seen:
            await send(accept_message(scope))
        await send({"type": "websocket.close", "code": int(CloseCode.TRY_AGAIN_LATER),
                    "reason": "bus_unavailable"})


class OriginGuard:
    """Exact Origin allowlist. A missing Origin is left to the credential check."""

    def __init__(self, app: ASGIApp, allowed_origins: frozenset[str]) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        origin = header(scope, b"origin")
        if origin is not None and origin not in self.allowed_origins:
            audit("connect", "deny", "origin_not_allowed",
                  **{**scope_fields(scope), "origin": origin[:200]})
            await refuse_handshake(receive, send)
            return
        await self.app({**scope, "origin": origin}, receive, send)


class Handshake:
    """Authenticate the handshake's credential and apply the route's policy.

    On success the consumer gets ``scope["principal"]`` (and ``scope["route"]``,
    ``scope["session_key"]`` for session-bound sockets); consumers never parse
    tokens. Every outcome writes one audit event. Without a credential, a route
    that allows ``message`` credentials accepts the socket and waits for an
    ``auth`` frame (``first_message.py``).
    """

    def __init__(self, policies: tuple[RoutePolicy, ...],
                 clock: Callable[[], float] = time.time) -> None:
        self.policies = policies
        self.clock = clock
        self.consumers: dict[str, Callable[[], ASGIApp]] = {
            p.path: import_string(p.consumer) for p in policies
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        turns.charge()  # in a burst, heads parsed after this one wait for a later turn
        policy = self.route(scope)
        fields = scope_fields(scope)
        if policy is None:
            audit("connect", "deny", "no_route", **fields)
            await accept_and_close(scope, receive, send, CloseCode.NO_ROUTE, "no_route")
            return
        if token_in_query(scope):
            await burn_url_tickets(scope)
            audit("connect", "deny", "token_in_url", **fields)
            await accept_and_close(scope, receive, send, CloseCode.POLICY_VIOLATION, "token_in_url")
            return
        try:
            credential = find_credential(scope)
        except AmbiguousCredentials as exc:
            await burn_tickets(exc.tickets)  # offered in a refused handshake: spent
            code, reason = close_for(exc)
            audit("connect", "deny", reason, credential=exc.carriers, **fields)
            await accept_and_close(scope, receive, send, code, reason)
            return
        if not bus.up:
            audit("connect", "deny", "bus_unavailable", **fields)
            await accept_and_close(scope, receive, send, CloseCode.TRY_AGAIN_LATER,
                                   "bus_unavailable")
            return
        if credential is None and CredentialKind.MESSAGE in policy.credentials:
            await authenticate_first_message(self.admit, scope, receive, send, policy)
            return
        admitted = await self.admission(scope, receive, send, policy, credential, accepted=False)
        # Nothing of the handshake (credential, audit fields, the scope copies) stays
        # alive with the socket: about 2 KiB per idle socket (bench/README.md, memory).
        del scope, credential, fields
        if admitted is not None:
            await run_consumer(self.app_for(policy), *admitted)

    def route(self, scope: Mapping[str, Any]) -> RoutePolicy | None:
        """The policy of the route at this path (the service's routes.toml); None: no route."""
        return find_policy(self.policies, scope["path"])

    def app_for(self, policy: RoutePolicy) -> ASGIApp:
        """The consumer that serves an admitted socket of this route: a new instance, as
        Channels' ``as_asgi()`` makes, without its wrapper's frame held for the socket's life."""
        return self.consumers[policy.path]()

    async def admit(self, scope: dict[str, Any], receive: Any, send: Any, policy: RoutePolicy,
                    credential: Credential | None, *, accepted: bool) -> None:
        """Authenticate, evaluate, audit; then run the consumer or close with a code."""
        admitted = await self.admission(scope, receive, send, policy, credential,
                                        accepted=accepted)
        del scope, credential
        if admitted is not None:
            await run_consumer(self.app_for(policy), *admitted)

    async def admission(self, scope: dict[str, Any], receive: Any, send: Any,
                        policy: RoutePolicy, credential: Credential | None, *, accepted: bool,
                        ) -> tuple[dict[str, Any], Any, Any] | None:
        """Authenticate, evaluate, audit: the consumer's (scope, receive, send), or None
        once the socket was closed with a code."""
        fields = scope_fields(scope)
        close = close_accepted if accepted else accept_and_close
        try:
            result = await self._authenticate(scope, credential)
        except Exception as exc:
            code, reason = close_for(exc)
            if code is CloseCode.INTERNAL_ERROR:
                logger.exception("handshake failed")
            audit("connect", "deny", reason, **presented(credential), **fields)
            await close(scope, receive, send, code, reason)
            return None
        principal = result.principal
        decision = evaluate(principal, policy, now=self.clock())
        identity = {"issuer": principal.issuer, "subject": principal.subject,
                    "credential": principal.credential.value, "kid": principal.kid,
                    "jti_hash": principal.jti_hash}
        if not decision.allowed:
            audit("connect", "deny", decision.reason, detail=decision.detail or None,
                  **identity, **fields)
            code = CloseCode.UNAUTHENTICATED if decision.reason == "expired" else CloseCode.FORBIDDEN
            await close(scope, receive, send, code, decision.reason)
            return None
        audit("connect", "allow", "groups_overage_admitted" if principal.groups_overage
              else "allowed", **identity, **fields)
        scope = {**scope, "principal": principal, "route": policy,
                 "session_key": result.session_key}
        if accepted:
            receive, send = replay_connect(receive, send)
        return scope, receive, send

    async def _authenticate(self, scope: dict[str, Any],
                            credential: Credential | None) -> Authenticated:
        if credential is None:
            raise NotAuthenticated("no credential")
        if credential.kind is CredentialKind.SESSION and scope.get("origin") is None:
            raise OriginRequired("a session cookie needs an Origin header")
        with AUTH_SECONDS.time():
            return await authenticate(credential, now=self.clock())

