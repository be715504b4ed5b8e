"""At each login (and session refresh): the admin level the identity provider gives, and a
readable username.

Admin level (``oidc.admin_roles``): members of ``GATEWAY_ADMIN_GROUPS`` become superuser
and staff; members of ``GATEWAY_STAFF_GROUPS`` become staff in the ``gateway-staff``
group (its permissions: ``gateway/migrations/0006_staff_group.py``). A user whose groups
and roles no longer match loses both flags and the group at the next login, or the next
refresh of the session's tokens (``gateway.login.refresh``). With neither
variable set the flags are left alone (an administrator may set them by hand).

Username: ``preferred_username``, else the email address, else the opaque
``oidc-<digest>``. The user stays bound to (issuer, subject) through ``OidcIdentity``;
the username is only what people read. When another user already has the name, the
identity's own digest is appended (``alice-3f2a9c``): the same identity always gets the
same name, whoever logged in first.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from oidc.admin_roles import AdminLevel, admin_level

logger = logging.getLogger("gateway.login")

STAFF_GROUP = "gateway-staff"
# What gateway-staff may do: codenames of gateway's permissions. The group is created with
# these by migration 0006, or here at the first staff login if it is missing; an
# administrator may change it afterwards, and logins never reset it.
STAFF_PERMISSIONS = (
    "view_channel", "add_channel", "change_channel", "delete_channel",
    "view_grant", "add_grant", "change_grant", "delete_grant",
    "view_grantchange",
    "view_live_sockets", "disconnect_sockets", "check_access",
)
MAX_USERNAME = 150  # django.contrib.auth's User.username


def identity_digest(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:24]


def opaque_username(issuer: str, subject: str) -> str:
    return f"oidc-{identity_digest(issuer, subject)}"


def _valid(name: str) -> bool:
    try:
        UnicodeUsernameValidator()(name)
    except ValidationError:
        return False
    return 0 < len(name) <= MAX_USERNAME - 7  # room for "-" and six digest characters


def readable_name(claims: Mapping[str, Any]) -> str | None:
    """``preferred_username`` or email, if it is a valid Django username."""
    for claim in ("preferred_username", "email"):
        value = claims.get(claim)
        if isinstance(value, str) and _valid(value.strip()):
            return value.strip()
    return None


def username_for(claims: Mapping[str, Any], user_id: Any = None) -> str:
    """The readable username for these claims, unique among users other than ``user_id``."""
    issuer, subject = str(claims["iss"]), str(claims["sub"])
    wanted = readable_name(claims)
    if wanted is None:
        return opaque_username(issuer, subject)
    taken = get_user_model().objects.exclude(pk=user_id)
    for candidate in (wanted, f"{wanted}-{identity_digest(issuer, subject)[:6]}"):
        if not taken.filter(username=candidate).exists():
            return candidate
    return opaque_username(issuer, subject)


def apply_admin_level(user: Any, groups: Iterable[str], roles: Iterable[str]) -> AdminLevel | None:
    """Set staff, superuser and the gateway-staff group from groups and roles.

    Returns the level applied, or None when the mapping is off (nothing configured).
    """
    mapping = settings.GATEWAY.admin
    if not mapping.enabled:
        return None
    level = admin_level(groups, roles, admin=mapping.admin_groups, staff=mapping.staff_groups)
    user.is_staff = level >= AdminLevel.STAFF
    user.is_superuser = level is AdminLevel.SUPERUSER
    user.save(update_fields=["is_staff", "is_superuser"])
    staff_group = _staff_group()
    if user.is_staff:
        user.groups.add(staff_group)
    else:
        user.groups.remove(staff_group)
    return level


def _staff_group() -> Group:
    group, created = Group.objects.get_or_create(name=STAFF_GROUP)
    if created:
        group.permissions.set(Permission.objects.filter(content_type__app_label="gateway",
                                                        codename__in=STAFF_PERMISSIONS))
    return group
