"""The pub/sub message protocol, version 1 (docs/protocol.md). Parsing only, no I/O.

``parse`` turns one websocket frame into a request or a ``FrameError`` with a
reason code; it never raises. The consumer decides what to do with either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.api.consumers import Credential, lone_surrogate
from oidc.channels import InvalidChannel, group_name, normalise_channel
from oidc.types import ChannelName, CredentialKind

VERSION: Final = 1
MAX_ID_LENGTH: Final = 128
# Frame size, violations and subscriptions per connection are configurable:
# gateway.conf.env.Limits (GATEWAY_MAX_FRAME_BYTES, GATEWAY_MAX_VIOLATIONS, GATEWAY_MAX_SUBSCRIPTIONS).
REQUEST_TYPES: Final = ("subscribe", "unsubscribe", "publish", "presence", "ping", "auth")
REQUEST_FIELDS: Final = {"v", "type", "id", "channel", "payload", "token", "ticket"}


@dataclass(frozen=True)
class Request:
    type: str
    id: str | int
    channel: ChannelName | None = None
    payload: Any = None
    token: str | None = field(default=None, repr=False)  # `auth` only; never logged
    ticket: str | None = field(default=None, repr=False)  # `auth` only; never logged


@dataclass(frozen=True)
class FrameError:
    """A frame the gateway refuses; ``id`` is echoed when the frame had a usable one."""

    error: str
    detail: str
    id: str | int | None = None


def frame_too_big(text_data: str | None, bytes_data: bytes | None, limit: int) -> bool:
    if bytes_data is not None:
        return len(bytes_data) > limit
    return text_data is not None and len(text_data.encode("utf-8", "surrogatepass")) > limit


def _request_id(frame: dict[str, Any]) -> str | int | None:
    value = frame.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and -(2**53) < value < 2**53:
        return value
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity would not survive re-encoding


def _decode(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any] | FrameError:
    if text_data is None:
        return FrameError("binary_frame", "send JSON in text frames")
    if not text_data.strip():
        return FrameError("invalid_json", "empty frame")
    try:
        frame = json.loads(text_data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return FrameError("invalid_json", "the frame is not valid JSON")
    if lone_surrogate(text_data, frame):
        return FrameError("invalid_json", "the frame has a lone UTF-16 surrogate escape")
    if not isinstance(frame, dict):
        return FrameError("invalid_frame", "the frame must be a JSON object")
    return frame


def _auth_request(frame: dict[str, Any], request_id: str | int) -> Request | FrameError:
    """``auth`` carries exactly one of a fresh access token or a one-time ticket."""
    token, ticket = frame.get("token"), frame.get("ticket")
    if isinstance(token, str) and token and ticket is None:
        return Request("auth", request_id, token=token)
    if isinstance(ticket, str) and ticket and token is None:
        return Request("auth", request_id, ticket=ticket)
    return FrameError("missing_field", "send exactly one of token or ticket", request_id)


def auth_credential(request: Request) -> Credential:
    """The credential an ``auth`` request carries."""
    if request.ticket is not None:
        return Credential(CredentialKind.TICKET, request.ticket)
    return Credential(CredentialKind.MESSAGE, request.token or "")


def parse(text_data: str | None, bytes_data: bytes | None = None) -> Request | FrameError:
    """One client frame -> a Request, or a FrameError naming what is wrong."""
    frame = _decode(text_data, bytes_data)
    if isinstance(frame, FrameError):
        return frame
    request_id = _request_id(frame)
    if request_id is None:
        return FrameError("invalid_id", f"id must be a string of 1-{MAX_ID_LENGTH} characters "
                          "or an integer")
    if frame.get("v") != VERSION or isinstance(frame.get("v"), bool):
        return FrameError("unsupported_version", f"set v to {VERSION}", request_id)
    kind = frame.get("type")
    if kind not in REQUEST_TYPES:
        return FrameError("unknown_type", f"type must be one of {', '.join(REQUEST_TYPES)}",
                          request_id)
    unknown = sorted(str(k) for k in set(frame) - REQUEST_FIELDS)
    if unknown:
        return FrameError("unknown_field", f"unknown fields: {', '.join(unknown)[:200]}",
                          request_id)
    if kind == "ping":
        return Request("ping", request_id)
    if kind == "auth":
        return _auth_request(frame, request_id)
    if "channel" not in frame:
        return FrameError("missing_field", "channel is required", request_id)
    try:
        channel = normalise_channel(frame["channel"])
    except InvalidChannel as exc:
        return FrameError(exc.error, exc.detail[:200], request_id)
    if kind == "publish":
        if "payload" not in frame:
            return FrameError("missing_field", "payload is required", request_id)
        return Request("publish", request_id, channel, frame["payload"])
    return Request(kind, request_id, channel)


# --- gateway -> client --------------------------------------------------------------


def welcome(principal: dict[str, Any], channels: list[dict[str, Any]],
            limits: dict[str, Any]) -> dict[str, Any]:
    """The first frame on ``/ws/events/``: who the gateway authenticated, what they may do."""
    return {"v": VERSION, "type": "welcome", "principal": principal, "channels": channels,
            "limits": limits}


def channels_changed(channels: list[dict[str, Any]]) -> dict[str, Any]:
    """Sent when what the grants allow changed (grant edit, re-authentication, refresh)."""
    return {"v": VERSION, "type": "channels", "channels": channels}


def ack(request_id: str | int, **extra: Any) -> dict[str, Any]:
    return {"v": VERSION, "type": "ack", "id": request_id, **extra}


def error(request_id: str | int | None, code: str, detail: str) -> dict[str, Any]:
    return {"v": VERSION, "type": "error", "id": request_id, "error": code, "detail": detail}


def unsubscribed(channel: str, reason: str) -> dict[str, Any]:
    return {"v": VERSION, "type": "unsubscribed", "channel": channel, "reason": reason}


def encode(frame: dict[str, Any]) -> str:
    """A frame as compact JSON text."""
    return json.dumps(frame, separators=(",", ":"))


def message(event: dict[str, Any]) -> dict[str, Any]:
    """What a subscriber receives for a channel-layer ``pubsub.message`` event."""
    return {"v": VERSION, "type": "message", "channel": event["channel"],
            "payload": event["payload"], "ts": event["ts"], "mid": event["mid"]}


def presence_event(kind: str, channel: ChannelName, issuer: str, subject: str) -> dict[str, Any]:
    """The channel-layer event for a member's first join or last leave of a channel."""
    return {"type": "presence.event", "group": group_name(channel), "event": kind,
            "channel": channel, "issuer": issuer, "subject": subject}


def presence_notice(event: dict[str, Any]) -> dict[str, Any]:
    """What a presence holder receives: ``join`` or ``leave`` with the member."""
    return {"v": VERSION, "type": event["event"], "channel": event["channel"],
            "member": {"issuer": event["issuer"], "subject": event["subject"]}}
