"""The pure grant matcher (oidc.grants): principal, grants, channel -> operations."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oidc.channels import InvalidChannel
from oidc.grants import (
    Grant,
    Operation,
    allowed_operations,
    claim_values,
    grants_for_channel,
    grants_of,
    operations_by_target,
)
from oidc.types import ChannelName, CredentialKind, Principal

ISS = "https://idp.example.com"
OTHER = "https://other.example.com"
SUB, PUB, PRES = Operation.SUBSCRIBE, Operation.PUBLISH, Operation.PRESENCE


def principal(groups: Iterable[str] = (), roles: Iterable[str] = (),
              claims: Mapping[str, Any] | None = None, issuer: str = ISS) -> Principal:
    return Principal(issuer=issuer, subject="u1", client_id="gateway", groups=frozenset(groups),
                     roles=frozenset(roles), scopes=frozenset({"ws"}), claims=claims or {},
                     expires_at=2e9, sid=None, credential=CredentialKind.BEARER)


GRANTS = (
    Grant(ISS, "groups", "engineering", "deploys", frozenset({SUB})),
    Grant(ISS, "groups", "admins", "alerts.*", frozenset({SUB, PRES})),
    Grant(ISS, "groups", "admins", "deploys", frozenset({SUB, PUB})),
    Grant(ISS, "roles", "release-manager", "Deploys", frozenset({PUB})),
    Grant(ISS, "realm_access.roles", "oncall", "alerts.critical", frozenset({SUB})),
    Grant(ISS, "tenant", "acme", "acme.*", frozenset({SUB, PUB})),
    Grant(OTHER, "groups", "engineering", "alerts.*", frozenset({SUB})),
)

BOB = principal(groups={"engineering"})
ALICE = principal(groups={"engineering", "admins"})
STRANGER = principal(groups={"engineering"}, issuer=OTHER)


@pytest.mark.parametrize(("who", "channel", "expected"), [
    (BOB, "deploys", {SUB}),
    (BOB, "alerts.critical", set()),
    (BOB, "deploys.prod", set()),
    (ALICE, "deploys", {SUB, PUB}),
    (ALICE, "alerts.critical", {SUB, PRES}),
    (ALICE, "alerts", set()),
    (principal(roles={"release-manager"}), "deploys", {PUB}),
    (principal(claims={"realm_access": {"roles": ["oncall"]}}), "alerts.critical", {SUB}),
    (principal(claims={"realm_access": {"roles": "oncall"}}), "alerts.critical", {SUB}),
    (principal(claims={"realm_access": ["oncall"]}), "alerts.critical", set()),
    (principal(claims={"realm_access.roles": ["oncall"]}), "alerts.critical", set()),
    (principal(claims={"tenant": "acme"}), "acme.orders", {SUB, PUB}),
    (principal(claims={"tenant": ["acme", 1]}), "acme.orders", {SUB, PUB}),
    (principal(claims={"tenant": "ACME"}), "acme.orders", set()),
    (principal(claims={"tenant": {"acme": True}}), "acme.orders", set()),
    (principal(groups={"Engineering"}), "deploys", set()),  # claim values are exact
    (STRANGER, "deploys", set()),  # same group name, other issuer
    (STRANGER, "alerts.x", {SUB}),
    (principal(), "deploys", set()),
])
def test_allowed_operations(who: Principal, channel: str, expected: set[Operation]) -> None:
    assert allowed_operations(who, GRANTS, ChannelName(channel)) == frozenset(expected)


def test_no_grants_allow_nothing() -> None:
    assert allowed_operations(ALICE, (), ChannelName("deploys")) == frozenset()


def test_grants_are_frozen_and_normalised() -> None:
    a = Grant(ISS, "groups", "admins", "ALERTS.*", frozenset({"subscribe"}))  # type: ignore[arg-type]
    b = Grant(ISS, "groups", "admins", "alerts.*", frozenset({SUB}))
    assert a == b and a.target == "alerts.*"
    with pytest.raises(AttributeError):
        a.target = "x"  # type: ignore[misc]


@pytest.mark.parametrize("target", ["al\u0435rts", "*", "a..b", ""])
def test_bad_grant_targets_are_refused(target: str) -> None:
    with pytest.raises(InvalidChannel):
        Grant(ISS, "groups", "x", target, frozenset({SUB}))


@pytest.mark.parametrize("claim", ["", "a..b", ".x"])
def test_bad_claim_paths_are_refused(claim: str) -> None:
    with pytest.raises(ValueError, match="claim path"):
        Grant(ISS, claim, "x", "deploys", frozenset({SUB}))


def test_grants_for_channel_lists_who_can_do_what() -> None:
    found = grants_for_channel(GRANTS, ChannelName("alerts.critical"))
    assert {(g.issuer, g.claim, g.value) for g in found} == {
        (ISS, "groups", "admins"), (ISS, "realm_access.roles", "oncall"),
        (OTHER, "groups", "engineering")}


def test_claim_values_reads_frozen_claims() -> None:
    p = principal(claims=MappingProxyType({"a": {"b": ["x", "y"]}}))
    assert claim_values(p, "a.b") == {"x", "y"}


group_names = st.sampled_from(["engineering", "admins", "ops", "sales"])


@given(st.frozensets(group_names), st.sampled_from(["deploys", "alerts.critical", "acme.x", "z"]))
def test_operations_are_monotonic_in_groups(groups: frozenset[str], channel: str) -> None:
    """Holding more groups never removes an operation; no groups gives none."""
    fewer = allowed_operations(principal(groups=groups), GRANTS, ChannelName(channel))
    more = allowed_operations(principal(groups=groups | {"admins"}), GRANTS, ChannelName(channel))
    assert fewer <= more
    assert allowed_operations(principal(), GRANTS[:4], ChannelName(channel)) == frozenset()


def test_importing_oidc_channels_and_grants_loads_no_django() -> None:
    code = ("import sys, oidc.channels, oidc.grants; "
            "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_namespaced_url_claim_is_one_claim() -> None:
    """Auth0-style custom claims are URLs: matched whole, never split on their dots."""
    grant = Grant(ISS, "https://acme.example/groups", "eng", "deploys", frozenset({SUB}))
    holder = principal(claims={"https://acme.example/groups": ["eng"]})
    nested = principal(claims={"https://acme": {"example/groups": ["eng"]}})
    assert allowed_operations(holder, (grant,), ChannelName("deploys")) == {SUB}
    assert allowed_operations(nested, (grant,), ChannelName("deploys")) == frozenset()


def test_operations_by_target_unions_the_grants_that_apply() -> None:
    assert operations_by_target(ALICE, GRANTS) == {"alerts.*": frozenset({SUB, PRES}),
                                                  "deploys": frozenset({SUB, PUB})}
    assert operations_by_target(STRANGER, GRANTS) == {"alerts.*": frozenset({SUB})}
    assert operations_by_target(principal(), GRANTS) == {}


def test_grants_of_names_the_matching_grants_and_skips_empty_ones() -> None:
    service = principal(claims={"client_id": "svc-reader"})
    grant = Grant(ISS, "client_id", "svc-reader", "deploys", frozenset({SUB}))
    idle = Grant(ISS, "client_id", "svc-reader", "idle", frozenset())
    assert grants_of(service, (*GRANTS, grant, idle)) == (grant, idle)
    assert operations_by_target(service, (*GRANTS, grant, idle)) == {"deploys": frozenset({SUB})}
