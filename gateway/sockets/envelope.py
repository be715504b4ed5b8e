"""The channel-layer envelope of a published message, shared by the publish API and the consumers."""

from __future__ import annotations

import time
import uuid
from typing import Any

from oidc.types import ChannelName


def message_event(channel: ChannelName, payload: Any) -> dict[str, Any]:
    """The channel-layer event for one published message (``type`` routes it to the consumer)."""
    return {"type": "pubsub.message", "channel": channel, "payload": payload,
            "ts": round(time.time(), 6), "mid": uuid.uuid4().hex}
