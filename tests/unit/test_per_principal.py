"""Values derived from a principal are computed once per principal object and shared."""

from __future__ import annotations

import gc
import weakref

from oidc.perprincipal import PerPrincipal
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
    view: PerPrincipal[Principal, list[str]] = PerPrincipal(lambda p: sorted(p.groups))
    assert view(principal()) == view(principal()) == ["a", "b"]
    alice = principal("alice", frozenset({"c"}))
    assert view(alice) == ["c"]


def test_a_principal_that_dies_takes_its_value_with_it() -> None:
    view: PerPrincipal[Principal, str] = PerPrincipal(lambda p: p.subject)
    bob = principal()
    view(bob)
    assert len(view.values) == 1
    del bob  # reference counting frees it: no collection needed
    assert view.values == {}



def test_a_principal_presented_by_another_credential_is_one_object_per_kind() -> None:
    bob = principal()
    as_ticket = bob.with_credential(CredentialKind.TICKET)
    assert as_ticket.credential is CredentialKind.TICKET and as_ticket.subject == "bob"
    assert bob.with_credential(CredentialKind.TICKET) is as_ticket  # its sockets share it
    assert bob.with_credential(CredentialKind.BEARER) is bob
    assert bob.with_credential(CredentialKind.SUBPROTOCOL) is not as_ticket


def test_the_presented_principal_does_not_keep_its_source_alive() -> None:
    bob = principal()
    as_ticket = bob.with_credential(CredentialKind.TICKET)
    source = weakref.ref(bob)
    gc.disable()  # freed by reference counting alone: no cycle through the variant
    try:
        del bob
        assert source() is None
    finally:
        gc.enable()
    assert as_ticket.subject == "bob"
