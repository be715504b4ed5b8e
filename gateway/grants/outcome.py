"""What each process actually did after a grant change: the other half of the change log.

Every pub/sub socket re-checks its subscriptions when it hears ``grants.changed``
(``consumers.pubsub``) and reports here how many it dropped as ``revoked``. The counts are
kept per grant version in this process and written, about ``DELAY`` seconds after the first
report, as one ``GrantOutcome`` row per version and process (later reports add to it). The
admin's "Grant changes" list shows them beside the counts the preview predicted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import F

from gateway.models import GrantOutcome

logger = logging.getLogger("gateway.grants")

DELAY = 1.0


@dataclass
class Tally:
    rechecked: int = 0
    revoked_sockets: int = 0
    revoked_channels: int = 0


class Outcomes:
    """Per process: counts not yet written, by grant version."""

    def __init__(self, delay: float = DELAY) -> None:
        self.delay = delay
        self.pending: dict[int, Tally] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def report(self, version: int, process: str, revoked_channels: int) -> None:
        """One socket re-checked its subscriptions for ``version``; it dropped this many."""
        tally = self.pending.get(version)
        if tally is None:
            tally = self.pending[version] = Tally()
            task = asyncio.get_running_loop().create_task(self._flush_later(version, process))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        tally.rechecked += 1
        tally.revoked_sockets += 1 if revoked_channels else 0
        tally.revoked_channels += revoked_channels

    async def _flush_later(self, version: int, process: str) -> None:
        await asyncio.sleep(self.delay)
        tally = self.pending.pop(version)
        try:
            await database_sync_to_async(write)(version, process, tally)
        except Exception:  # the sockets did revoke; only the record is missing
            logger.exception("could not record the outcome of grant version %s", version)

    async def flush(self) -> None:
        """Wait for every pending write (tests, shutdown)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks))


def write(version: int, process: str, tally: Tally) -> None:
    try:
        with transaction.atomic():
            updated = GrantOutcome.objects.filter(version=version, process=process).update(
                rechecked=F("rechecked") + tally.rechecked,
                revoked_sockets=F("revoked_sockets") + tally.revoked_sockets,
                revoked_channels=F("revoked_channels") + tally.revoked_channels)
            if not updated:
                GrantOutcome.objects.create(version=version, process=process,
                                            rechecked=tally.rechecked,
                                            revoked_sockets=tally.revoked_sockets,
                                            revoked_channels=tally.revoked_channels)
    except IntegrityError:  # two writers for one process cannot happen; be safe anyway
        logger.warning("outcome of grant version %s on %s written twice", version, process)


outcomes = Outcomes()
