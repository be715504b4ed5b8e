"""The gateway's ASGI app plus one unauthenticated route, for like-for-like benchmarks.

``/bench/open/`` is a plain Channels consumer with no gateway middleware: the baseline
an authenticated handshake is compared with, served by the same process.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter

from config.asgi import application as gateway_application
from config.asgi import django_http, websocket


class OpenConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data='{"type":"welcome"}')


_open = OpenConsumer.as_asgi()


async def _websocket(scope, receive, send):
    if scope["path"] == "/bench/open/":
        return await _open(scope, receive, send)
    return await websocket(scope, receive, send)


application = ProtocolTypeRouter({"http": django_http, "websocket": _websocket,
                                  "lifespan": gateway_application.application_mapping["lifespan"]})
