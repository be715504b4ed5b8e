"""A request for a host this gateway does not serve gets 400, audited as a denial.

Django refuses such a request too (``DisallowedHost``), but only once a middleware or view
first asks for the host, and it audits nothing: with DEBUG on it logs a traceback per
request, which lets any client flood the log. First in the middleware stack, this asks
at once, answers ``400 disallowed_host`` and writes one audit line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.decorators import async_only_middleware

from gateway.observe.audit import audit

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


@async_only_middleware
def host_check(get_response: Handler) -> Handler:
    async def middleware(request: HttpRequest) -> HttpResponse:
        refused = refuse_disallowed_host(request)
        return refused if refused is not None else await get_response(request)

    return middleware


def refuse_disallowed_host(request: HttpRequest) -> HttpResponse | None:
    try:
        request.get_host()
    except DisallowedHost:
        host = request.META.get("HTTP_HOST", "")
        audit("http", "deny", "disallowed_host", detail=f"Host: {host[:100]}",
              route=request.path[:200], remote=request.META.get("REMOTE_ADDR"))
        return HttpResponseBadRequest("disallowed_host", content_type="text/plain")
    return None

