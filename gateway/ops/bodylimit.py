"""HTTP request bodies are bounded in size and in time, before Django reads them.

Django's ASGI handler reads a whole request body into a temporary file (spilling to
disk) before any view runs, with no limit of its own, and uvicorn never times a body
out. Either lets an unauthenticated client fill the disk or hold a connection without
bound. So every HTTP request passes through :class:`BoundedBody` first:

- a ``Content-Length`` over ``max_bytes`` gets **413** ``payload_too_large`` at once,
  before a byte of the body is read; a body without one (chunked) that grows past it
  gets the same as soon as it does;
- a body not complete within ``seconds`` of the request gets **408** ``body_timeout``.

Both are audited (event ``http``) and the response asks the client to close.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gateway.observe.audit import audit, scope_fields
from gateway.observe.sent import NotingSend

Scope = dict[str, Any]


class BodyRefused(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.status, self.reason, self.detail = status, reason, detail


class BoundedBody:
    def __init__(self, app: Any, *, max_bytes: int, seconds: float) -> None:
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        noting = NotingSend(send, "http.response.start")
        try:
            self._check_declared(scope)
            await self.app(scope, self._bounded(receive), noting)
        except BodyRefused as refused:
            if noting.seen:
                raise
            await _refuse(scope, send, refused)

    def _check_declared(self, scope: Scope) -> None:
        for name, value in scope.get("headers", ()):
            if name != b"content-length":
                continue
            if not value.isdigit():
                raise BodyRefused(400, "invalid_content_length", "send a decimal Content-Length")
            if int(value) > self.max_bytes:
                raise self._too_large()

    def _too_large(self) -> BodyRefused:
        return BodyRefused(413, "payload_too_large", f"at most {self.max_bytes} bytes")

    def _bounded(self, receive: Any) -> Any:
        """``receive`` that counts the body and times it; after the last chunk it is the
        plain ``receive`` (Django keeps listening for the disconnect during the view)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        received, complete = 0, False

        async def bounded() -> dict[str, Any]:
            nonlocal received, complete
            if complete:
                return await receive()  # type: ignore[no-any-return]
            try:
                message: dict[str, Any] = await asyncio.wait_for(
                    receive(), max(deadline - loop.time(), 0.0))
            except TimeoutError:
                raise BodyRefused(408, "body_timeout", f"send the body within {self.seconds:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
                complete = not message.get("more_body", False)
            return message

        return bounded


async def _refuse(scope: Scope, send: Any, refused: BodyRefused) -> None:
    audit("http", "deny", refused.reason, detail=refused.detail, **scope_fields(scope))
    body = json.dumps({"error": refused.reason, "detail": refused.detail}).encode()
    await send({"type": "http.response.start", "status": refused.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
