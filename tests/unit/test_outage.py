"""gateway.observe.outage: one line when a dependency is lost, one when back, retries counted."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.observe.metrics import DEPENDENCY_DOWN, DEPENDENCY_RETRIES
from gateway.observe.outage import MAX_DELAY, Dependency, backoff


def _retries(component: str) -> float:
    return DEPENDENCY_RETRIES.labels("test", component)._value.get()  # type: ignore[no-any-return]


def test_one_line_lost_one_line_back_and_every_attempt_counted(caplog: pytest.LogCaptureFixture) -> None:
    dep = Dependency("test", "Clients wait")
    before = _retries("a")
    with caplog.at_level(logging.INFO, logger="gateway.outage"):
        for _ in range(20):
            dep.failed("a", RedisConnectionError("Error 111 connecting"))
        dep.failed("b", OSError("refused"))
        dep.recovered("a")
        assert dep.lost  # b still fails
        dep.recovered("b")
        dep.recovered("b")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("test lost: a: ConnectionError: Error 111 connecting. Clients wait.")
    assert lines[1].startswith("test is back after ") and "(21 failed attempts)" in lines[1]
    assert all(r.exc_info is None for r in caplog.records)  # no traceback for an outage
    assert _retries("a") - before == 20
    assert DEPENDENCY_DOWN.labels("test")._value.get() == 0


def test_an_unexpected_error_gets_its_traceback_once(caplog: pytest.LogCaptureFixture) -> None:
    dep = Dependency("test", "Clients wait")
    with caplog.at_level(logging.INFO, logger="gateway.outage"):
        for _ in range(5):
            dep.failed("c", RuntimeError("a bug"))
        dep.recovered("c")
    assert [r.exc_info is not None for r in caplog.records] == [True]
    assert not dep.lost


def test_backoff_doubles_to_its_cap() -> None:
    delays = [backoff(n) for n in range(1, 10)]
    assert delays[0] <= 0.25 and delays[2] > delays[0]
    assert max(delays) <= MAX_DELAY and delays[-1] >= 0.8 * MAX_DELAY
