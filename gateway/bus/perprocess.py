"""One instance per process of state kept in Redis when configured, else in memory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings

T = TypeVar("T")


class PerProcess(Generic[T]):
    """This process's instance: the Redis one when a Redis URL is configured, the in-memory
    one otherwise, chosen on first use; tests may install their own (``use``)."""

    def __init__(self, redis_kind: Callable[[str, float], T], memory_kind: Callable[[], T]) -> None:
        self.redis_kind, self.memory_kind = redis_kind, memory_kind
        self.instance: T | None = None

    def __call__(self) -> T:
        if self.instance is None:
            config = settings.GATEWAY
            self.instance = (self.redis_kind(config.redis_url, config.limits.ledger_ttl)
                             if config.redis_url else self.memory_kind())
        return self.instance

    def use(self, replacement: T | None) -> None:
        """Tests: install an instance (None: choose again from the settings on next use)."""
        self.instance = replacement
