"""Shapes shared by the glue and the consumers: the channel-layer envelope of a published
message, and the list of what a principal's grants allow (welcome, channels, console)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from oidc.channels import group_name
from oidc.types import ChannelName

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def lone_surrogate(text: str, value: Any) -> bool:
    """Whether JSON ``text``, decoded to ``value``, holds a lone UTF-16 surrogate escape
    (``"\\ud800"``): Python decodes it into a string no UTF-8 encoder (msgpack, the
    websocket, the page) can write. The full check runs only if such an escape occurs."""
    if _SURROGATE_ESCAPE.search(text) is None:
        return False
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def message_event(channel: ChannelName, payload: Any) -> dict[str, Any]:
    """The channel-layer event for one published message (``type`` routes it to the consumer)."""
    return {"type": "pubsub.message", "group": group_name(channel), "channel": channel,
            "payload": payload, "ts": round(time.time(), 6), "mid": uuid.uuid4().hex}


def granted(targets: dict[str, frozenset[Any]]) -> list[dict[str, Any]]:
    """What the principal's grants allow: one entry per channel or ``prefix.*`` target."""
    return [{"channel": target, "operations": sorted(str(op) for op in ops)}
            for target, ops in targets.items()]
