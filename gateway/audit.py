"""Structured audit events: one JSON line per accepted or refused login or connection.

Never pass a token here: only reason codes, identifiers and hashes.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from gateway.metrics import HANDSHAKES

logger = logging.getLogger("gateway.audit")

FIELDS = (
    "event", "outcome", "reason", "issuer", "subject", "route", "origin", "remote",
    "credential", "kid", "jti_hash", "sid_hash", "detail",
)


def audit(event: str, outcome: str, reason: str, **fields: Any) -> dict[str, Any]:
    """Write one audit event. `outcome` is "allow" or "deny"; `reason` a reason code."""
    record: dict[str, Any] = {"ts": round(time.time(), 3), "event": event,
                              "outcome": outcome, "reason": reason}
    for name in FIELDS[3:]:
        value = fields.pop(name, None)
        if value is not None:
            record[name] = value
    if fields:
        raise TypeError(f"unknown audit fields: {sorted(fields)}")
    logger.info(json.dumps(record, sort_keys=True, default=str))
    if event == "connect":
        HANDSHAKES.labels(outcome, reason).inc()
    return record
