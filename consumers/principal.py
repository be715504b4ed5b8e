"""`/ws/`: greets the client with the principal the gateway authenticated.

The only request it takes is in-band re-authentication,
``{"type": "auth", "token": "<fresh access token>"}``, answered with a new welcome.
"""

from __future__ import annotations

import json

from consumers.base import PROTOCOL_VERSION, GatewayConsumer
from oidc.errors import OidcError


class PrincipalConsumer(GatewayConsumer):
    async def on_connected(self) -> None:
        await self.welcome()

    async def on_principal_changed(self) -> None:
        await self.welcome()

    async def welcome(self) -> None:
        await self.send_json({"v": PROTOCOL_VERSION, "type": "welcome",
                              "principal": self.principal.as_dict()})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        token = _auth_token(text_data)
        if token is None:
            await self.send_json({"v": PROTOCOL_VERSION, "type": "error", "error": "unsupported",
                                  "detail": "this route only takes {\"type\": \"auth\", \"token\"}"})
            return
        try:
            await self.reauthenticate(token)
        except OidcError as exc:
            await self.refuse_reauth(exc)
            return
        await self.welcome()


def _auth_token(text_data: str | None) -> str | None:
    if not text_data or len(text_data) > 20_000:
        return None
    try:
        frame = json.loads(text_data)
    except ValueError:
        return None
    if isinstance(frame, dict) and frame.get("type") == "auth" and isinstance(frame.get("token"), str):
        return str(frame["token"])
    return None
