"""Websocket close codes, and the one place where exceptions become close codes.

Browsers cannot read the HTTP status of a refused handshake, so authentication
and authorisation refusals accept the socket and close it at once with one of
these codes and a reason code (docs/errors.md). Only a foreign Origin is refused
at the handshake itself (HTTP 403): that page gets nothing, not even a code.
"""

from __future__ import annotations

from enum import IntEnum

from oidc.errors import OidcError

MAX_REASON_BYTES = 123  # RFC 6455 §5.5: control frame payload minus the 2-byte code


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_REQUEST = 4400
    UNAUTHENTICATED = 4401
    FORBIDDEN = 4403
    NO_ROUTE = 4404
    AUTH_TIMEOUT = 4408
    ADMIN_DISCONNECT = 4410
    RATE_LIMITED = 4429


CLOSE_CODE_EXPLANATIONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "Closed normally.",
    CloseCode.GOING_AWAY: "The gateway process is shutting down (reason shutdown). Reconnect "
    "with backoff: another instance takes the socket.",
    CloseCode.SERVICE_RESTART: "The gateway process is restarting (reason restart). Reconnect "
    "with backoff.",
    CloseCode.POLICY_VIOLATION: "The client broke the protocol (for example a token in the URL, "
    "two credentials in one handshake, or repeated bad frames). Fix the client; do not retry "
    "unchanged.",
    CloseCode.MESSAGE_TOO_BIG: "A frame exceeded the configured maximum size.",
    CloseCode.INTERNAL_ERROR: "Unexpected server error, or the gateway lost its message bus. "
    "Reconnect with backoff.",
    CloseCode.TRY_AGAIN_LATER: "The identity provider's keys or the message bus are not "
    "available yet, or the client read too slowly (slow_consumer). Reconnect with backoff.",
    CloseCode.BAD_REQUEST: "The credential could not be parsed.",
    CloseCode.UNAUTHENTICATED: "Not authenticated, or no longer: missing, invalid or expired "
    "credential, or logged out. Obtain a fresh credential, then reconnect.",
    CloseCode.FORBIDDEN: "Authenticated, but the route's policy refuses this principal "
    "(missing scope or claim, or credential kind not allowed). Do not retry unchanged.",
    CloseCode.NO_ROUTE: "No websocket route is declared at this path.",
    CloseCode.AUTH_TIMEOUT: "No auth message arrived before the deadline.",
    CloseCode.ADMIN_DISCONNECT: "An administrator disconnected this subject's sockets. "
    "Do not reconnect automatically; a person may reconnect by hand.",
    CloseCode.RATE_LIMITED: "Too many messages or connections. Reconnect after a backoff.",
}

_STATUS_CODES = {
    "unauthenticated": CloseCode.UNAUTHENTICATED,
    "forbidden": CloseCode.FORBIDDEN,
    "unavailable": CloseCode.TRY_AGAIN_LATER,
    "bad_request": CloseCode.UNAUTHENTICATED,
    "policy_violation": CloseCode.POLICY_VIOLATION,
}


def close_for(exc: BaseException) -> tuple[CloseCode, str]:
    """Map any exception to (code, reason). Unknown exceptions reveal nothing."""
    if isinstance(exc, OidcError):
        return _STATUS_CODES.get(exc.status, CloseCode.UNAUTHENTICATED), exc.error
    return CloseCode.INTERNAL_ERROR, "internal_error"


def reason_text(reason: str) -> str:
    """Clip a reason code to what fits in a close frame."""
    return reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
