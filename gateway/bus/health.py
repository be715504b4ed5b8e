"""Whether this process's message bus answers, and whether it may have lost messages.

The bus watchdog (``gateway.ops.buswatch``) keeps it. ``up`` is whether Redis answers:
the handshake reads it to refuse new sockets while the bus is down (1013
``bus_unavailable``) instead of failing them with HTTP 500. ``epoch`` counts the
breaks in the bus's continuity, the moments after which messages sent to this process
may have been lost: the bus went down, Redis was replaced (a restart or a failover), or
the layer's subscriber connection was dropped and silently resubscribed. Whatever was
learnt from the bus before a break (open sockets, cached sessions) is not trusted after
it. Without Redis the in-memory bus is always up and never breaks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BusHealth:
    up: bool = True
    epoch: int = 0
    disagreement: str | None = None  # why this process's shard list may not be used

    def broken(self) -> None:
        """Messages sent to this process may have been lost since the last epoch."""
        self.epoch += 1


bus = BusHealth()
