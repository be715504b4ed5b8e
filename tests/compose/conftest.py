"""Compose tier: the top-level compose.yaml brought up once for every scenario (issue 19).

``scripts/ensure-containers`` gets the engine, the Compose CLI and the images (stand-ins
built here by default; ``GATEWAY_COMPOSE_IMAGES=upstream`` for the real ones). The session
fixture ``stack`` starts from nothing (``down -v``), runs ``up --build`` on the unchanged
file and waits for every long-running service to be healthy; the last module takes it down
and checks that nothing is left. If anything cannot be had, every test here fails with the
reason: the tier is never skipped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest

from tests.compose.stack import (
    SERVICES,
    EventLog,
    Stack,
    StackUnavailable,
    ensure_engine,
)

UP_TIMEOUT = 600.0  # Keycloak alone takes 40-80 s to be ready on 2 busy cores
LONG_RUNNING = tuple(s for s in SERVICES if s != "migrate")  # the proxy has no health check


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "compose: needs a container engine (tests/compose)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/compose/" in str(item.fspath):
            item.add_marker(pytest.mark.compose)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    try:
        engine = ensure_engine()
    except (StackUnavailable, OSError) as exc:
        pytest.fail(f"compose tier cannot run: {exc}", pytrace=False)
    stack = Stack(engine, EventLog.start(engine))
    try:
        stack.compose("down", "-v", "--remove-orphans", timeout=300)  # a run that died midway
    except StackUnavailable as exc:
        pytest.fail(f"compose tier cannot run: {exc}", pytrace=False)
    finally:
        stack.events.stop()
    events = stack.events = EventLog.start(engine)  # from here on: only this run's containers
    try:
        started = time.monotonic()
        stack.compose("up", "--build", "--detach", "--quiet-pull", timeout=UP_TIMEOUT)
        stack.wait_healthy(LONG_RUNNING, UP_TIMEOUT - (time.monotonic() - started))
        stack.up_seconds = time.monotonic() - started
        print(f"\ncompose: every service healthy {stack.up_seconds:.0f} s after up "
              f"({engine.images} images)", file=sys.stderr)
    except StackUnavailable as exc:
        logs = stack.logs(tail=40)
        stack.compose("down", "-v", "--remove-orphans", timeout=300, check=False)
        events.stop()
        pytest.fail(f"compose tier cannot run: {exc}\n{logs}", pytrace=False)
    try:
        yield stack
    finally:
        stack.compose("down", "-v", "--remove-orphans", timeout=300, check=False)
        events.stop()
