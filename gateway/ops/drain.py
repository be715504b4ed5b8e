"""Graceful drain of one worker process: close every websocket, then let the server stop.

On its own, uvicorn closes every websocket with 1012 on any stop (a shutdown and a
restart look the same) and gives no signal to a load balancer first; granian 2.8 drops
them with no close frame at all (clients see 1006) and runs the lifespan shutdown only
afterwards, when no socket is left to close. So the worker drains itself before the
server is told to stop:

1. SIGTERM (shutdown) or SIGUSR1 (restart) reaches the worker. ``Drain`` replaced the
   server's handler for both in the lifespan startup.
2. The worker stops taking sockets: a new websocket is accepted and closed at once
   with the drain code (clients reconnect elsewhere), audited as a denial, and
   ``/readyz`` answers 503 so a load balancer takes the instance out.
3. Every open socket is closed with 1001 (going away) or 1012 (service restart, RFC
   6455 §7.4.1 and the IANA registry): consumers through ``close_all_local`` (they
   leave their groups and release their counts), sockets still waiting for their
   first-message credential directly.
4. When no socket is left, or after ``GATEWAY_DRAIN_SECONDS``, the worker sends itself
   SIGINT, the server's own stop signal, which it still handles: the server stops,
   the ASGI lifespan shutdown runs, the process exits.

Composed in ``config/asgi.py``, outermost. The launcher (``config.serve``) gives the
server a kill timeout a little longer than the drain, so a stuck worker is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from gateway.observe.audit import audit
from gateway.sockets.closecodes import CloseCode
from gateway.sockets.live import CloseAll

logger = logging.getLogger("gateway.drain")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REASONS = {CloseCode.GOING_AWAY: "shutdown", CloseCode.SERVICE_RESTART: "restart"}
SIGNALS = {signal.SIGTERM: CloseCode.GOING_AWAY, signal.SIGUSR1: CloseCode.SERVICE_RESTART}
READY_PATH = "/readyz"


@dataclass
class Socket:
    """One accepted websocket of this process, as the server sees it."""

    send: Send
    closed: bool = False


@dataclass
class DrainState:
    code: CloseCode | None = None  # set once draining
    sockets: dict[int, Socket] = field(default_factory=dict)
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def forget(self, key: int) -> None:
        self.sockets.pop(key, None)
        if not self.sockets:
            self.idle.set()


class Drain:
    """ASGI wrapper: tracks this process's websockets and drains them on a signal."""

    def __init__(self, app: ASGIApp, *, close_all: CloseAll, seconds: float) -> None:
        self.app = app
        self.close_all = close_all  # closes the consumers' sockets (they clean up)
        self.seconds = seconds
        self.state = DrainState()
        self.state.idle.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif self.state.code is not None and scope.get("path") == READY_PATH:
            await _not_ready(send)
        else:
            await self.app(scope, receive, send)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._install_signal_handlers()
            return message
        return wrapped

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum, code in SIGNALS.items():
            loop.add_signal_handler(signum, self.start, code)

    def start(self, code: CloseCode) -> None:
        """Begin draining with ``code`` (idempotent: the first signal decides)."""
        if self.state.code is not None:
            return
        self.state.code = code
        logger.warning("draining %d sockets with %d", len(self.state.sockets), code)
        self._task = asyncio.ensure_future(self.drain(code))

    async def drain(self, code: CloseCode) -> None:
        started = time.monotonic()
        seconds = self.seconds
        try:
            await self.close_all(code, REASONS[code])
            await self._close_untracked(code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.idle.wait(), seconds)
        except Exception:
            logger.exception("drain failed; stopping now")
        finally:
            logger.warning("drained in %.2f s, %d sockets left; stopping",
                           time.monotonic() - started, len(self.state.sockets))
            os.kill(os.getpid(), signal.SIGINT)  # the server's own stop signal

    async def _close_untracked(self, code: CloseCode) -> None:
        """Sockets no consumer owns yet (waiting for a first-message credential)."""
        for socket in list(self.state.sockets.values()):
            if not socket.closed:
                with contextlib.suppress(Exception):
                    await socket.send({"type": "websocket.close", "code": code,
                                       "reason": REASONS[code]})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.state.code is not None:
            await self._refuse(scope, receive, send, self.state.code)
            return
        key = id(scope)
        socket = Socket(send)

        async def tracked_send(message: Message) -> None:
            if message["type"] == "websocket.accept":
                self.state.sockets[key] = socket
                self.state.idle.clear()
            elif message["type"] == "websocket.close":
                if socket.closed:
                    return  # closed by the drain already: one close frame per socket
                socket.closed = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            self.state.forget(key)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, code: CloseCode) -> None:
        """Accept-then-close, like the gateway's other refusals, so browsers read the code."""
        await receive()  # websocket.connect
        audit("connect", "deny", "draining", route=scope.get("path"))
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": code, "reason": REASONS[code]})


async def _not_ready(send: Send) -> None:
    body = b'{"status": "draining"}'
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
