"""A first-in first-out queue that costs almost nothing while idle.

Every socket holds a queue for its whole life: uvicorn's receive queue, and the in-memory
layer's inbox of its channel. An ``asyncio.Queue`` (three deques and an ``Event`` with a
fourth) takes about 2.6 KiB even when empty. This one keeps a deque only while items
wait and a list only while receivers wait: a few dozen bytes on an idle socket. It
offers what uvicorn calls (``put_nowait``, ``get``, ``empty``) and ``qsize``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class LazyQueue(Generic[T]):
    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    async def get(self) -> T:
        """The oldest item, waiting for one (FIFO among waiting receivers)."""
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            except BaseException:
                self._drop(waiter)
                if self._items and not waiter.cancelled():
                    self._wake_one()  # woken for an item it will not take
                raise
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    def _wake_one(self) -> None:
        getters = self._getters
        while getters:
            waiter = getters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                break
        if not getters:
            self._getters = None

    def _drop(self, waiter: asyncio.Future[None]) -> None:
        if self._getters is not None and waiter in self._getters:
            self._getters.remove(waiter)
            if not self._getters:
                self._getters = None
