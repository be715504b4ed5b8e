"""What the glue may do to this process's open sockets, without importing the consumers.

The consumers own the sockets; ``config/asgi.py`` hands their functions to the lifespan
as a ``LocalSockets``, the way Channels hands consumers a channel layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.sockets.closecodes import CloseCode

CloseAll = Callable[[CloseCode, str], Awaitable[int]]


@dataclass(frozen=True)
class LocalSockets:
    close_all: CloseAll  # close every socket of this process with a code and reason
