"""`/ws/`: greets the client with the principal the gateway authenticated.

The only request it takes is in-band re-authentication,
``{"type": "auth", "token": "<fresh access token>"}``, answered with a new welcome.
"""

from __future__ import annotations

from consumers.base import PROTOCOL_VERSION, GatewayConsumer
from consumers.protocol import encode
from gateway.api.consumers import parse_auth_frame
from oidc.errors import OidcError
from oidc.perprincipal import PerPrincipal
from oidc.types import Principal


def _welcome(principal: Principal) -> tuple[str, bytes]:
    text = encode({"v": PROTOCOL_VERSION, "type": "welcome", "principal": principal.as_dict()})
    return text, text.encode()


welcome_frame = PerPrincipal(_welcome)  # one frame per principal, shared by its sockets


class PrincipalConsumer(GatewayConsumer):
    async def on_connected(self) -> None:
        await self.welcome()

    async def on_principal_changed(self) -> None:
        await self.welcome()

    async def welcome(self) -> None:
        """Written at once where the server can (``push_frame``), else in order behind
        the frames already waiting."""
        self.push_frame(*welcome_frame(self.principal))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        credential = parse_auth_frame({"text": text_data})
        if credential is None:
            await self.send_json({"v": PROTOCOL_VERSION, "type": "error", "error": "unsupported",
                                  "detail": "this route only takes {\"type\": \"auth\", "
                                            "\"token\"} or {\"type\": \"auth\", \"ticket\"}"})
            return
        try:
            await self.reauthenticate(credential)
        except OidcError as exc:
            await self.refuse_reauth(exc)
            return
        await self.welcome()

