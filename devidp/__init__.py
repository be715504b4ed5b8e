"""Development OpenID provider (oidc-provider 9.x on Node) for the websocket gateway.

See ``devidp/server.mjs`` for the provider and ``devidp/launcher.py`` for the Python API.
"""

from devidp.launcher import (
    API_AUDIENCE,
    API_SCOPES,
    CLIENTS,
    OPAQUE_AUDIENCE,
    USERS,
    DevIdp,
    DevIdpError,
    check_installed,
    start,
)

__all__ = [
    "API_AUDIENCE",
    "API_SCOPES",
    "CLIENTS",
    "OPAQUE_AUDIENCE",
    "USERS",
    "DevIdp",
    "DevIdpError",
    "check_installed",
    "start",
]
