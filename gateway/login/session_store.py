"""Django's database sessions, with a lean asynchronous read for websocket handshakes.

Every cookie handshake reads its session. Django's ``aload`` builds and compiles an ORM
query for it (about 0.3 ms of CPU, in the database thread every handshake queues on);
this store runs one parametrised SELECT instead, with the same table, the same expiry
rule and the same decoding. Writes, and the synchronous ``load`` used by HTTP views, are
Django's own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


@cache
def _select_sql(alias: str, model: Any) -> str:
    """The SELECT for one database and session model, built once: identifiers come
    from the model and are quoted; both values are parameters."""
    quote = connections[alias].ops.quote_name
    meta = model._meta
    return (f"SELECT {quote(meta.get_field('session_data').column)} "  # noqa: S608
            f"FROM {quote(meta.db_table)} "
            f"WHERE {quote(meta.get_field('session_key').column)} = %s "
            f"AND {quote(meta.get_field('expire_date').column)} > %s")


class SessionStore(db.SessionStore):
    def _read_session_data(self) -> str | None:
        """``session_data`` of the unexpired row for this key, or None."""
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(_select_sql(alias, self.model), [self.session_key, now])
            row = cursor.fetchone()
        return row[0] if row else None

    async def _aget_session(self, no_load: bool = False) -> dict[str, Any]:
        """Django's, with the load moved out of its ``except AttributeError`` block:
        asgiref re-raises the exception being handled in the database thread, and the
        traceback that leaves is a reference cycle, which the collector policy never frees
        once frozen (``gateway.ops.gcpolicy``)."""
        self.accessed = True
        try:
            return self._session_cache  # type: ignore[has-type,no-any-return]
        except AttributeError:
            pass
        self._session_cache = {} if self.session_key is None or no_load else await self.aload()
        return self._session_cache

    async def aload(self) -> dict[str, Any]:
        data = await sync_to_async(self._read_session_data)() if self.session_key else None
        if data is None:
            self._session_key = None  # as Django does: a later save creates a new key
            return {}
        return self.decode(data)
