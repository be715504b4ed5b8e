"""Where a websocket handshake carries its credential, and how each kind is checked.

Carriers, in order of precedence:
1. ``Authorization: Bearer <token>`` header (non-browser clients);
2. subprotocol ``gateway.bearer.<token>`` beside ``gateway.v1`` (browser JavaScript);
   the server only ever selects ``gateway.v1``, never echoing the token;
3. subprotocol ``gateway.ticket.<ticket>`` (one-time ticket minted by a logged-in POST);
4. the Django session cookie (browsers; requires an allowed Origin).
A token in the query string is refused outright.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.cookie import parse_cookie

from oidc.types import CredentialKind

SUBPROTOCOL = "gateway.v1"
BEARER_PREFIX = "gateway.bearer."
TICKET_PREFIX = "gateway.ticket."
URL_TOKEN_PARAMS = frozenset({"access_token", "token", "id_token", "jwt", "bearer", "ticket",
                              "auth", "authorization", "refresh_token"})


@dataclass(frozen=True)
class Credential:
    kind: CredentialKind
    secret: str  # token, ticket or session key: never logged

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return f"Credential(kind={self.kind.value!r})"


def selected_subprotocol(scope: Mapping[str, Any]) -> str | None:
    """The only subprotocol the server ever selects: the fixed, non-secret name."""
    return SUBPROTOCOL if SUBPROTOCOL in scope.get("subprotocols", ()) else None


def accept_message(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The ASGI accept for this handshake (never echoing a token-carrying subprotocol)."""
    accept: dict[str, Any] = {"type": "websocket.accept"}
    subprotocol = selected_subprotocol(scope)
    if subprotocol:
        accept["subprotocol"] = subprotocol
    return accept


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def token_in_query(scope: Mapping[str, Any]) -> bool:
    query = scope.get("query_string", b"").decode("latin-1")
    return any(key.lower() in URL_TOKEN_PARAMS for key, _ in parse_qsl(query, keep_blank_values=True))


def _bearer_header(scope: Mapping[str, Any]) -> Credential | None:
    values = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
    if not values:
        return None
    if len(values) > 1:  # a singleton field (RFC 9110 §11.6.2): proxies may pick either one
        return Credential(CredentialKind.BEARER, "")
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Credential(CredentialKind.BEARER, "")  # present but malformed: refused later
    return Credential(CredentialKind.BEARER, token.strip())


def _subprotocol(scope: Mapping[str, Any]) -> Credential | None:
    for proto in scope.get("subprotocols", ()):
        if proto.startswith(BEARER_PREFIX):
            return Credential(CredentialKind.SUBPROTOCOL, proto[len(BEARER_PREFIX):])
        if proto.startswith(TICKET_PREFIX):
            return Credential(CredentialKind.TICKET, proto[len(TICKET_PREFIX):])
    return None


def _session_cookie(scope: Mapping[str, Any]) -> Credential | None:
    cookies = parse_cookie(header(scope, b"cookie") or "")
    key = cookies.get(settings.SESSION_COOKIE_NAME)
    return Credential(CredentialKind.SESSION, key) if key else None


def find_credential(scope: Mapping[str, Any]) -> Credential | None:
    """The first credential carried by the handshake, by the precedence above."""
    for carrier in (_bearer_header, _subprotocol, _session_cookie):
        found = carrier(scope)
        if found is not None:
            return found
    return None
