"""Structured audit events: one JSON line per accepted or refused login or connection.

Never pass a token here: only reason codes, identifiers and hashes.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import threading
import time
from typing import Any

from gateway.observe.metrics import HANDSHAKES

logger = logging.getLogger("gateway.audit")
_writer: BatchWriter | None = None


class BatchWriter(logging.Handler):
    """The audit logger's handlers, run by a writer thread in batches.

    ``handle`` only appends the finished record to a deque: no lock, no formatting and
    no thread wake-up on the event loop. Every ``period`` seconds the thread passes
    what accumulated to the real handlers (stdout, files), which may block on I/O.
    """

    def __init__(self, handlers: list[logging.Handler], period: float = 0.05) -> None:
        super().__init__()
        self.targets = handlers
        self.period = period
        self.pending: collections.deque[logging.LogRecord] = collections.deque()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)

    def handle(self, record: logging.LogRecord) -> bool:  # skips Handler's lock and filters
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.pending.append(record)

    def _run(self) -> None:
        while not self.stopping.wait(self.period):
            self.drain()
        self.drain()

    def drain(self) -> None:
        while self.pending:
            record = self.pending.popleft()
            for target in self.targets:
                if record.levelno >= target.level:
                    try:
                        target.handle(record)
                    except Exception:  # a broken sink must not stop the writer thread
                        target.handleError(record)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


def start_audit_writer() -> None:
    """Move the audit logger's handlers to a writer thread, so the event loop never
    waits on stdout or a file (called once, at startup)."""
    global _writer
    if _writer is not None or not logger.handlers:
        return
    _writer = BatchWriter(list(logger.handlers))
    logger.handlers = [_writer]
    _writer.thread.start()
    atexit.register(_writer.stop)


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
        logger.handle(logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None))
    if event == "connect":
        HANDSHAKES.labels(outcome, reason).inc()
    return record
