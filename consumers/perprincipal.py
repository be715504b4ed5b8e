"""What the consumers derive from a principal alone, computed once per principal object.

A principal is immutable, and one object serves every socket of the same token (the
verified-token cache) or session (the session cache). So its welcome frame and its roster
view are built once, while it lives, not once per handshake: sockets share the result.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from oidc.types import Principal

T = TypeVar("T")


class PerPrincipal(Generic[T]):
    """``derive(principal)``, remembered while that principal object lives.

    Keyed by identity: a dead principal's entry is dropped by its weak reference, before
    its ``id`` can be reused. ``derive`` must not keep the principal (no cycle to free).
    """

    def __init__(self, derive: Callable[[Principal], T]) -> None:
        self.derive = derive
        self.values: dict[int, tuple[weakref.ref[Principal], T]] = {}

    def __call__(self, principal: Principal) -> T:
        key = id(principal)
        known = self.values.get(key)
        if known is not None and known[0]() is principal:
            return known[1]
        value = self.derive(principal)
        self.values[key] = (weakref.ref(principal, self._forget(key)), value)
        return value

    def _forget(self, key: int) -> Callable[[weakref.ref[Principal]], None]:
        def forget(ref: weakref.ref[Principal]) -> None:
            known = self.values.get(key)
            if known is not None and known[0] is ref:
                del self.values[key]
        return forget
