"""Structured audit events: one JSON line per accepted or refused login or connection.

Never pass a token here: only reason codes, identifiers and hashes.
"""

from __future__ import annotations

import atexit
import collections
import functools
import json
import logging
import threading
import time
from typing import Any, NamedTuple

from gateway.observe.metrics import HANDSHAKES

logger = logging.getLogger("gateway.audit")
_writer: BatchWriter | None = None


class BatchWriter(logging.Handler):
    """The audit logger's handlers, run by a writer thread in batches.

    ``handle`` only appends the finished record to a deque: no lock, no formatting and
    no thread wake-up on the event loop. :func:`audit` appends less still: its event as
    a plain dict (``defer``), which the thread encodes and wraps in a record. Every
    ``period`` seconds the thread passes what accumulated to the real handlers (stdout,
    files), which may block on I/O.
    """

    def __init__(self, handlers: list[logging.Handler], period: float = 0.05) -> None:
        super().__init__()
        self.targets = handlers
        self.period = period
        self.pending: collections.deque[logging.LogRecord | Deferred] = collections.deque()
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
            item = self.pending.popleft()
            record = item.record() if isinstance(item, Deferred) else item
            for target in self.targets:
                if record.levelno >= target.level:
                    try:
                        target.handle(record)
                    except Exception:  # a broken sink must not stop the writer thread
                        target.handleError(record)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)


class Deferred(NamedTuple):
    """An audit event not yet encoded: the writer thread makes its log record."""

    event: str
    outcome: str
    reason: str
    fields: dict[str, Any]
    created: float  # when it happened, not when it is written

    def line(self) -> dict[str, Any]:
        record: dict[str, Any] = {"ts": round(self.created, 3), "event": self.event,
                                  "outcome": self.outcome, "reason": self.reason}
        for name in FIELDS[3:]:
            value = self.fields.get(name)
            if value is not None:
                record[name] = value
        return record

    def record(self) -> logging.LogRecord:
        line = json.dumps(self.line(), separators=(", ", ": "), default=str)
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, (), None)
        record.created, record.msecs = self.created, int(self.created * 1000) % 1000
        return record


def _direct_writer() -> BatchWriter | None:
    """The writer thread, when it is the audit logger's only way out (as deployed): then
    :func:`audit` hands it the event itself and skips ``logging`` on the event loop."""
    writer = _writer
    if writer is None or logger.propagate or logger.disabled or logger.filters:
        return None
    handlers = logger.handlers
    return writer if len(handlers) == 1 and handlers[0] is writer else None


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
KNOWN_FIELDS = frozenset(FIELDS[3:])


def scope_fields(scope: Any) -> dict[str, Any]:
    """Route, origin and peer of a websocket scope, for audit events."""
    client = scope.get("client")
    return {"route": scope["path"][:200], "origin": scope.get("origin"),
            "remote": str(client[0]) if client else None}


def audit(event: str, outcome: str, reason: str, **fields: Any) -> None:
    """Write one audit event. `outcome` is "allow" or "deny"; `reason` a reason code.

    Unknown fields raise here, at once; the line itself (the fields in ``FIELDS`` order,
    those that are None left out) is made where it is written (``Deferred.record``)."""
    if not KNOWN_FIELDS.issuperset(fields):
        raise TypeError(f"unknown audit fields: {sorted(set(fields) - KNOWN_FIELDS)}")
    if logger.isEnabledFor(logging.INFO):
        deferred = Deferred(event, outcome, reason, fields, time.time())
        writer = _direct_writer()
        if writer is not None:
            writer.pending.append(deferred)  # encoded in the writer thread
        else:
            logger.handle(deferred.record())
    if event == "connect":
        _handshakes(outcome, reason).inc()


@functools.cache
def _handshakes(outcome: str, reason: str) -> Any:
    """The handshake counter's child for these labels (``labels()`` takes a lock each time)."""
    return HANDSHAKES.labels(outcome, reason)
