"""One socket's credential lifetime, shared by the service's consumers and the library's mixin.

One loop timer, no polling: the notice once per credential, at most
``oidc.lifetime.NOTICE_SHARE`` of its lifetime ahead (``oidc.lifetime.notice_time``), then
the close at expiry. The work a notice starts (a refresh, a message to the client) runs as
the socket's tasks. ``end()`` at the disconnect cancels the timer and those tasks, and
nothing is armed or started after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from oidc.lifetime import notice_time
from oidc.types import Principal

Work = Callable[[], Coroutine[Any, Any, None]]
NO_TASKS: frozenset[asyncio.Future[None]] = frozenset()  # one for every socket (216 B each)


class Lifetime:
    __slots__ = ("_noticed_for", "_on_expired", "_on_expiring", "_timer", "gone", "tasks")

    def __init__(self, on_expiring: Work, on_expired: Work) -> None:
        self._on_expiring: Work | None = on_expiring  # bound to the socket: dropped at end()
        self._on_expired: Work | None = on_expired
        self._timer: asyncio.TimerHandle | None = None
        self._noticed_for: float | None = None  # the expiry whose notice was given
        self.tasks: frozenset[asyncio.Future[None]] | set[asyncio.Future[None]] = NO_TASKS
        self.gone = False  # ended: nothing is armed or started again

    def arm(self, principal: Principal, notice: float) -> None:
        """Time ``principal``'s notice (``notice`` seconds ahead at most), or, once it has
        had one, its close at expiry."""
        if self.gone:
            return
        if self._timer is not None:
            self._timer.cancel()
        now, loop = time.time(), asyncio.get_running_loop()
        if principal.expires_at == self._noticed_for:
            self._timer = loop.call_later(max(0.0, principal.expires_at - now), self._expired)
            return
        due = notice_time(principal.issued_at, principal.expires_at, notice, now=now)
        self._timer = loop.call_later(max(0.0, due - now), self._expiring, principal.expires_at)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as one of this socket's tasks (never once ended)."""
        if self.gone:
            work.close()
            return
        task = asyncio.ensure_future(work)
        if not isinstance(self.tasks, set):
            self.tasks = set()  # most sockets never need one
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def end(self) -> None:
        """Cancel the timer and the tasks (all but the one calling): the socket is gone. The
        callbacks go too: the socket and its lifetime refer to each other, a cycle that the
        collector policy would never free once frozen (``gateway.ops.gcpolicy``)."""
        self.gone = True
        self._on_expiring = self._on_expired = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()

    def pending(self) -> int:
        """The armed timer and the unfinished tasks."""
        armed = self._timer is not None and not self._timer.cancelled()
        return int(armed) + sum(1 for task in self.tasks if not task.done())

    def _expiring(self, expires_at: float) -> None:
        self._noticed_for = expires_at
        self._timer = asyncio.get_running_loop().call_later(
            max(0.0, expires_at - time.time()), self._expired)
        if self._on_expiring is not None:
            self.spawn(self._on_expiring())

    def _expired(self) -> None:
        self._timer = None
        if self._on_expired is not None:
            self.spawn(self._on_expired())
