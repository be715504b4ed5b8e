"""gateway.login.session_store: the lean async read agrees with Django's own database store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from gateway.login.session_store import SessionStore

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def saved(**data: object) -> str:
    store = DjangoStore()
    store.update(data)
    store.save()
    assert store.session_key is not None
    return store.session_key


async def test_reads_what_django_wrote() -> None:
    key = await saved(_auth_user_id="7", nested={"groups": ["a", "b"]})
    store = SessionStore(key)
    assert await store.aload() == await sync_to_async(DjangoStore(key).load)()
    assert await store.aget("nested") == {"groups": ["a", "b"]}
    assert store.session_key == key


async def test_an_expired_session_reads_as_empty() -> None:
    key = await saved(_auth_user_id="7")
    await Session.objects.filter(session_key=key).aupdate(
        expire_date=timezone.now() - timedelta(seconds=1))
    store = SessionStore(key)
    assert await store.aload() == {}
    assert store.session_key is None  # like Django: a later save starts a new session


@pytest.mark.parametrize("key", ["no-such-session-key-000000000000", "x" * 40])
async def test_an_unknown_key_reads_as_empty(key: str) -> None:
    assert await SessionStore(key).aload() == {}


async def test_tampered_data_reads_as_empty() -> None:
    key = await saved(_auth_user_id="7")
    await Session.objects.filter(session_key=key).aupdate(session_data="forged:payload:sig")
    assert await SessionStore(key).aload() == {}
