"""The gateway's public API: everything a host project (and the service's own wiring) uses.

    from gateway.api import GatewayMiddlewareStack, GatewayConsumerMixin, policy, may

Settings may import the configuration names (``load_config``, ``ConfigError``, ...) before
Django is set up; the ASGI and consumer names load on first use, after ``django.setup()``
(in ``asgi.py`` after ``get_asgi_application()``, as with Channels' own middleware).
Anything else under ``gateway`` may change without notice. docs/library.md is the guide.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gateway.conf import ConfigError, GatewayConfig, configured, from_mapping, load_config
from gateway.sockets.closecodes import CLOSE_CODE_EXPLANATIONS, CloseCode, close_for
from gateway.sockets.portable import portable_code
from oidc.types import CredentialKind, Principal

if TYPE_CHECKING:
    from gateway.consumer import GatewayConsumerMixin, RouteDenied, SubjectChanged, address_groups
    from gateway.grants.may import may
    from gateway.ops.httpapp import http_application, release_request
    from gateway.stack import GatewayMiddleware, GatewayMiddlewareStack, policy, user_of

_AFTER_SETUP = {  # these import the models: only once the app registry is ready
    "GatewayConsumerMixin": "gateway.consumer",
    "RouteDenied": "gateway.consumer",
    "SubjectChanged": "gateway.consumer",
    "address_groups": "gateway.consumer",
    "may": "gateway.grants.may",
    "GatewayMiddleware": "gateway.stack",
    "GatewayMiddlewareStack": "gateway.stack",
    "policy": "gateway.stack",
    "user_of": "gateway.stack",
    "http_application": "gateway.ops.httpapp",  # Django's HTTP handler without a leak
    "release_request": "gateway.ops.httpapp",
}


def __getattr__(name: str) -> Any:
    if name in _AFTER_SETUP:
        return getattr(import_module(_AFTER_SETUP[name]), name)
    raise AttributeError(f"module 'gateway.api' has no attribute {name!r}")


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
    "http_application",
    "load_config",
    "may",
    "policy",
    "portable_code",
    "release_request",
    "user_of",
]
