"""The grants API for a host's own channels: may this principal do this operation here?"""

from __future__ import annotations

from gateway.grants.store import cache
from oidc.channels import normalise_channel
from oidc.grants import Operation, allowed_operations
from oidc.types import Principal


async def may(principal: Principal, operation: str, channel: str) -> bool:
    """Whether the grants edited in the admin let ``principal`` perform ``operation``
    (``subscribe``, ``publish`` or ``presence``) on ``channel``. An invalid channel name or
    operation raises ``ValueError`` (``oidc.channels.InvalidChannel`` is one)."""
    snapshot = await cache.current()
    return Operation(operation) in allowed_operations(principal, snapshot.grants,
                                                      normalise_channel(channel))
