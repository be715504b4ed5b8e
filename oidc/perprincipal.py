"""What is derived from a principal alone, computed once per principal object.

A principal is immutable, and one object serves every socket of the same token (the
verified-token cache) or session (the session cache). So what sockets derive from it
(its welcome frame, its roster view, itself as presented by another credential kind) is
built once, while it lives, not once per handshake: sockets share the result.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")  # the principal's type: anything immutable that takes a weak reference
T = TypeVar("T")


class PerPrincipal(Generic[K, T]):
    """``derive(principal)``, remembered while that principal object lives.

    Keyed by identity: a dead principal's entry is dropped by its weak reference, before
    its ``id`` can be reused. ``derive`` must not keep the principal (no cycle to free).
    """

    def __init__(self, derive: Callable[[K], T]) -> None:
        self.derive = derive
        self.values: dict[int, tuple[weakref.ref[K], T]] = {}

    def __call__(self, principal: K) -> T:
        key = id(principal)
        known = self.values.get(key)
        if known is not None and known[0]() is principal:
            return known[1]
        value = self.derive(principal)
        self.values[key] = (weakref.ref(principal, self._forget(key)), value)
        return value

    def _forget(self, key: int) -> Callable[[weakref.ref[K]], None]:
        def forget(ref: weakref.ref[K]) -> None:
            known = self.values.get(key)
            if known is not None and known[0] is ref:
                del self.values[key]
        return forget
