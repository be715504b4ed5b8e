"""Close codes every supported server accepts: the one place server-specific codes are mapped.

RFC 6455 §7.4.1 reserves 1000-2999 for the protocol. uvicorn and granian send any of them,
but daphne (behind Channels' ``runserver``) refuses every code but 1000 and 3000-4999
("invalid close code"), and the client then sees 1011 or an abnormal close. A host project
runs under either, so its sockets close with codes from the private range instead:
``4000 + (code - 1000)`` (1013 try again later becomes 4013), the same under every server.
The gateway's own codes (4400, 4401, 4403, ...) pass unchanged. docs/library.md lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.sockets.closecodes import CloseCode

Send = Callable[[dict[str, Any]], Awaitable[None]]


def portable_code(code: int) -> int:
    """``code`` as one every server sends: 1000 and 3000-4999 as they are, 1001-1015 moved
    to 4001-4015."""
    if code != CloseCode.NORMAL and 1000 < code < 1016:
        return 4000 + (code - 1000)
    return code


def portable_send(send: Send) -> Send:
    """``send`` whose close frames carry portable codes."""

    async def sending(message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.close" and isinstance(message.get("code"), int):
            message = {**message, "code": portable_code(message["code"])}
        await send(message)

    return sending
