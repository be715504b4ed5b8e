"""The `auth` first-message carrier: accept, then wait briefly for one auth frame.

Frame: ``{"type": "auth", "token": "<access token>"}`` or ``{"type": "auth", "ticket": "..."}``.
No other frame is read before authentication succeeds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, Protocol

from gateway.handshake.credentials import Credential, accept_message
from gateway.observe.audit import audit, scope_fields
from gateway.sockets.closecodes import CloseCode, reason_text
from oidc.policy import RoutePolicy
from oidc.types import CredentialKind

AUTH_DEADLINE = 5.0
MAX_AUTH_FRAME = 20_000


async def close_accepted(scope: Any, receive: Any, send: Any, code: CloseCode,
                         reason: str) -> None:
    await send({"type": "websocket.close", "code": int(code), "reason": reason_text(reason)})


def replay_connect(receive: Any, send: Any) -> tuple[Any, Any]:
    """Let a consumer run its usual connect/accept on a socket we already accepted."""
    pending = [{"type": "websocket.connect"}]

    async def replayed_receive() -> Any:
        return pending.pop() if pending else await receive()

    async def filtered_send(message: dict[str, Any]) -> None:
        if message["type"] != "websocket.accept":
            await send(message)

    return replayed_receive, filtered_send


class Admit(Protocol):
    """``Handshake.admit``: authenticate a credential on an accepted socket, then run the route."""

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any, policy: RoutePolicy,
                 credential: Credential | None, *, accepted: bool) -> Awaitable[None]: ...


def parse_auth_frame(message: dict[str, Any]) -> Credential | None:
    text = message.get("text")
    if not isinstance(text, str) or len(text) > MAX_AUTH_FRAME:
        return None
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):  # nested past the interpreter's limit
        return None
    if not isinstance(frame, dict) or frame.get("type") != "auth":
        return None
    if isinstance(frame.get("token"), str):
        return Credential(CredentialKind.MESSAGE, frame["token"])
    if isinstance(frame.get("ticket"), str):
        return Credential(CredentialKind.TICKET, frame["ticket"])
    return None


async def authenticate_first_message(admit: Admit, scope: dict[str, Any], receive: Any,
                                     send: Any, policy: RoutePolicy) -> None:
    await receive()  # websocket.connect
    await send(accept_message(scope))
    fields = scope_fields(scope)
    try:
        message = await asyncio.wait_for(receive(), AUTH_DEADLINE)
    except TimeoutError:
        audit("connect", "deny", "auth_timeout", **fields)
        await close_accepted(scope, receive, send, CloseCode.AUTH_TIMEOUT, "auth_timeout")
        return
    if message["type"] == "websocket.disconnect":
        return
    credential = parse_auth_frame(message)
    if credential is None:
        audit("connect", "deny", "invalid_auth_message", **fields)
        await close_accepted(scope, receive, send, CloseCode.UNAUTHENTICATED,
                             "invalid_auth_message")
        return
    await admit(scope, receive, send, policy, credential, accepted=True)
