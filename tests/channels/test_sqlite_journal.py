"""SQLite runs in WAL mode with every commit synced (config/settings.py).

WAL costs one fsync per commit instead of three or four, which a back-channel logout
waits for before closing any socket; FULL keeps a deleted session deleted after a
power loss. Checked on a file database opened with the configured options (the test
database itself may live in memory, where SQLite has no journal file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.backends.sqlite3.base import DatabaseWrapper


@pytest.mark.sqlite_only  # the PostgreSQL pass of the tier (scripts/test) leaves it out
def test_sqlite_commits_to_a_synced_write_ahead_log(tmp_path: Path, django_db_blocker: Any) -> None:
    configured = settings.DATABASES["default"]
    assert configured["ENGINE"].endswith("sqlite3"), "run on SQLite, the default engine"
    wrapper = DatabaseWrapper({**configured, "NAME": str(tmp_path / "gateway.sqlite3")},
                              alias="journal-check")
    try:
        with django_db_blocker.unblock(), wrapper.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            journal = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous")
            synchronous = cursor.fetchone()[0]
    finally:
        wrapper.close()
    assert (journal, synchronous) == ("wal", 2)  # 2: FULL
