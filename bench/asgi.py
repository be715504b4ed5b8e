"""The gateway's ASGI app plus two unauthenticated routes, for like-for-like benchmarks.

Both are plain Channels consumers with no gateway middleware, served by the same
process as the gateway:

- ``/bench/open/`` is stock ``AsyncWebsocketConsumer``. Channels 4.3 hops to the
  database thread before every handler (three hops per socket).
- ``/bench/lean/`` is the same consumer with the gateway's dispatch, which skips those
  hops (``consumers.base.GatewayConsumer.dispatch``). Against it, the only difference
  left is what the gateway adds: authentication, policy, audit and addressing.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter

from config.asgi import django_http, router, websocket
from consumers.base import GatewayConsumer


class OpenConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data='{"type":"welcome"}')

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)  # echo (latency probes)


class LeanConsumer(OpenConsumer):
    dispatch = GatewayConsumer.dispatch
    websocket_disconnect = GatewayConsumer.websocket_disconnect

    async def disconnect(self, code: int) -> None:
        pass


ROUTES = {"/bench/open/": OpenConsumer.as_asgi(), "/bench/lean/": LeanConsumer.as_asgi()}


async def _websocket(scope, receive, send):
    app = ROUTES.get(scope["path"], websocket)
    return await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_http, "websocket": _websocket,
                                  "lifespan": router.application_mapping["lifespan"]})
