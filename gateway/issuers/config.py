"""Which issuers are trusted: the login issuer from the environment, plus an optional TOML file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from oidc.config import IssuerConfig
from oidc.profiles import PROFILES, customised

ISSUER_KEYS = {"issuer", "audiences", "algorithms", "profile", "client_id",
               "allowed_client_ids", "leeway", "group_overage", "groups_claims", "roles_claims",
               "scope_claims", "internal_url"}


def _issuer_from_toml(entry: dict[str, Any], source: Path) -> IssuerConfig:
    if "end_session_method" in entry:
        raise ImproperlyConfigured(
            f"{source}: end_session_method in [[issuer]] {entry.get('issuer')!r}: issuers of this "
            "file only sign bearer tokens, browsers sign in (and out) at GATEWAY_OIDC_ISSUER; "
            "set GATEWAY_OIDC_END_SESSION_METHOD instead.")
    unknown = set(entry) - ISSUER_KEYS
    if unknown:
        raise ImproperlyConfigured(f"{source}: unknown keys {sorted(unknown)} in [[issuer]]; "
                                   f"allowed: {sorted(ISSUER_KEYS)}.")
    try:
        profile = customised(PROFILES[entry.get("profile", "generic")],
                             groups=tuple(entry.get("groups_claims", ())),
                             roles=tuple(entry.get("roles_claims", ())),
                             scopes=tuple(entry.get("scope_claims", ())))
        allowed = entry.get("allowed_client_ids")
        return IssuerConfig(
            issuer=entry["issuer"],
            audiences=frozenset(entry["audiences"]),
            algorithms=tuple(entry.get("algorithms", settings.GATEWAY.algorithms)),
            profile=profile,
            client_id=entry.get("client_id"),
            allowed_client_ids=frozenset(allowed) if allowed is not None else None,
            leeway=float(entry.get("leeway", settings.GATEWAY.leeway)),
            group_overage=entry.get("group_overage", settings.GATEWAY.group_overage),
            internal_url=entry.get("internal_url"),
        )
    except KeyError as exc:
        raise ImproperlyConfigured(f"{source}: [[issuer]] needs {exc.args[0]!r} "
                                   f"(one of {sorted(PROFILES)} for profile).") from exc
    except ValueError as exc:
        raise ImproperlyConfigured(f"{source}: {exc}") from exc


def login_issuer_config() -> IssuerConfig:
    cfg = settings.GATEWAY
    return IssuerConfig(
        issuer=cfg.issuer,
        audiences=cfg.audiences,
        algorithms=cfg.algorithms,
        profile=cfg.profile,
        client_id=cfg.client_id,
        allowed_client_ids=None,
        leeway=cfg.leeway,
        group_overage=cfg.group_overage,
        internal_url=cfg.internal_url,
        end_session_method=cfg.end_session_method,
    )


def configured_issuers() -> dict[str, IssuerConfig]:
    login = login_issuer_config()
    issuers = {login.issuer: login}
    path = settings.GATEWAY.issuers_file
    if path is not None:
        document = tomllib.loads(path.read_text())
        for entry in document.get("issuer", []):
            config = _issuer_from_toml(entry, path)
            if config.issuer in issuers:
                raise ImproperlyConfigured(f"{path}: issuer {config.issuer} is listed twice.")
            issuers[config.issuer] = config
    return issuers
