"""Every tier: in CI a skipped test is a failure. Real-part tiers fail loudly, naming what is
missing (Keycloak, Chromium, Redis, PostgreSQL, the dev provider); they never skip."""

from __future__ import annotations

import os

import hypothesis  # noqa: F401  # see below
import pytest

# Imported here, not late: hypothesis's pytest plugin imports it in its terminal summary when
# no collected test did, and CPython 3.11.7's parser then fails with "AST constructor
# recursion depth mismatch" (a subset run ended in a SystemError after its tests passed).


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        for report in skipped:
            print(f"\nCI: skipped test counts as a failure: {report.nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
