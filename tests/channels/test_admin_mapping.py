"""Identity-provider groups make users staff or superuser at each login (#12 point 3).

Logins run the real backend hooks (store_tokens, then get_or_create_user) with verified
claims; the provider round trip itself is covered by the end-to-end tier.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import Client, RequestFactory
from django.utils import timezone

from gateway.conf.staffing import AdminMapping
from gateway.issuers.registry import registry
from gateway.login import refresh
from gateway.login.backend import GatewayOIDCBackend
from gateway.login.known import lines
from gateway.login.sessions import AUTH_KEY, session_store_class
from gateway.login.staff import STAFF_GROUP
from gateway.models import KnownClaims, OidcIdentity
from oidc.discovery import ProviderMetadata
from tests.unit.factories import ID_HEADER, encode, id_claims

pytestmark = pytest.mark.django_db(transaction=True)

ISSUER = django_settings.GATEWAY.issuer


@pytest.fixture(autouse=True)
def discovered() -> Iterator[None]:
    """What startup discovery leaves in the registry (the backend reads its endpoints)."""
    registry.metadata[ISSUER] = ProviderMetadata(
        issuer=ISSUER, authorization_endpoint=f"{ISSUER}/auth", token_endpoint=f"{ISSUER}/token",
        jwks_uri=f"{ISSUER}/jwks")
    yield
    registry.metadata.pop(ISSUER, None)


@pytest.fixture(autouse=True)
def mapping(settings: Any) -> None:
    settings.GATEWAY = dataclasses.replace(settings.GATEWAY, admin=AdminMapping(
        admin_groups=frozenset({"admins"}), staff_groups=frozenset({"/ops"})))


def login(sub: str, groups: list[str], roles: list[str] = (), **claims: Any) -> Any:  # type: ignore[assignment]
    """One browser login as the callback view runs it, after the ID token was verified."""
    request = RequestFactory().get("/oidc/callback/")
    SessionMiddleware(lambda r: None).process_request(request)  # type: ignore[arg-type]
    backend = GatewayOIDCBackend()
    backend.request = request
    backend.token_response = {"expires_in": 300, "scope": "openid"}
    id_claims = {"iss": ISSUER, "sub": sub, "aud": "gateway", "exp": time.time() + 300,
                 "groups": groups, "roles": list(roles), **claims}
    backend.id_claims = id_claims
    backend.store_tokens("access-token", "id-token")
    return backend.get_or_create_user("access-token", "id-token", id_claims)


def flags(user: Any) -> tuple[bool, bool, bool]:
    user.refresh_from_db()
    return user.is_staff, user.is_superuser, user.groups.filter(name=STAFF_GROUP).exists()


def test_groups_grant_and_revoke_staff_and_superuser_across_logins() -> None:
    user = login("u-1", ["engineering", "admins"])
    assert flags(user) == (True, True, True)
    assert login("u-1", ["/ops"]).pk == user.pk  # the same user: bound to (issuer, subject)
    assert flags(user) == (True, False, True)
    login("u-1", ["engineering"])
    assert flags(user) == (False, False, False)
    login("u-1", [], roles=["admins"])  # roles count like groups
    assert flags(user) == (True, True, True)
    assert OidcIdentity.objects.filter(user=user).count() == 1


def test_without_configured_groups_logins_leave_the_flags_alone(settings: Any) -> None:
    settings.GATEWAY = dataclasses.replace(settings.GATEWAY, admin=AdminMapping())
    user = login("u-2", ["admins"])
    assert flags(user) == (False, False, False)
    user.is_staff = True
    user.save()
    login("u-2", ["engineering"])
    assert flags(user)[0] is True


def test_usernames_are_readable_and_collisions_get_the_identity_suffix() -> None:
    local = get_user_model().objects.create_user("alice")  # e.g. from createsuperuser
    alice = login("sub-alice", ["engineering"], preferred_username="alice")
    assert alice.username.startswith("alice-") and len(alice.username) == len("alice-") + 6
    assert login("sub-alice", ["engineering"], preferred_username="alice").username == alice.username
    local.delete()
    assert login("sub-alice", ["engineering"], preferred_username="alice").username == "alice"
    bob = login("sub-bob", [], email="bob@example.com")
    assert bob.username == "bob@example.com"
    odd = login("sub-odd", [], preferred_username="has spaces")
    assert odd.username.startswith("oidc-")


def test_admin_refuses_users_outside_the_groups_and_scopes_staff_permissions() -> None:
    outsider, staff, admin = (login("o", ["engineering"]), login("s", ["/ops"]),
                              login("a", ["admins"]))
    client = Client()
    client.force_login(outsider)
    refused = client.get("/admin/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/gateway/grant/").status_code == 200
    assert client.get("/admin/gateway/grant/add/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 403  # no say over users
    client.force_login(admin)
    assert client.get("/admin/auth/user/").status_code == 200


def test_the_migration_creates_gateway_staff_with_the_same_permissions() -> None:
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group

    from gateway.login.staff import STAFF_PERMISSIONS

    migration = importlib.import_module("gateway.migrations.0006_staff_group")
    Group.objects.filter(name=STAFF_GROUP).delete()
    migration.create_staff_group(apps, None)
    group = Group.objects.get(name=STAFF_GROUP)
    assert sorted(group.permissions.values_list("codename", flat=True)) == sorted(STAFF_PERMISSIONS)


async def test_a_session_refresh_applies_the_providers_new_groups_to_staff_and_superuser(
        monkeypatch: pytest.MonkeyPatch) -> None:
    user = await sync_to_async(login)("u-9", ["engineering", "admins"])
    assert await sync_to_async(flags)(user) == (True, True, True)
    store = session_store_class()()
    await store.aset(SESSION_KEY, str(user.pk))
    await store.aset(AUTH_KEY, {
        "expires_at": time.time() - 1, "refresh_token": "rt", "access_token": "at",
        "id_token": "it", "claims": {"issuer": ISSUER, "subject": "u-9", "groups": ["admins"],
                                     "roles": [], "scopes": [], "expires_at": time.time() - 1}})
    await store.asave()
    client_id = registry.issuers[ISSUER].client_id
    id_token = encode(ID_HEADER, id_claims(iss=ISSUER, sub="u-9", aud=client_id, nonce=None,
                                           iat=time.time(), exp=time.time() + 300,
                                           groups=["engineering"]))

    async def provider_answers(refresh_token: str) -> dict[str, Any]:
        return {"access_token": "at-2", "id_token": id_token, "expires_in": 300}

    monkeypatch.setattr(refresh, "_exchange", provider_answers)
    principal = await refresh.refresh_session(store.session_key, not_before=time.time())
    assert principal.groups == frozenset({"engineering"})
    assert await sync_to_async(flags)(user) == (False, False, False), "no longer an admin"


def admin_session(sub: str, groups: list[str]) -> tuple[Client, Any]:
    """A browser logged in as an administrator whose session tokens expired a second ago."""
    user = login(sub, groups)
    client = Client()
    client.force_login(user)
    session = client.session
    session[AUTH_KEY] = {
        "expires_at": time.time() - 1, "refresh_token": "rt", "access_token": "at",
        "id_token": "it", "claims": {"issuer": ISSUER, "subject": sub, "groups": groups,
                                     "roles": [], "scopes": [], "expires_at": time.time() - 1}}
    session.save()
    return client, user


def provider_says(monkeypatch: pytest.MonkeyPatch, sub: str, groups: list[str] | None,
                  calls: list[str]) -> None:
    """The token endpoint answers a refresh with these groups; None: it refuses."""
    client_id = registry.issuers[ISSUER].client_id
    id_token = encode(ID_HEADER, id_claims(iss=ISSUER, sub=sub, aud=client_id, nonce=None,
                                           iat=time.time(), exp=time.time() + 300,
                                           groups=groups or []))

    async def exchange(refresh_token: str) -> dict[str, Any]:
        calls.append(refresh_token)
        if groups is None:
            raise refresh.RefreshFailed("invalid_grant: the user is disabled")
        return {"access_token": "at-2", "id_token": id_token, "refresh_token": "rt-2",
                "expires_in": 300}

    monkeypatch.setattr(refresh, "_exchange", exchange)


def test_an_expired_admin_session_is_refreshed_before_the_admin_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, user = admin_session("u-10", ["admins"])
    calls: list[str] = []
    provider_says(monkeypatch, "u-10", ["admins"], calls)
    assert client.get("/admin/").status_code == 200 and calls == ["rt"]
    assert client.session[AUTH_KEY]["refresh_token"] == "rt-2", "the request kept the new tokens"
    assert client.get("/admin/").status_code == 200 and calls == ["rt"], "fresh now: no refresh"

    provider_says(monkeypatch, "u-10", ["engineering"], calls)  # removed from the admin group
    session = client.session
    session[AUTH_KEY] = {**session[AUTH_KEY], "expires_at": time.time() - 1}
    session.save()
    refused = client.get("/admin/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
    assert flags(user) == (False, False, False) and calls == ["rt", "rt-2"]


def test_an_admin_session_the_provider_refuses_to_refresh_is_logged_out(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="gateway.audit")
    client, _ = admin_session("u-11", ["admins"])
    provider_says(monkeypatch, "u-11", None, [])
    refused = client.get("/admin/gateway/grant/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")
    assert SESSION_KEY not in client.session, "logged out"
    assert any('"refresh_failed"' in r.message and '"deny"' in r.message and '"u-11"' in r.message
               for r in caplog.records if r.name == "gateway.audit")


def test_while_the_provider_is_unreachable_the_admin_keeps_the_session(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = admin_session("u-12", ["admins"])

    async def unreachable(refresh_token: str) -> dict[str, Any]:
        raise refresh.ProviderUnreachable("connect timeout")

    monkeypatch.setattr(refresh, "_exchange", unreachable)
    assert client.get("/admin/").status_code == 200


async def test_a_session_refresh_keeps_the_new_claims_for_the_grant_preview(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh's groups become the user's last seen claims (``KnownClaims``), as a login's
    do, so the preview of a grant change reads what the user's sockets now hold."""
    user = await sync_to_async(login)("u-10", ["engineering"])
    await KnownClaims.objects.filter(subject="u-10").aupdate(seen_at=timezone.now() - timedelta(days=3))
    store = session_store_class()()
    await store.aset(SESSION_KEY, str(user.pk))
    await store.aset(AUTH_KEY, {
        "expires_at": time.time() - 1, "refresh_token": "rt", "access_token": "at",
        "id_token": "it", "claims": {"issuer": ISSUER, "subject": "u-10", "groups": ["engineering"],
                                     "roles": [], "scopes": [], "expires_at": time.time() - 1}})
    await store.asave()
    id_token = encode(ID_HEADER, id_claims(iss=ISSUER, sub="u-10", aud=registry.issuers[ISSUER].client_id,
                                           nonce=None, iat=time.time(), exp=time.time() + 300,
                                           groups=["sre", "oncall"]))

    async def provider_answers(refresh_token: str) -> dict[str, Any]:
        return {"access_token": "at-2", "id_token": id_token, "expires_in": 300}

    monkeypatch.setattr(refresh, "_exchange", provider_answers)
    await refresh.refresh_session(store.session_key, not_before=time.time())
    row = await KnownClaims.objects.aget(issuer=ISSUER, subject="u-10")
    assert row.groups == lines(["oncall", "sre"]) and row.snapshot["groups"] == ["oncall", "sre"]
    assert row.username == user.get_username()
    assert row.seen_at > timezone.now() - timedelta(minutes=1)
