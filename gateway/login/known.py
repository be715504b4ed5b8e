"""Who has signed in lately, and with which claims: the ``KnownClaims`` row of each identity.

Every browser login and every server-side session refresh stores its claims snapshot (the
one a session socket's principal is built from, ``gateway.login.sessions``), so the admin's
preview of a grant change can say what people who are not connected will get at their next
connect. Rows are bounded (see the model); an identity never seen has no row, and a snapshot
is as old as its last login or refresh.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

from gateway.login.sessions import AUTH_KEY, principal_from_session
from gateway.models import KnownClaims
from oidc.types import Principal


def bounded(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot, or, past the size bound, only what groups and roles grants need."""
    if len(json.dumps(snapshot)) <= KnownClaims.MAX_SNAPSHOT_BYTES:
        return snapshot
    kept: dict[str, Any] = {k: snapshot[k] for k in ("issuer", "subject", "client_id") if k in snapshot}
    for key in ("groups", "roles"):
        values: list[str] = []
        for value in snapshot.get(key, ()):
            if len(json.dumps([*values, value])) > KnownClaims.MAX_SNAPSHOT_BYTES // 2:
                break
            values.append(value)
        kept[key] = values
    kept["truncated"] = True
    return kept


@receiver(user_logged_in, dispatch_uid="known.remember_claims")
def remember_claims(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    auth = request.session.get(AUTH_KEY) if request is not None else None
    if isinstance(auth, dict) and isinstance(auth.get("claims"), dict):
        remember(user, auth["claims"])


def remember(user: Any, claims: dict[str, Any]) -> None:
    """Keep a session's claims snapshot as ``user``'s last seen claims: at a browser login,
    and at each server-side refresh (``gateway.login.refresh``), whose new groups and roles
    are what that user's sockets hold from then on."""
    stored = bounded(claims)
    principal = principal_of_known(stored)
    if principal is None:
        return
    now = timezone.now()
    KnownClaims.objects.update_or_create(
        issuer=principal.issuer, subject=principal.subject,
        defaults={"user": user, "username": user.get_username(), "snapshot": stored,
                  "groups": lines(principal.groups), "roles": lines(principal.roles),
                  "seen_at": now})
    KnownClaims.objects.filter(seen_at__lt=now - timedelta(days=KnownClaims.KEEP_DAYS)).delete()


READ_SNAPSHOT = "\r"
"""``KnownClaims.groups`` or ``.roles`` when a value holds a line break: read the snapshot."""


def lines(values: Iterable[str]) -> str:
    """Values one a line, for ``KnownClaims.groups`` and ``.roles``."""
    if any("\n" in v or "\r" in v for v in values):
        return READ_SNAPSHOT
    return "\n".join(sorted(values))


def matched_as(snapshot: Mapping[str, Any]) -> tuple[str, str, frozenset[str], frozenset[str],
                                                   Mapping[str, Any]] | None:
    """Issuer, subject, groups, roles and claims of ``principal_of_known(snapshot)`` (what the
    grant matcher reads of it), without building the principal: a preview reads 50,000 of
    them. ``tests/channels/test_grant_preview.py`` checks that both agree."""
    try:
        return (snapshot["issuer"], snapshot["subject"], frozenset(snapshot.get("groups", ())),
                frozenset(snapshot.get("roles", ())), snapshot)
    except (KeyError, TypeError, ValueError):
        return None


def principal_of_known(snapshot: dict[str, Any]) -> Principal | None:
    """The principal a session socket of this login would hold (expiry aside)."""
    return principal_from_session({"claims": snapshot, "expires_at": 0})
