"""Load the declarative route policy file once, at startup."""

from __future__ import annotations

import tomllib
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from oidc.policy import RoutePolicy, parse_policies


def load_route_policies(path: Path | None) -> tuple[RoutePolicy, ...]:
    """The service's route file; a host project (no file) declares its routes in code."""
    if path is None:
        return ()
    try:
        policies = parse_policies(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{path}: {exc}") from exc
    for policy in policies:
        try:
            import_string(policy.consumer)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{path}: route {policy.name!r} names consumer {policy.consumer!r}, "
                "which cannot be imported; give its dotted path."
            ) from exc
    return policies
