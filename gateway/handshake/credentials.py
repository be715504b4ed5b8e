"""Where a websocket handshake carries its credential: exactly one place.

Explicit carriers, chosen by the client's code:
1. ``Authorization: Bearer <token>`` header (non-browser clients);
2. subprotocol ``gateway.bearer.<token>`` beside ``gateway.v1`` (browser JavaScript);
   the server only ever selects ``gateway.v1``, never echoing the token;
3. subprotocol ``gateway.ticket.<ticket>`` (one-time ticket minted by a logged-in POST).

A handshake with more than one explicit credential (a header and a subprotocol, two
credential subprotocols, even equal ones) is refused with 1008 ``ambiguous_credentials``
(:class:`AmbiguousCredentials`): which one a proxy, a log or a later reader takes for "the"
credential must never be in doubt. Two ``Authorization`` headers are one malformed header
(``invalid_token``).

The ambient carrier, 4. the Django session cookie (browsers; requires an allowed Origin), is
used only when no explicit carrier is present. A browser sends it by itself with every
handshake to the gateway's site, including those of a page that mints a ticket with its
session or holds a bearer token, and the page cannot leave it out, so refusing it beside an
explicit credential would break those pages. The explicit credential wins and the cookie is
not read at all (docs/errors.md, "One credential per handshake").
A token in the query string is refused outright.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.cookie import parse_cookie

from oidc.errors import OidcError
from oidc.types import CredentialKind

SUBPROTOCOL = "gateway.v1"
BEARER_PREFIX = "gateway.bearer."
TICKET_PREFIX = "gateway.ticket."
URL_TOKEN_PARAMS = frozenset({"access_token", "token", "id_token", "jwt", "bearer", "ticket",
                              "auth", "authorization", "refresh_token"})


class AmbiguousCredentials(OidcError):
    """More than one explicit credential in one handshake."""

    error = "ambiguous_credentials"
    status = "policy_violation"

    def __init__(self, found: list[Credential]) -> None:
        self.carriers = "+".join(credential.kind.value for credential in found)
        super().__init__(f"credentials in {self.carriers}")
        self.tickets = [c.secret for c in found if c.kind is CredentialKind.TICKET and c.secret]


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


def _subprotocols(scope: Mapping[str, Any]) -> list[Credential]:
    found = []
    for proto in scope.get("subprotocols", ()):
        if proto.startswith(BEARER_PREFIX):
            found.append(Credential(CredentialKind.SUBPROTOCOL, proto[len(BEARER_PREFIX):]))
        elif proto.startswith(TICKET_PREFIX):
            found.append(Credential(CredentialKind.TICKET, proto[len(TICKET_PREFIX):]))
    return found


def _session_cookie(scope: Mapping[str, Any]) -> Credential | None:
    cookies = parse_cookie(header(scope, b"cookie") or "")
    key = cookies.get(settings.SESSION_COOKIE_NAME)
    return Credential(CredentialKind.SESSION, key) if key else None


def find_credential(scope: Mapping[str, Any]) -> Credential | None:
    """The handshake's one explicit credential, else its session cookie, else None;
    raises :class:`AmbiguousCredentials` for two or more explicit ones."""
    bearer = _bearer_header(scope)
    explicit = ([bearer] if bearer is not None else []) + _subprotocols(scope)
    if len(explicit) > 1:
        raise AmbiguousCredentials(explicit)
    return explicit[0] if explicit else _session_cookie(scope)
