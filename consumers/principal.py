"""`/ws/`: greets the client with the principal the gateway authenticated."""

from __future__ import annotations

from consumers.base import PROTOCOL_VERSION, GatewayConsumer


class PrincipalConsumer(GatewayConsumer):
    async def on_connected(self) -> None:
        await self.send_json({"v": PROTOCOL_VERSION, "type": "welcome",
                              "principal": self.principal.as_dict()})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send_json({"v": PROTOCOL_VERSION, "type": "error", "error": "unsupported",
                              "detail": "this route only sends the welcome message"})

