"""`POST /api/publish`: a backend publishes one message into a channel.

The caller sends ``Authorization: Bearer <access token>`` (RFC 6750 §2.1) from
the ``client_credentials`` grant, verified by the same function the websocket
handshake uses, and must hold the ``publish`` scope. The body is JSON
``{"channel": "...", "payload": <any JSON>}`` of at most 64 KiB. The message
goes to the channel's layer group, so every authorised subscriber on every
gateway process gets it. Answers are JSON: 202 ``{"mid", "channel", "ts"}``, or
``{"error": code}`` with 400/401/403/405/413/415/503. Every refusal is audited.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from channels.layers import get_channel_layer
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from gateway.handshake.authn import principal_for_token
from gateway.observe.audit import audit
from gateway.sockets.envelope import lone_surrogate, message_event
from oidc.channels import InvalidChannel, normalise_channel
from oidc.errors import OidcError
from oidc.types import ChannelName, CredentialKind, Principal

logger = logging.getLogger("gateway.publish")

PUBLISH_SCOPE = "publish"
MAX_BODY_BYTES = 64 * 1024
ROUTE = "/api/publish"
_STATUS = {"unauthenticated": 401, "forbidden": 403, "unavailable": 503, "bad_request": 400}


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "not_authenticated")
    return token.strip()


async def _principal(request: HttpRequest) -> Principal:
    try:
        return await principal_for_token(_bearer(request), CredentialKind.BEARER, now=time.time())
    except OidcError as exc:
        raise Refused(_STATUS.get(exc.status, 401), exc.error) from None


def _body(request: HttpRequest) -> tuple[ChannelName, Any]:
    content_type = request.content_type or ""
    if content_type.lower() != "application/json":
        raise Refused(415, "unsupported_media_type", "send Content-Type: application/json")
    declared = request.headers.get("Content-Length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
        raise Refused(413, "payload_too_large", f"at most {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(request.body, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise Refused(400, "invalid_json") from None
    if lone_surrogate(request.body.decode("latin-1"), body):
        raise Refused(400, "invalid_json", "a lone UTF-16 surrogate escape cannot be published")
    if not isinstance(body, dict) or set(body) != {"channel", "payload"}:
        raise Refused(400, "invalid_body", 'send exactly {"channel": ..., "payload": ...}')
    try:
        return normalise_channel(body["channel"]), body["payload"]
    except InvalidChannel as exc:
        raise Refused(400, exc.error, exc.detail) from None


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def _refusal(request: HttpRequest, refused: Refused, principal: Principal | None) -> JsonResponse:
    who = {"issuer": principal.issuer, "subject": principal.subject} if principal else {}
    audit("publish", "deny", refused.error, route=ROUTE, remote=request.META.get("REMOTE_ADDR"),
          credential=CredentialKind.BEARER.value, detail=refused.detail, **who)
    body = {"error": refused.error} | ({"detail": refused.detail} if refused.detail else {})
    response = JsonResponse(body, status=refused.status)
    if refused.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="gateway"'
    elif refused.error == "insufficient_scope":
        response["WWW-Authenticate"] = f'Bearer error="insufficient_scope", scope="{PUBLISH_SCOPE}"'
    return response


@csrf_exempt
async def publish(request: HttpRequest) -> JsonResponse:
    principal: Principal | None = None
    try:
        if request.method != "POST":
            raise Refused(405, "method_not_allowed", "use POST")
        principal = await _principal(request)
        if PUBLISH_SCOPE not in principal.scopes:
            raise Refused(403, "insufficient_scope", f"the token needs scope {PUBLISH_SCOPE}")
        channel, payload = _body(request)
    except Refused as refused:
        return _refusal(request, refused, principal)
    event = message_event(channel, payload)
    await get_channel_layer().group_send(event["group"], event)
    return JsonResponse({"mid": event["mid"], "channel": channel, "ts": event["ts"]}, status=202)
