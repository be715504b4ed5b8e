"""Configuration, validated once: the service's ``GATEWAY_*`` variables or a host's ``GATEWAY`` dict.

One validator (``gateway.conf.env.load_config``) serves both. A host project writes
``GATEWAY = {"OIDC_ISSUER": ..., "OIDC_CLIENT_ID": ..., ...}`` in its settings: each key is a
variable's name without the ``GATEWAY_`` prefix (docs/library.md). The app's ``ready()`` turns
the dict into the same frozen ``GatewayConfig`` the service builds from its environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.conf.env import VARIABLES, GatewayConfig, load_config
from gateway.conf.values import ConfigError

PREFIX = "GATEWAY_"
_SPACE_SEPARATED = frozenset({"REDIS_SHARDS"})


def _text(key: str, value: Any) -> str:
    """A dict value as the variable's text: lists joined, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return (" " if key in _SPACE_SEPARATED else ",").join(str(v) for v in value)
    if isinstance(value, str | int | float | Path):
        return str(value)
    raise ConfigError(f'GATEWAY["{key}"] is a {type(value).__name__}: use a string, number, '
                      "boolean or list.")


def _dict_names(message: str) -> str:
    """The validator names variables; a host wrote dict keys: name those."""
    return re.sub(r"\bGATEWAY_([A-Z0-9_]+)", r'GATEWAY["\1"]', message)


def from_mapping(values: Mapping[str, Any], *, secret_key: str, debug: bool) -> GatewayConfig:
    """Validate a host's ``GATEWAY`` dict with the service's validator.

    ``SECRET_KEY`` and ``DEV`` default to the host's own ``SECRET_KEY`` and ``DEBUG``.
    """
    unknown = sorted(k for k in values if PREFIX + str(k) not in VARIABLES)
    if unknown:
        known = ", ".join(sorted(v.removeprefix(PREFIX) for v in VARIABLES))
        raise ConfigError(f"GATEWAY has unknown keys {unknown}: use these keys: {known}.")
    env = {PREFIX + "SECRET_KEY": secret_key, PREFIX + "DEV": _text("DEV", debug)}
    env |= {PREFIX + key: _text(key, value) for key, value in values.items()}
    try:
        return load_config(env, service=False)
    except ConfigError as exc:
        raise ConfigError(_dict_names(str(exc))) from None


def configured(value: Any, *, secret_key: str, debug: bool) -> GatewayConfig:
    """``settings.GATEWAY`` as the frozen config: already one (the service), or a host's dict."""
    if isinstance(value, GatewayConfig):
        return value
    if isinstance(value, Mapping):
        return from_mapping(value, secret_key=secret_key, debug=debug)
    raise ConfigError("settings.GATEWAY is missing: add GATEWAY = {\"OIDC_ISSUER\": ..., "
                      "\"OIDC_CLIENT_ID\": ..., \"OIDC_CLIENT_SECRET\": ...} to your settings "
                      "(docs/library.md).")


__all__ = ["ConfigError", "GatewayConfig", "configured", "from_mapping", "load_config"]
