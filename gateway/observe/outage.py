"""Dependency outages in the log: one line when a dependency is lost, one when it is back.

Several loops of a process depend on Redis (the bus watchdog, the pub/sub layer's
subscriber, the session-revocation listener, the heartbeats, the switchboard) and retry
while it is down. Each reports to the dependency's :class:`Dependency` instead of logging:

- the first failure of any of them while the dependency was fine logs one warning line
  (which component, what error, what that means for clients);
- every failed attempt is counted in ``gateway_dependency_retries_total{dependency,
  component}``, and ``gateway_dependency_down{dependency}`` is 1 meanwhile; nothing more
  is logged;
- the retry delays grow (``backoff``), so a long outage costs little;
- when the last failing component has succeeded again, one line says it is back, after
  how long and how many failed attempts;
- one-off operations (a closing socket leaving its groups) that fail are counted too
  (:meth:`Dependency.noted`), and not logged;
- an error that is not one a lost dependency causes (``UNDERSTOOD``) is a bug or something
  unforeseen: it is logged with its traceback, once per component and type of error in
  an outage, and counted like the others.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field

from redis import exceptions as redis_errors

from gateway.observe.metrics import DEPENDENCY_DOWN, DEPENDENCY_RETRIES

logger = logging.getLogger("gateway.outage")

UNDERSTOOD: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # refused, reset, closed by the server, still loading
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica answers during a failover
    OSError,  # ConnectionRefusedError and the rest of the socket errors
    TimeoutError,
)

FIRST_DELAY = 0.25
MAX_DELAY = 2.0  # seconds; the bus must be found back quickly (handshakes wait for it)


def backoff(attempt: int, first: float = FIRST_DELAY, most: float = MAX_DELAY) -> float:
    """Delay before retry ``attempt`` (1, 2, ...): doubling from ``first`` up to ``most``,
    with up to 20 % jitter so processes do not retry in step."""
    delay = min(most, first * 2.0 ** min(attempt - 1, 30))
    return delay * random.uniform(0.8, 1.0)  # noqa: S311  # jitter, not a secret


def describe(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:200]


@dataclass
class Dependency:
    """One dependency of this process, and which of its components find it failing."""

    name: str
    effect: str  # what clients see while it is lost
    failing: dict[str, int] = field(default_factory=dict)  # component -> failed attempts
    since: float | None = None
    attempts: int = 0
    _tracebacks: set[tuple[str, type[BaseException]]] = field(default_factory=set)

    @property
    def lost(self) -> bool:
        return self.since is not None

    def failed(self, component: str, error: BaseException | str) -> float:
        """Note a failed attempt by ``component``; returns how long it should wait before
        its next one."""
        self.failing[component] = attempts = self.failing.get(component, 0) + 1
        self.attempts += 1
        DEPENDENCY_RETRIES.labels(self.name, component).inc()
        if isinstance(error, BaseException) and not isinstance(error, UNDERSTOOD):
            if (component, type(error)) not in self._tracebacks:  # a bug, or unforeseen
                self._tracebacks.add((component, type(error)))
                logger.error("%s: unexpected error; retrying with backoff", component,
                             exc_info=error)
            return backoff(attempts)
        if self.since is None:
            self.since = time.monotonic()
            DEPENDENCY_DOWN.labels(self.name).set(1)
            logger.warning("%s lost: %s: %s. %s. Retrying with backoff; failed attempts are "
                           "counted in gateway_dependency_retries_total, not logged",
                           self.name, component, describe(error), self.effect)
        return backoff(attempts)

    def noted(self, component: str, error: BaseException) -> None:
        """A one-off operation of ``component`` failed (a socket leaving its groups as the
        bus goes): counted; not logged when the dependency's loss explains it, since the
        loops that retry say it is lost and back."""
        DEPENDENCY_RETRIES.labels(self.name, component).inc()
        if not isinstance(error, UNDERSTOOD) and (component, type(error)) not in self._tracebacks:
            self._tracebacks.add((component, type(error)))
            logger.error("%s: unexpected error", component, exc_info=error)

    def recovered(self, component: str) -> None:
        """``component`` succeeded; the dependency is back once no component fails."""
        if self.failing.pop(component, None) is None or self.failing:
            return
        self._tracebacks.clear()
        if self.since is None:  # only unexpected errors: nothing was said to be lost
            return
        logger.warning("%s is back after %.1f s (%d failed attempts)", self.name,
                       time.monotonic() - self.since, self.attempts)
        DEPENDENCY_DOWN.labels(self.name).set(0)
        self.since, self.attempts = None, 0


REDIS = Dependency("redis", "Open sockets close with 1011 bus_lost and handshakes are refused "
                            "with 1013 bus_unavailable until it is back")
