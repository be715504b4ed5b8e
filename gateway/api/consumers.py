"""Consumers on the switchboard, the service's fast path, instead of ``GatewayConsumerMixin``.

    from gateway.api.consumers import switchboard, Lifetime, audit, ledger

One layer channel per process reads every local socket's group events
(``switchboard().join(group, member)``); frames go out without a task when the server offers
the ``gateway.write_now`` extension. The standalone service's ``consumers/`` is built on
these; a host project with many sockets may build on them too. Every name loads from its
home module on first use (``gateway.api._lazy``). docs/library.md, "Reference", describes each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.api._lazy import load

if TYPE_CHECKING:
    from gateway.grants.outcome import outcomes
    from gateway.grants.store import GRANTS_GROUP, cache
    from gateway.handshake.authn import authenticate, principal_for_token
    from gateway.handshake.credentials import Credential, selected_subprotocol
    from gateway.handshake.first_message import parse_auth_frame
    from gateway.login.refresh import shared_refresh
    from gateway.observe.audit import audit
    from gateway.observe.metrics import OPEN_CONNECTIONS
    from gateway.observe.outage import REDIS
    from gateway.ops.closegate import closes
    from gateway.ops.ledger import ledger
    from gateway.ops.roster import SocketEntry, matcher_view, roster, this_process
    from gateway.sockets.addressing import session_group, sid_group, subject_group
    from gateway.sockets.envelope import granted, lone_surrogate, message_event
    from gateway.sockets.lifetime import Lifetime
    from gateway.sockets.switchboard import CHANNEL_CAPACITY, CHANNEL_PREFIX, switchboard
    from gateway.sockets.writenow import WriteNow, write_now_of

_HOMES = {
    # the process's one layer channel, and the layer settings it needs
    "switchboard": "gateway.sockets.switchboard",
    "CHANNEL_PREFIX": "gateway.sockets.switchboard",
    "CHANNEL_CAPACITY": "gateway.sockets.switchboard",
    # the groups a logout, an admin disconnect or a grant change is sent to
    "session_group": "gateway.sockets.addressing",
    "sid_group": "gateway.sockets.addressing",
    "subject_group": "gateway.sockets.addressing",
    "GRANTS_GROUP": "gateway.grants.store",
    # writing frames and closing
    "WriteNow": "gateway.sockets.writenow",
    "write_now_of": "gateway.sockets.writenow",
    "closes": "gateway.ops.closegate",  # spreads many sockets' cleanups over loop turns
    # credentials and expiry
    "Credential": "gateway.handshake.credentials",
    "selected_subprotocol": "gateway.handshake.credentials",
    "parse_auth_frame": "gateway.handshake.first_message",
    "authenticate": "gateway.handshake.authn",
    "principal_for_token": "gateway.handshake.authn",
    "shared_refresh": "gateway.login.refresh",
    "Lifetime": "gateway.sockets.lifetime",
    # audit and metrics
    "audit": "gateway.observe.audit",
    "OPEN_CONNECTIONS": "gateway.observe.metrics",
    "REDIS": "gateway.observe.outage",
    # sockets per subject and presence, across processes; the live connections view
    "ledger": "gateway.ops.ledger",
    "roster": "gateway.ops.roster",
    "SocketEntry": "gateway.ops.roster",
    "matcher_view": "gateway.ops.roster",
    "this_process": "gateway.ops.roster",
    # grants as they are now, and the pub/sub envelope
    "cache": "gateway.grants.store",
    "outcomes": "gateway.grants.outcome",
    "granted": "gateway.sockets.envelope",
    "message_event": "gateway.sockets.envelope",
    "lone_surrogate": "gateway.sockets.envelope",
}


def __getattr__(name: str) -> Any:
    return load(__name__, _HOMES, name)


__all__ = [
    "CHANNEL_CAPACITY",
    "CHANNEL_PREFIX",
    "GRANTS_GROUP",
    "OPEN_CONNECTIONS",
    "REDIS",
    "Credential",
    "Lifetime",
    "SocketEntry",
    "WriteNow",
    "audit",
    "authenticate",
    "cache",
    "closes",
    "granted",
    "ledger",
    "lone_surrogate",
    "matcher_view",
    "message_event",
    "outcomes",
    "parse_auth_frame",
    "principal_for_token",
    "roster",
    "selected_subprotocol",
    "session_group",
    "shared_refresh",
    "sid_group",
    "subject_group",
    "switchboard",
    "this_process",
    "write_now_of",
]
