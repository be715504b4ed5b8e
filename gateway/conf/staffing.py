"""Environment for the identity-provider to admin mapping (``oidc/admin_roles.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.conf.values import ConfigError

VARIABLES: dict[str, str] = {
    "GATEWAY_ADMIN_GROUPS": "comma-separated identity-provider groups or roles whose members "
    "become superuser and staff at each login and session refresh, and lose it at the next one "
    "without them; "
    "admins matches admins and the Keycloak path /admins, /org/admins only that path "
    "(default: none)",
    "GATEWAY_STAFF_GROUPS": "comma-separated groups or roles whose members become staff with the "
    "gateway-staff permissions (grants, channels, live connections, check access), matched "
    "like GATEWAY_ADMIN_GROUPS (default: none). With neither set, logins leave staff and "
    "superuser flags alone",
}


@dataclass(frozen=True)
class AdminMapping:
    admin_groups: frozenset[str] = frozenset()
    staff_groups: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        """Either list is set: the identity provider decides staff and superuser at login."""
        return bool(self.admin_groups or self.staff_groups)


def _entries(env: Mapping[str, str], name: str) -> frozenset[str]:
    entries = [item.strip() for item in env.get(name, "").split(",") if item.strip()]
    for entry in entries:
        if "*" in entry or entry.strip("/") == "":
            raise ConfigError(f"{name} has {entry!r}: list exact group or role names (admins) "
                              "or Keycloak group paths (/org/admins), without wildcards.")
    return frozenset(entries)


def load_admin_mapping(env: Mapping[str, str]) -> AdminMapping:
    return AdminMapping(admin_groups=_entries(env, "GATEWAY_ADMIN_GROUPS"),
                        staff_groups=_entries(env, "GATEWAY_STAFF_GROUPS"))
