"""The consumers' side of the live connections view (``gateway.ops.roster``).

Each accepted socket is listed with its route, credential kind, process and channels, and
struck off when it closes. An administrator's disconnect reaches it as a
``gateway.disconnect`` event on its subject's group, from any process: the socket gets a
``disconnect`` notice with the administrator's reason, then closes with 4410
``admin_disconnect`` (docs/errors.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from gateway.api import CloseCode
from gateway.api.consumers import REDIS, SocketEntry, matcher_view, roster, this_process
from oidc.perprincipal import PerPrincipal
from oidc.types import Principal

VERSION = 1


def _matcher_view(p: Principal) -> dict[str, Any]:
    return matcher_view(p.groups, p.roles, p.claims)


roster_view = PerPrincipal(_matcher_view)  # shared by the principal's sockets: never mutated


class RosterMixin:
    """Mixed into ``GatewayConsumer``, which provides the attributes declared here."""

    channel_name: str
    scope: dict[str, Any]
    principal: Principal
    enrolled: bool = False
    enrolled_at: float = 0.0

    async def send_json(self, content: dict[str, Any]) -> None: ...  # GatewayConsumer's
    async def close_with(self, code: CloseCode, reason: str) -> None: ...  # GatewayConsumer's

    def _entry(self) -> SocketEntry:
        p = self.principal
        return SocketEntry(socket=self.channel_name, issuer=p.issuer, subject=p.subject,
                           route=str(self.scope.get("path", ""))[:200],
                           credential=p.credential.value, process=this_process(),
                           connected_at=self.enrolled_at, **roster_view(p))

    async def enrol(self) -> None:
        """List this accepted socket (a roster failure never refuses the socket)."""
        self.enrolled_at = round(time.time(), 3)
        try:
            await roster().opened(self._entry())
            self.enrolled = True
        except Exception as exc:  # Redis down: the bus watchdog closes the sockets
            REDIS.noted("roster", exc)

    async def report_principal(self) -> None:
        """The principal changed: the roster gets its new claims (the grant preview reads them)."""
        if self.enrolled:
            try:
                await roster().reidentified(self._entry())
            except Exception as exc:
                REDIS.noted("roster", exc)

    async def report_channels(self, channels: Iterable[str]) -> None:
        if self.enrolled:
            try:
                await roster().subscribed(self.channel_name, channels)
            except Exception as exc:
                REDIS.noted("roster", exc)

    async def strike_off(self) -> None:
        if self.enrolled:
            self.enrolled = False
            try:
                await roster().closed(self.channel_name)
            except Exception as exc:  # the entry expires with its heartbeat
                REDIS.noted("roster", exc)

    async def gateway_disconnect(self, event: dict[str, Any]) -> None:
        """An administrator disconnected this subject (``gateway.oversight.live``)."""
        await self.send_json({"v": VERSION, "type": "disconnect", "reason": "admin_disconnect",
                              "detail": str(event.get("detail", ""))[:200]})
        await self.close_with(CloseCode.ADMIN_DISCONNECT, "admin_disconnect")
