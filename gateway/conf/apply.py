"""At startup, ``settings.GATEWAY`` becomes the validated config (a host's dict, checked once).

A host project also gets mozilla-django-oidc's settings from its ``GATEWAY`` dict, each one
only if the host did not set it: the client id and secret are written once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gateway.conf import configured
from gateway.conf.env import GatewayConfig
from gateway.conf.values import ConfigError


def oidc_defaults(config: GatewayConfig) -> dict[str, Any]:
    """mozilla-django-oidc's settings as the service sets them (config/settings.py)."""
    return {
        "OIDC_RP_CLIENT_ID": config.client_id,
        "OIDC_RP_CLIENT_SECRET": config.client_secret,
        "OIDC_RP_SCOPES": config.scopes,
        "OIDC_RP_SIGN_ALGO": config.algorithms[0],
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_TOKEN_USE_BASIC_AUTH": True,
        "OIDC_TIMEOUT": 10,
        "OIDC_CREATE_USER": True,
    }


def apply_gateway_setting() -> None:
    try:
        config = configured(getattr(settings, "GATEWAY", None), secret_key=settings.SECRET_KEY,
                            debug=settings.DEBUG)
    except ConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    if config is settings.GATEWAY:
        return
    settings.GATEWAY = config
    for name, value in oidc_defaults(config).items():
        if not hasattr(settings, name):
            setattr(settings, name, value)
