"""Which identity-provider groups or roles make a user Django staff or superuser.

Configured entries (``GATEWAY_ADMIN_GROUPS``, ``GATEWAY_STAFF_GROUPS``) are compared with
every group and role the issuer profile extracted, case-sensitively:

* an entry without a leading ``/`` (``admins``) matches the value ``admins`` and the
  top-level Keycloak group path ``/admins``;
* an entry with a leading ``/`` (``/org/admins``) is a full Keycloak group path and
  matches exactly that path (and the bare ``org/admins``), never a subgroup or a parent.

So ``admins`` never matches ``/org/admins``: nested groups are named in full.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class AdminLevel(IntEnum):
    NONE = 0
    STAFF = 1  # may use the admin with the gateway-staff permissions
    SUPERUSER = 2  # staff, with every permission


def _canonical(value: str) -> str:
    return value[1:] if value.startswith("/") else value


def matching_entries(entries: Iterable[str], held: Iterable[str]) -> frozenset[str]:
    """The configured entries that one of the held groups or roles satisfies."""
    values = {_canonical(v) for v in held}
    return frozenset(e for e in entries if _canonical(e) in values)


def admin_level(groups: Iterable[str], roles: Iterable[str], *,
                admin: Iterable[str], staff: Iterable[str]) -> AdminLevel:
    """The admin level the principal's groups and roles give (NONE unless one matches)."""
    held = {*groups, *roles}
    if matching_entries(admin, held):
        return AdminLevel.SUPERUSER
    if matching_entries(staff, held):
        return AdminLevel.STAFF
    return AdminLevel.NONE
