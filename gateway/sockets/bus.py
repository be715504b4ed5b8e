"""Whether this process's message bus answers, as last seen by the bus watchdog.

The watchdog (``gateway.ops.buswatch``) sets it; the handshake reads it to refuse new
sockets while the bus is down (1013 ``bus_unavailable``) instead of failing them with
HTTP 500. Without Redis the in-memory bus is always up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BusHealth:
    up: bool = True


bus = BusHealth()
