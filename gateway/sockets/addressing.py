"""Channel-layer group names that address sockets by session, subject and `sid`.

Layer group names allow only ``[a-zA-Z0-9._-]`` and fewer than 100 characters,
so identifiers are hashed. Any gateway process can reach any socket this way.
"""

from __future__ import annotations

import hashlib
from typing import Any


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def session_group(session_key: str) -> str:
    return f"gw.session.{_digest(session_key)}"


def subject_group(issuer: str, subject: str) -> str:
    return f"gw.subject.{_digest(issuer, subject)}"


def sid_group(issuer: str, sid: str) -> str:
    return f"gw.sid.{_digest(issuer, sid)}"


def to_group(group: str, event: dict[str, Any]) -> dict[str, Any]:
    """``event`` naming the group it is sent to, as every ``group_send`` to sockets must:
    a layer does not say which group a message came through, and each process's
    switchboard routes by this name (``gateway.sockets.switchboard``)."""
    return {**event, "group": group}


def revoke(group: str, reason: str) -> dict[str, Any]:
    """Close every socket in ``group`` with 4401 and this reason (``GatewayConsumer``)."""
    return to_group(group, {"type": "gateway.revoke", "reason": reason})
