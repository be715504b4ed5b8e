"""Values derived from a principal are computed once per principal object and shared."""

from __future__ import annotations

from consumers.perprincipal import PerPrincipal
from oidc.types import CredentialKind, Principal


def principal(subject: str = "bob", groups: frozenset[str] = frozenset({"b", "a"})) -> Principal:
    return Principal(issuer="https://idp", subject=subject, client_id=None, groups=groups,
                     roles=frozenset(), scopes=frozenset({"ws"}), claims={"sub": subject},
                     expires_at=2000.0, sid=None, credential=CredentialKind.BEARER)


def test_one_principal_is_derived_once_and_its_sockets_share_the_value() -> None:
    calls: list[str] = []

    def derive(p: Principal) -> dict[str, str]:
        calls.append(p.subject)
        return {"subject": p.subject}

    view = PerPrincipal(derive)
    bob = principal()
    first, second = view(bob), view(bob)
    assert first is second and calls == ["bob"]


def test_another_principal_object_gets_its_own_value_even_when_equal() -> None:
    view = PerPrincipal(lambda p: sorted(p.groups))
    assert view(principal()) == view(principal()) == ["a", "b"]
    alice = principal("alice", frozenset({"c"}))
    assert view(alice) == ["c"]


def test_a_principal_that_dies_takes_its_value_with_it() -> None:
    view = PerPrincipal(lambda p: p.subject)
    bob = principal()
    view(bob)
    assert len(view.values) == 1
    del bob  # reference counting frees it: no collection needed
    assert view.values == {}

