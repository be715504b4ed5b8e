"""The audit writer: the event loop appends, a thread writes in batches, nothing is lost."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from gateway.observe.audit import BatchWriter


class Blocking(logging.Handler):
    """A sink that blocks until released, like a full pipe on stdout."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.gate.wait(5)
        self.lines.append(record.getMessage())


def test_a_blocked_sink_never_blocks_the_caller_and_every_line_arrives_in_order() -> None:
    sink = Blocking()
    writer = BatchWriter([sink], period=0.01)
    log = logging.getLogger("tests.audit.writer")
    log.propagate, log.handlers = False, [writer]
    log.setLevel(logging.INFO)
    writer.thread.start()
    for n in range(500):  # would hang for 5 s per line if handle() reached the sink
        log.info(json.dumps({"n": n}))
    assert sink.lines == []
    sink.gate.set()
    writer.stop()
    assert [json.loads(line)["n"] for line in sink.lines] == list(range(500))


def test_level_of_each_target_is_respected() -> None:
    quiet, loud = Blocking(), Blocking()
    quiet.setLevel(logging.WARNING)
    quiet.gate.set()
    loud.gate.set()
    writer = BatchWriter([quiet, loud], period=0.01)
    writer.handle(logging.LogRecord("x", logging.INFO, __file__, 0, "info", None, None))
    writer.drain()
    assert (quiet.lines, loud.lines) == ([], ["info"])


class Broken(logging.Handler):
    def handle(self, record: logging.LogRecord) -> bool:
        raise OSError("disk full")


def test_a_sink_that_raises_does_not_stop_the_other_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError stays quiet
    good = Blocking()
    good.gate.set()
    writer = BatchWriter([Broken(), good], period=0.01)
    writer.thread.start()
    for n in range(3):
        writer.handle(logging.LogRecord("x", logging.INFO, __file__, 0, str(n), None, None))
    writer.stop()
    assert good.lines == ["0", "1", "2"] and not writer.thread.is_alive()
