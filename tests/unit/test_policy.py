"""Route policies: parsing errors and deny-by-default evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from oidc.policy import ClaimRequirement, RoutePolicy, evaluate, find_policy, parse_policies
from oidc.types import CredentialKind, Principal

NOW = 1_700_000_000.0


def principal(**overrides: Any) -> Principal:
    values: dict[str, Any] = {
        "issuer": "https://idp", "subject": "u1", "client_id": "spa",
        "groups": frozenset({"engineering"}), "roles": frozenset({"operator"}),
        "scopes": frozenset({"ws.read", "openid"}),
        "claims": {"email_verified": True, "tenant": {"id": "t1"}, "level": 1},
        "expires_at": NOW + 60, "sid": "s", "credential": CredentialKind.BEARER,
    }
    values.update(overrides)
    return Principal(**values)


def route(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "principal", "path": "/ws/", "consumer": "consumers.principal.PrincipalConsumer",
        "scopes": ["ws.read"], "credentials": ["session", "bearer"],
        "claims": [{"claim": "email_verified", "equals": True},
                   {"claim": "groups", "contains": "engineering"}],
    }
    entry.update(overrides)
    return entry


def policy(**overrides: Any) -> RoutePolicy:
    return parse_policies({"route": [route(**overrides)]})[0]


def test_parse() -> None:
    (p,) = parse_policies({"route": [route()]})
    assert p.credentials == {CredentialKind.SESSION, CredentialKind.BEARER}
    assert p.scopes == {"ws.read"}
    assert p.claims[0] == ClaimRequirement("email_verified", equals=True)
    assert find_policy((p,), "/ws/") is p
    assert find_policy((p,), "/ws") is None and find_policy((p,), "/ws/x") is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"route": [route(extra=1)]}, "unknown keys"),
        ({"route": [route(), route(name="other")]}, "already used"),
        ({"route": [route(credentials=["cookie"])]}, "unknown credential"),
        ({"route": [route(credentials=[])]}, "at least one"),
        ({"route": [route(scopes="ws.read")]}, "scopes must be a list"),
        ({"route": [route(path="ws")]}, "path must"),
        ({"route": [route(claims=[{"claim": "x"}])]}, "equals, contains or one_of"),
        ({"route": [route(claims=[{"claim": "x", "matches": "y"}])]}, "unknown claim keys"),
        ({"route": [route(claims=[{"claim": "x", "contains": 1}])]}, "contains must"),
        ({"route": [route(claims=[{"claim": "x", "one_of": []}])]}, "one_of must"),
        ({"route": [{k: v for k, v in route().items() if k != "consumer"}]}, "consumer is req"),
        ({"routes": []}, "unknown top-level"),
        ({"route": {"name": "x"}}, "array of tables"),
    ],
)
def test_parse_errors_name_route_and_fix(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_policies(document)


def test_error_names_the_route() -> None:
    with pytest.raises(ValueError, match="'principal'"):
        parse_policies({"route": [route(credentials=["cookie"])]})


def test_allowed() -> None:
    assert evaluate(principal(), policy(), now=NOW).allowed


@pytest.mark.parametrize(
    ("who", "overrides", "reason"),
    [
        ({"credential": CredentialKind.TICKET}, {}, "credential_not_allowed"),
        ({"expires_at": NOW}, {}, "expired"),
        ({"scopes": frozenset({"openid"})}, {}, "missing_scope"),
        ({"claims": {"email_verified": False}}, {}, "claim_mismatch"),
        ({"claims": {"email_verified": 1}}, {}, "claim_mismatch"),
        ({"claims": {}}, {}, "claim_mismatch"),
        ({"groups": frozenset({"sales"})}, {}, "claim_mismatch"),
        ({}, {"claims": [{"claim": "roles", "contains": "admin"}]}, "claim_mismatch"),
        ({}, {"claims": [{"claim": "tenant.id", "one_of": ["t2", "t3"]}]}, "claim_mismatch"),
        ({}, {"claims": [{"claim": "tenant", "one_of": ["t1"]}]}, "claim_mismatch"),
        ({}, {"claims": [{"claim": "level", "equals": True}]}, "claim_mismatch"),
    ],
)
def test_denied(who: dict[str, Any], overrides: dict[str, Any], reason: str) -> None:
    decision = evaluate(principal(**who), policy(**overrides), now=NOW)
    assert (decision.allowed, decision.reason) == (False, reason)


@pytest.mark.parametrize(
    "claims",
    [
        [{"claim": "tenant.id", "one_of": ["t1", "t2"]}],
        [{"claim": "tenant.id", "equals": "t1"}],
        [{"claim": "roles", "contains": "operator"}],
        [{"claim": "level", "equals": 1}],
        [],
    ],
)
def test_claim_requirements_that_match(claims: list[dict[str, Any]]) -> None:
    assert evaluate(principal(), policy(claims=claims), now=NOW).reason == "allowed"


def test_missing_scope_detail() -> None:
    decision = evaluate(principal(scopes=frozenset()), policy(scopes=["b", "a"]), now=NOW)
    assert decision.detail == "a b"
