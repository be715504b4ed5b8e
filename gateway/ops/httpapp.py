"""Django's ASGI handler for plain HTTP, minus one reference cycle per request.

Django's ``ASGIHandler.handle`` runs the view beside ``listen_for_disconnect``, which
raises ``RequestAborted`` when the server reports the end of the request, as uvicorn does
once the response is sent. ``handle`` then re-raises it from the finished task only to
ignore it, and the traceback ties its frame, the tasks and the request into a cycle. The
collector policy (``gateway.ops.gcpolicy``) never frees a cycle whose objects were frozen
while the request ran, so every such request leaked. Here the listener simply returns
on a disconnect: ``handle`` cancels the view all the same, and nothing is raised.

``release_request``, the outermost middleware, undoes the other per-request cycles once
the response is built: ``request.user`` and ``request.auser`` (AuthenticationMiddleware's
lazy closures over the request) and ``request._messages`` (the message storage holds the
request).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django
from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.utils.decorators import sync_and_async_middleware

from gateway.ops.gcpolicy import request_in_flight

CYCLIC = ("user", "auser", "_cached_user", "_messages")  # attributes that refer back


class GatewayASGIHandler(ASGIHandler):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        with request_in_flight():  # its thread and database connection stay unfrozen
            await super().__call__(scope, receive, send)

    async def listen_for_disconnect(self, receive: Any) -> None:
        message = await receive()
        if message["type"] != "http.disconnect":  # as Django: never happens
            raise AssertionError(f"Invalid ASGI message after request body: {message['type']}")


def http_application() -> GatewayASGIHandler:
    """``django.core.asgi.get_asgi_application`` with the handler above."""
    django.setup(set_prefix=False)
    return GatewayASGIHandler()


def _release(request: HttpRequest) -> None:
    for name in CYCLIC:
        request.__dict__.pop(name, None)


@sync_and_async_middleware
def release_request(get_response: Callable[[HttpRequest], Any]) -> Callable[[HttpRequest], Any]:
    if iscoroutinefunction(get_response):
        async def release_after(request: HttpRequest) -> HttpResponseBase:
            response: HttpResponseBase = await get_response(request)
            _release(request)
            return response

        return release_after

    def release_after_sync(request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = get_response(request)
        _release(request)
        return response

    return release_after_sync
