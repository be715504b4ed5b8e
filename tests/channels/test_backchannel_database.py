"""gateway.login.backchannel: the database side of a back-channel logout.

The replay check and the session deletes take one hop to the database thread and one
transaction (every hop and commit on a loaded machine delays the sockets' close): what
they delete, what they keep, and that a replay or a failure part-way changes nothing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from django.contrib.sessions.models import Session

from gateway.login import backchannel
from gateway.login.backchannel import end_sessions
from gateway.login.sessions import session_store_class
from gateway.models import SeenLogoutToken, SessionBinding
from oidc.errors import ReplayedToken
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


def token(sid: str | None = None, subject: str | None = None, jti: str = "j") -> LogoutToken:
    return LogoutToken(issuer=ISSUER, subject=subject, sid=sid, jti=jti, expires_at=time.time() + 60)


async def end(logout: LogoutToken, remember_for: float = 60) -> int:
    return await end_sessions(logout, time.time() + remember_for)


async def test_a_sid_ends_its_sessions_only_in_one_hop(hops: list[str]) -> None:
    ended = [await logged_in("alice", "s1"), await logged_in("alice", "s1")]
    kept = [await logged_in("alice", "s2"), await logged_in("bob", "s3")]
    hops.clear()
    assert await end(token(sid="s1")) == 2
    assert hops == ["_end_in_database"]
    assert await alive(ended + kept) == set(kept)


async def test_a_subject_without_sid_ends_all_its_sessions() -> None:
    ended = [await logged_in("alice", "s1"), await logged_in("alice", "s2")]
    kept = [await logged_in("bob", "s3")]
    assert await end(token(subject="alice")) == 2
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
        await end(token(sid="s1"))
    assert deleted and await alive(keys) == set(keys)
    assert not await SeenLogoutToken.objects.aexists()  # not remembered: it may come again


async def test_a_replayed_token_ends_nothing() -> None:
    first = await logged_in("alice", "s1")
    assert await end(token(sid="s1")) == 1
    again = await logged_in("alice", "s1")  # bound to the same sid after the first logout
    with pytest.raises(ReplayedToken):
        await end(token(sid="s1"))
    assert await alive([first, again]) == {again}
    assert await end(token(sid="s1", jti="other")) == 1


async def test_remembered_tokens_are_forgotten_once_expired() -> None:
    assert await end(token(sid="s1", jti="old"), remember_for=-1) == 0
    assert await end(token(sid="s1", jti="new")) == 0
    assert [k async for k in SeenLogoutToken.objects.values_list("expires_at", flat=True)
            ] == [pytest.approx(time.time() + 60, abs=5)]
    assert await end(token(sid="s1", jti="old")) == 0  # expired, so accepted again
