"""At startup, ``settings.GATEWAY`` becomes the validated config (a host's dict, checked once)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from gateway.conf import configured
from gateway.conf.values import ConfigError


def apply_gateway_setting() -> None:
    try:
        config = configured(getattr(settings, "GATEWAY", None), secret_key=settings.SECRET_KEY,
                            debug=settings.DEBUG)
    except ConfigError as exc:
        raise ImproperlyConfigured(str(exc)) from None
    if config is not settings.GATEWAY:
        settings.GATEWAY = config
