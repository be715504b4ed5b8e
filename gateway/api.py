"""The gateway's public API: everything a host project (and the service's own wiring) uses.

    from gateway.api import GatewayMiddlewareStack, GatewayConsumerMixin, policy, may

Anything else under ``gateway`` may change without notice. docs/library.md is the guide.
"""

from __future__ import annotations

from gateway.conf import ConfigError, GatewayConfig, configured, from_mapping, load_config
from gateway.consumer import GatewayConsumerMixin, RouteDenied, SubjectChanged, address_groups
from gateway.grants.may import may
from gateway.sockets.closecodes import CLOSE_CODE_EXPLANATIONS, CloseCode, close_for
from gateway.sockets.portable import portable_code
from gateway.stack import GatewayMiddleware, GatewayMiddlewareStack, policy, user_of
from oidc.types import CredentialKind, Principal

__all__ = [
    "CLOSE_CODE_EXPLANATIONS",
    "CloseCode",
    "ConfigError",
    "CredentialKind",
    "GatewayConfig",
    "GatewayConsumerMixin",
    "GatewayMiddleware",
    "GatewayMiddlewareStack",
    "Principal",
    "RouteDenied",
    "SubjectChanged",
    "address_groups",
    "close_for",
    "configured",
    "from_mapping",
    "load_config",
    "may",
    "policy",
    "portable_code",
    "user_of",
]
