"""Grant rows -> change log, version, broadcast and the per-process cache (real test DB)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.http import HttpRequest
from django.test import RequestFactory

from gateway.admin import ChannelAdmin
from gateway.grants.store import GRANTS_GROUP, GrantCache, cache, read_version
from gateway.models import Channel, Grant, GrantChange
from oidc.grants import GrantSnapshot, Operation

pytestmark = pytest.mark.django_db(transaction=True)

ISS = "https://idp.example.com"


def _admin_request(username: str = "root") -> HttpRequest:
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"is_staff": True, "is_superuser": True})
    request = RequestFactory().post("/admin/gateway/grant/")
    request.user = user
    return request


def test_admin_changes_record_who_before_and_after() -> None:
    grant_admin = admin.site._registry[Grant]
    request = _admin_request()
    grant = Grant(issuer=ISS, claim="groups", value="engineering", target="Deploys")
    grant_admin.save_model(request, grant, None, False)
    grant.publish = True
    grant_admin.save_model(request, grant, None, True)
    grant_admin.delete_model(request, Grant.objects.get(pk=grant.pk))

    create, update, delete = GrantChange.objects.order_by("id")
    assert [c.action for c in (create, update, delete)] == ["create", "update", "delete"]
    assert {c.username for c in (create, update, delete)} == {"root"}
    assert create.user == request.user and create.before is None
    assert create.after is not None and update.before is not None and update.after is not None
    assert delete.before is not None
    assert create.after["target"] == "deploys" and create.after["publish"] is False
    assert update.before["publish"] is False and update.after["publish"] is True
    assert delete.before["publish"] is True and delete.after is None
    assert create.version < update.version < delete.version


def test_changes_through_the_model_are_recorded_without_a_user() -> None:
    Grant.objects.create(issuer=ISS, value="ops", target="alerts.*")
    change = GrantChange.objects.get()
    assert (change.user, change.username, change.action) == (None, "", "create")


def test_admin_bulk_delete_records_each_grant() -> None:
    for value in ("a", "b"):
        Grant.objects.create(issuer=ISS, value=value, target="deploys")
    admin.site._registry[Grant].delete_queryset(_admin_request(), Grant.objects.all())
    deletes = GrantChange.objects.filter(action="delete")
    assert deletes.count() == 2 and {d.username for d in deletes} == {"root"}


def test_names_are_normalised_so_case_variants_collide() -> None:
    Grant.objects.create(issuer=ISS, value="x", target="Alerts.*")
    with pytest.raises(IntegrityError):
        Grant.objects.create(issuer=ISS, value="x", target="alerts.*")


def test_channel_names_are_normalised_and_listed_with_their_grants() -> None:
    channel = Channel.objects.create(name="Alerts.Critical", description="pager")
    assert channel.name == "alerts.critical"
    Grant.objects.create(issuer=ISS, value="admins", target="alerts.*", presence=True)
    Grant.objects.create(issuer=ISS, value="eng", target="deploys")
    channel_admin = admin.site._registry[Channel]
    assert isinstance(channel_admin, ChannelAdmin)
    html = channel_admin.who_can_do_what(channel)
    assert "admins" in html and "presence, subscribe" in html and "eng<" not in html


async def test_cache_reloads_only_when_the_version_moves() -> None:
    loads: list[int] = []
    from gateway.grants.store import load_snapshot

    async def counting_load(version: int) -> GrantSnapshot:
        loads.append(version)
        return await load_snapshot(version)

    local = GrantCache(max_age=0, load=counting_load)
    first = await local.current()
    assert await local.current() is first and len(loads) == 1
    await Grant.objects.acreate(issuer=ISS, value="eng", target="deploys", publish=True)
    fresh = await local.at_least(await read_version())
    assert len(loads) == 2 and fresh.version > first.version
    (grant,) = fresh.grants
    assert grant.operations == {Operation.SUBSCRIBE, Operation.PUBLISH}


async def test_grant_change_is_broadcast_to_the_grants_group() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(GRANTS_GROUP, channel)
    await Grant.objects.acreate(issuer=ISS, value="eng", target="deploys")
    event = await layer.receive(channel)
    assert event == {"type": "grants.changed", "group": GRANTS_GROUP, "version": await read_version()}
    await layer.group_discard(GRANTS_GROUP, channel)
    cache.clear()


async def test_invalid_rows_are_skipped_not_fatal() -> None:
    await Grant.objects.acreate(issuer=ISS, value="eng", target="deploys")
    await sync_to_async(Grant.objects.filter(value="eng").update)(target="bad..name")
    cache.clear()
    assert (await cache.current()).grants == ()
    cache.clear()
