"""gateway.login.backchannel: the database side of a back-channel logout.

The replay check and the session deletes each take one hop to the database thread and
one transaction (every hop and commit on a loaded machine delays the sockets' close):
what they delete, what they keep, and that a failure part-way deletes nothing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.contrib.sessions.models import Session

from gateway.login import backchannel
from gateway.login.backchannel import DatabaseReplayStore, end_sessions
from gateway.login.sessions import session_store_class
from gateway.models import SeenLogoutToken, SessionBinding
from oidc.logout import LogoutToken

pytestmark = pytest.mark.django_db(transaction=True)

ISSUER = "https://op.example"


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions run in the database thread (every ``sync_to_async``)."""
    seen: list[str] = []
    original = SyncToAsync.__call__

    def counted(self: SyncToAsync[Any, Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(self.func, "__name__", type(self.func).__name__))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return seen


@sync_to_async
def logged_in(subject: str, sid: str) -> str:
    store = session_store_class()()
    store["who"] = subject
    store.save()
    key = str(store.session_key)
    SessionBinding.objects.create(session_key=key, issuer=ISSUER, subject=subject, sid=sid)
    return key


@sync_to_async
def alive(keys: list[str]) -> set[str]:
    return (set(Session.objects.filter(session_key__in=keys).values_list("session_key", flat=True))
            | set(SessionBinding.objects.filter(session_key__in=keys)
                  .values_list("session_key", flat=True)))


def token(sid: str | None = None, subject: str | None = None) -> LogoutToken:
    return LogoutToken(issuer=ISSUER, subject=subject, sid=sid, jti="j", expires_at=time.time() + 60)


async def test_a_sid_ends_its_sessions_only_in_one_hop(hops: list[str]) -> None:
    ended = [await logged_in("alice", "s1"), await logged_in("alice", "s1")]
    kept = [await logged_in("alice", "s2"), await logged_in("bob", "s3")]
    hops.clear()
    assert await end_sessions(token(sid="s1")) == 2
    assert hops == ["_delete_sessions"]
    assert await alive(ended + kept) == set(kept)


async def test_a_subject_without_sid_ends_all_its_sessions() -> None:
    ended = [await logged_in("alice", "s1"), await logged_in("alice", "s2")]
    kept = [await logged_in("bob", "s3")]
    assert await end_sessions(token(subject="alice")) == 2
    assert await alive(ended + kept) == set(kept)


async def test_a_failure_part_way_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [await logged_in("alice", "s1"), await logged_in("alice", "s1")]
    store = session_store_class()
    deleted: list[str] = []

    class FailsSecond(store):  # type: ignore[misc,valid-type]
        def delete(self, session_key: str | None = None) -> None:
            if deleted:
                raise RuntimeError("database gone")
            deleted.append(str(self.session_key))
            super().delete(session_key)

    monkeypatch.setattr(backchannel, "session_store_class", lambda: FailsSecond)
    with pytest.raises(RuntimeError):
        await end_sessions(token(sid="s1"))
    assert deleted and await alive(keys) == set(keys)


async def test_replay_store_admits_a_key_once_in_one_hop(hops: list[str]) -> None:
    store = DatabaseReplayStore()
    assert await store.remember("k1", time.time() + 60)
    assert hops == ["_remember"]
    assert not await store.remember("k1", time.time() + 60)
    assert await SeenLogoutToken.objects.filter(key="k1").acount() == 1


async def test_replay_store_forgets_expired_keys() -> None:
    store = DatabaseReplayStore()
    assert await store.remember("old", time.time() - 1)
    assert await store.remember("new", time.time() + 60)
    assert [k async for k in SeenLogoutToken.objects.values_list("key", flat=True)] == ["new"]
    assert await store.remember("old", time.time() + 60)  # expired, so new again
