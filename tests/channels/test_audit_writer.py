"""The audit writer: the event loop appends, a thread writes in batches, nothing is lost."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from gateway.observe import audit as audit_module
from gateway.observe.audit import BatchWriter, Deferred, audit


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


def deploy(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
           ) -> tuple[BatchWriter, Blocking]:
    """The audit logger as deployed: the writer thread is its only handler, no propagation
    (set inside the test: pytest adds its capture handlers after the fixtures)."""
    sink = Blocking()
    writer = BatchWriter([sink], period=0.01)
    monkeypatch.setattr(audit_module, "_writer", writer)
    monkeypatch.setattr(audit_module.logger, "handlers", [writer])
    monkeypatch.setattr(audit_module.logger, "propagate", False)
    request.addfinalizer(sink.gate.set)
    return writer, sink


def test_the_event_loop_hands_over_the_event_and_the_thread_writes_every_field(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    writer, sink = deploy(monkeypatch, request)
    fields = {"issuer": "https://idp", "subject": "bob", "route": "/ws/", "origin": "https://app",
              "remote": "10.0.0.1", "credential": "bearer", "kid": "k1", "jti_hash": "j",
              "sid_hash": "s", "detail": "d", "received_at": 1.5}
    audit("connect", "deny", "forbidden", **fields)
    assert not sink.lines and isinstance(writer.pending[0], Deferred)  # nothing encoded yet
    sink.gate.set()
    writer.drain()
    [line] = sink.lines
    written = json.loads(line)
    assert {k: written[k] for k in fields} == fields
    assert (written["event"], written["outcome"], written["reason"]) == ("connect", "deny",
                                                                          "forbidden")


def test_no_denial_is_lost_behind_a_blocked_sink(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    writer, sink = deploy(monkeypatch, request)
    writer.thread.start()
    for n in range(2000):
        audit("connect", "deny" if n % 2 else "allow", "no_route", detail=str(n))
    sink.gate.set()
    writer.stop()
    written = [json.loads(line) for line in sink.lines]
    assert [int(w["detail"]) for w in written] == list(range(2000))
    assert all(w["outcome"] == ("deny" if int(w["detail"]) % 2 else "allow") for w in written)


def test_the_record_carries_the_time_of_the_event_not_of_the_write() -> None:
    record = Deferred("connect", "allow", "allowed", {}, created=1000.25).record()
    assert (record.created, record.msecs) == (1000.25, 250)
    assert record.getMessage() == ('{"ts": 1000.25, "event": "connect", "outcome": "allow", '
                                   '"reason": "allowed"}')


def test_fields_are_written_in_their_fixed_order_and_none_is_left_out() -> None:
    line = Deferred("connect", "deny", "forbidden", {"detail": "d", "subject": "bob",
                                                     "origin": None}, created=1.0).line()
    assert list(line) == ["ts", "event", "outcome", "reason", "subject", "detail"]


def test_an_unknown_field_raises_at_the_call() -> None:
    with pytest.raises(TypeError, match="token"):
        audit("connect", "deny", "forbidden", token="never logged")


def test_any_other_handler_on_the_audit_logger_gets_the_record_at_once(
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    writer, _ = deploy(monkeypatch, request)
    other = Blocking()
    other.gate.set()
    monkeypatch.setattr(audit_module.logger, "handlers", [writer, other])  # no fast path
    audit("connect", "deny", "origin_not_allowed")
    assert [json.loads(line)["reason"] for line in other.lines] == ["origin_not_allowed"]
