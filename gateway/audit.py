"""Structured audit events: one JSON line per accepted or refused login or connection.

Never pass a token here: only reason codes, identifiers and hashes.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import time
from typing import Any

from gateway.metrics import HANDSHAKES

logger = logging.getLogger("gateway.audit")
_writer: logging.handlers.QueueListener | None = None


def start_audit_writer() -> None:
    """Move the audit logger's handlers behind a queue, so the event loop never waits
    on stdout or a file; a listener thread does the writing (called once, at startup)."""
    global _writer
    if _writer is not None or not logger.handlers:
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer = logging.handlers.QueueListener(records, *logger.handlers,
                                             respect_handler_level=True)
    logger.handlers = [_HandOver(records)]
    _writer.start()
    atexit.register(_writer.stop)

class _HandOver(logging.handlers.QueueHandler):
    """Queue the record as it is: an audit record is one finished JSON line with no
    arguments or traceback, so the base class's format-and-copy is wasted work."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


FIELDS = (
    "event", "outcome", "reason", "issuer", "subject", "route", "origin", "remote",
    "credential", "kid", "jti_hash", "sid_hash", "detail", "received_at",
)


def scope_fields(scope: Any) -> dict[str, Any]:
    """Route, origin and peer of a websocket scope, for audit events."""
    client = scope.get("client")
    return {"route": scope["path"][:200], "origin": scope.get("origin"),
            "remote": str(client[0]) if client else None}


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
    if logger.isEnabledFor(logging.INFO):  # makeRecord: no stack walk for the caller
        line = json.dumps(record, separators=(", ", ": "), default=str)
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, None, None))
    if event == "connect":
        HANDSHAKES.labels(outcome, reason).inc()
    return record
