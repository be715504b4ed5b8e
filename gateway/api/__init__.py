"""The gateway's public API: everything a host project (and the service's own wiring) uses.

    from gateway.api import GatewayMiddlewareStack, GatewayConsumerMixin, policy, may

Three modules, and nothing else under ``gateway``, are public (docs/library.md, "Reference"):

- ``gateway.api``: a host project's integration: settings, the middleware stack, route
  policy, the consumer mixin, grants, close codes;
- ``gateway.api.server``: serving it: the ASGI pieces around the websocket app (lifespan,
  drain, body limit, the routes-file handshake), the health and metrics views, the hooks a
  server's protocol calls, parsers for a launcher's own variables;
- ``gateway.api.consumers``: consumers on the switchboard, the service's fast path, instead
  of the mixin: groups, frame writing, expiry, audit, metrics, the socket and presence
  ledger, the roster, the grants cache.

Settings may import the configuration names (``load_config``, ``ConfigError``, ...) before
Django is set up; the ASGI and consumer names load on first use, after ``django.setup()``
(in ``asgi.py`` after ``get_asgi_application()``, as with Channels' own middleware). The
service (``config/``, ``consumers/``) imports nothing else: an import-linter contract holds it.
Anything else under ``gateway`` may change without notice. docs/library.md is the guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.api._lazy import load
from gateway.conf import ConfigError, GatewayConfig, configured, from_mapping, load_config
from gateway.sockets.closecodes import CLOSE_CODE_EXPLANATIONS, CloseCode, close_for, reason_text
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
    return load(__name__, _AFTER_SETUP, name)


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
    "reason_text",
    "release_request",
    "user_of",
]
