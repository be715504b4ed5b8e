"""Identity-provider groups and roles to Django staff/superuser (oidc.admin_roles, config)."""

from __future__ import annotations

import pytest

from gateway.conf.staffing import AdminMapping, load_admin_mapping
from gateway.conf.values import ConfigError
from oidc.admin_roles import AdminLevel, admin_level, matching_entries


@pytest.mark.parametrize(("entry", "held", "matches"), [
    ("admins", {"admins"}, True),
    ("admins", {"/admins"}, True),  # Keycloak top-level group path
    ("/admins", {"admins"}, True),
    ("/admins", {"/admins"}, True),
    ("admins", {"/org/admins"}, False),  # nested groups are named in full
    ("/org/admins", {"/org/admins"}, True),
    ("/org/admins", {"/org"}, False),
    ("/org", {"/org/admins"}, False),
    ("admins", {"Admins"}, False),  # case-sensitive
    ("admins", {"admins-readonly"}, False),
])
def test_entry_matching(entry: str, held: set[str], matches: bool) -> None:
    assert bool(matching_entries([entry], held)) is matches


def test_admin_beats_staff_and_roles_count_like_groups() -> None:
    admin, staff = {"admins"}, {"ops"}
    assert admin_level({"ops", "admins"}, set(), admin=admin, staff=staff) is AdminLevel.SUPERUSER
    assert admin_level({"ops"}, set(), admin=admin, staff=staff) is AdminLevel.STAFF
    assert admin_level(set(), {"admins"}, admin=admin, staff=staff) is AdminLevel.SUPERUSER
    assert admin_level({"engineering"}, {"developer"}, admin=admin, staff=staff) is AdminLevel.NONE
    assert admin_level({"admins"}, set(), admin=set(), staff=set()) is AdminLevel.NONE


def test_variables_are_read_and_validated() -> None:
    mapping = load_admin_mapping({"GATEWAY_ADMIN_GROUPS": " admins, /org/Platform Admins ,",
                                  "GATEWAY_STAFF_GROUPS": "ops"})
    assert mapping == AdminMapping(frozenset({"admins", "/org/Platform Admins"}),
                                   frozenset({"ops"}))
    assert mapping.enabled and not load_admin_mapping({}).enabled
    for bad in ("admin*", "/", "a,//"):
        with pytest.raises(ConfigError, match="GATEWAY_STAFF_GROUPS has"):
            load_admin_mapping({"GATEWAY_STAFF_GROUPS": bad})
