"""The ``gateway.write_now`` ASGI extension: write a text frame without a task or a wait.

ASGI's ``send`` is a coroutine that may wait (a client slow to read pauses the
transport), so a consumer that may not wait must run it in a task. For a published
message that is one task per socket. A server that offers this extension puts, in the
websocket scope, ``extensions["gateway.write_now"] = {"text": write}``, where
``write(data: bytes) -> bool`` writes ``data`` (UTF-8 text) as one text frame at once,
or returns False, writing nothing, when it could not do so without waiting: handshake
not done, close sent, transport paused or closing. The consumer then falls back to
``send`` behind the frames it already queued (``consumers.base.GatewayConsumer``).

``config.hardening.WebSocketProtocol`` (uvicorn) offers it; other servers need not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

EXTENSION = "gateway.write_now"

WriteNow = Callable[[bytes], bool]


def write_now_of(scope: Mapping[str, Any]) -> WriteNow | None:
    """The server's synchronous text-frame writer for this socket, if it offers one."""
    extension = (scope.get("extensions") or {}).get(EXTENSION)
    writer = extension.get("text") if isinstance(extension, dict) else None
    return writer if callable(writer) else None
