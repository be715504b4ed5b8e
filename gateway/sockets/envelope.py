"""Shapes shared by the glue and the consumers: the channel-layer envelope of a published
message, and the list of what a principal's grants allow (welcome, channels, console)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from oidc.channels import group_name
from oidc.types import ChannelName


def message_event(channel: ChannelName, payload: Any) -> dict[str, Any]:
    """The channel-layer event for one published message (``type`` routes it to the consumer)."""
    return {"type": "pubsub.message", "group": group_name(channel), "channel": channel,
            "payload": payload, "ts": round(time.time(), 6), "mid": uuid.uuid4().hex}


def granted(targets: dict[str, frozenset[Any]]) -> list[dict[str, Any]]:
    """What the principal's grants allow: one entry per channel or ``prefix.*`` target."""
    return [{"channel": target, "operations": sorted(str(op) for op in ops)}
            for target, ops in targets.items()]
