"""The gateway's handshake around a host project's own router, like ``AuthMiddlewareStack``.

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": GatewayMiddlewareStack(URLRouter([
            path("ws/rooms/<room>/", policy(RoomConsumer.as_asgi(), claims=[...])),
        ])),
    })

``GatewayMiddlewareStack`` checks the Origin, authenticates the handshake's one credential
(bearer header, subprotocol, session cookie, ticket, or a first ``auth`` message) and sets
``scope["principal"]``, ``scope["user"]`` and ``scope["session_key"]``; the host's router then
picks the consumer, path parameters and all. ``policy(app, ...)`` beside a route applies that
route's scopes and claims (``{name}`` in them takes the route's path parameter). Refusals are
accepted and closed with a code the browser can read (docs/errors.md); every close code is
one all servers send (``gateway.sockets.portable``). Keys load on the first handshake when the
server ran no lifespan (``gateway.ops.ondemand``).
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured

from gateway.handshake.middleware import ASGIApp, Handshake, OriginGuard, accept_and_close
from gateway.observe.audit import audit, scope_fields
from gateway.ops.ondemand import ensure_started
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.portable import portable_send
from oidc.policy import RoutePolicy, evaluate, parse_policies
from oidc.types import CredentialKind, Principal

ALL_CREDENTIALS: frozenset[str] = frozenset(kind.value for kind in CredentialKind)


async def user_of(principal: Principal) -> Any:
    """The Django user who signed in as this issuer and subject, or AnonymousUser."""
    user = await get_user_model().objects.filter(
        oidc_identities__issuer=principal.issuer,
        oidc_identities__subject=principal.subject).afirst()
    return user if user is not None else AnonymousUser()


def _route(name: str, scopes: Iterable[str], claims: Iterable[Mapping[str, Any]],
           credentials: Iterable[str]) -> RoutePolicy:
    """A route policy from the same entries as a ``[[route]]`` of routes.toml, with the
    same checks and messages."""
    entry = {"name": name, "path": "/", "consumer": "-", "scopes": list(scopes),
             "claims": [dict(c) for c in claims], "credentials": sorted(credentials)}
    try:
        return parse_policies({"route": [entry]})[0]
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from None


class WithUser:
    """Sets ``scope["user"]`` from the admitted principal, then runs ``inner``."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.inner({**scope, "user": await user_of(scope["principal"])}, receive, send)


class HostHandshake(Handshake):
    """The service's handshake (credential carriers, token-in-URL and bus checks, pacing,
    first-message auth, audit, close codes), with one route: the host's router, which
    picks the consumer afterwards. Per-route rules are ``policy()`` beside the route."""

    def __init__(self, inner: ASGIApp, *, credentials: Iterable[str],
                 clock: Callable[[], float]) -> None:
        super().__init__((), clock)
        self.inner = WithUser(inner)
        self.connect_policy = _route("connect", (), (), credentials)

    def route(self, scope: Mapping[str, Any]) -> RoutePolicy:
        return self.connect_policy

    def app_for(self, policy: RoutePolicy) -> ASGIApp:
        return self.inner


class GatewayMiddleware:
    """Authenticate every websocket handshake, then hand it to ``inner`` with the principal.

    ``credentials`` names the credential kinds accepted at all (default: every kind);
    ``allowed_origins`` defaults to ``GATEWAY["ALLOWED_ORIGINS"]``. Other scope types pass
    through untouched. No state on the instance: all of it lives in the scope.
    """

    def __init__(self, inner: ASGIApp, *, credentials: Iterable[str] = ALL_CREDENTIALS,
                 allowed_origins: Iterable[str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.inner = inner
        origins = (frozenset(allowed_origins) if allowed_origins is not None
                   else settings.GATEWAY.allowed_origins)
        self.websocket = OriginGuard(HostHandshake(inner, credentials=credentials, clock=clock),
                                     allowed_origins=origins)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await self.inner(scope, receive, send)
            return
        await ensure_started()
        await self.websocket(scope, receive, portable_send(send))


def GatewayMiddlewareStack(inner: ASGIApp, **options: Any) -> GatewayMiddleware:
    """``GatewayMiddlewareStack(URLRouter([...]))``, named like Channels' ``AuthMiddlewareStack``."""
    return GatewayMiddleware(inner, **options)


def _placeholders(policy: RoutePolicy) -> set[str]:
    texts = list(policy.scopes)
    for claim in policy.claims:
        texts += [v for v in (claim.contains, claim.equals) if isinstance(v, str)]
        texts += [v for v in claim.one_of or () if isinstance(v, str)]
    return {field for text in texts for _, field, _, _ in string.Formatter().parse(text) if field}


def policy(app: ASGIApp, *, scopes: Iterable[str] = (),
           claims: Iterable[Mapping[str, Any]] = (),
           credentials: Iterable[str] = ALL_CREDENTIALS, name: str = "route") -> Any:
    """``app`` behind a route policy: the principal needs every scope and claim, and one of
    ``credentials``; else the socket closes with 4403 (4401 once expired).

    ``claims`` take the entries of routes.toml (``{"claim": "groups", "contains": "staff"}``).
    ``{room}`` in a scope or claim value is the route's ``room`` path parameter. Typed
    ``Any``, like Channels' ``as_asgi()``, so that django-stubs' ``path()`` takes it.
    """
    scopes, claims, credentials = list(scopes), [dict(c) for c in claims], list(credentials)
    declared = _route(name, scopes, claims, credentials)  # checked once, at import
    parameters = _placeholders(declared)

    def bound(kwargs: Mapping[str, Any]) -> RoutePolicy:
        if not parameters:
            return declared
        missing = parameters - set(kwargs)
        if missing:
            raise ImproperlyConfigured(f"route policy {name!r} names path parameters "
                                       f"{sorted(missing)} that its route does not have.")

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return value.format_map({k: str(v) for k, v in kwargs.items()})
            if isinstance(value, list):
                return [fill(v) for v in value]
            return value

        return _route(name, [fill(s) for s in scopes],
                      [{k: fill(v) for k, v in c.items()} for c in claims], credentials)

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        principal = scope.get("principal")
        if principal is None:
            raise ImproperlyConfigured("policy() found no principal in the scope: wrap the "
                                       "router in GatewayMiddlewareStack (docs/library.md).")
        route = bound(scope.get("url_route", {}).get("kwargs", {}))
        decision = evaluate(principal, route, now=time.time())
        if not decision.allowed:
            audit("connect", "deny", decision.reason, detail=decision.detail or None,
                  issuer=principal.issuer, subject=principal.subject, **scope_fields(scope))
            code = (CloseCode.UNAUTHENTICATED if decision.reason == "expired"
                    else CloseCode.FORBIDDEN)
            await accept_and_close(scope, receive, send, code, decision.reason)
            return
        await app({**scope, "route": route}, receive, send)

    return guarded
