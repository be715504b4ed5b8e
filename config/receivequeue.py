"""A lighter receive queue for uvicorn's websocket protocol (``config.hardening``).

uvicorn gives every websocket an ``asyncio.Queue`` for the messages its app receives:
three deques and an ``Event`` with a fourth, about 2.6 KiB per socket even when empty,
for the whole life of the socket. This queue keeps a deque only while messages wait and
a list only while a receiver waits: a few dozen bytes on an idle socket. It offers what
uvicorn calls: ``put_nowait``, ``get`` and ``empty``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class ReceiveQueue:
    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        self._wake_one()

    async def get(self) -> Any:
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
