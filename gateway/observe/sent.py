"""An ASGI ``send`` that notes whether a message of one type went out.

Middleware that may answer for an app after the app failed must know whether the app
already began its answer (``websocket.accept``, ``http.response.start``).
"""

from __future__ import annotations

from typing import Any


class NotingSend:
    def __init__(self, send: Any, kind: str) -> None:
        self.send, self.kind, self.seen = send, kind, False

    async def __call__(self, message: dict[str, Any]) -> None:
        self.seen = self.seen or message["type"] == self.kind
        await self.send(message)
