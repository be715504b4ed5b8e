"""Issuer profiles (claim extraction) and IssuerConfig validation."""

from __future__ import annotations

from typing import Any

import pytest

from oidc.config import IssuerConfig
from oidc.profiles import (
    ENTRA,
    GENERIC,
    KEYCLOAK,
    PROFILES,
    extract_groups,
    extract_roles,
    extract_scopes,
)


def test_profiles_by_name() -> None:
    assert set(PROFILES) == {"generic", "keycloak", "entra", "okta", "auth0"}
    assert (PROFILES["generic"], PROFILES["keycloak"], PROFILES["entra"]) == (GENERIC, KEYCLOAK, ENTRA)
    assert KEYCLOAK.access_token_types == {"at+jwt", "jwt"}


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"scope": "a b  c"}, {"a", "b", "c"}),
        ({"scope": ["a", "b c"]}, {"a", "b", "c"}),
        ({"scope": ["a", 1, None, {"x": 1}]}, {"a"}),
        ({"scope": 7}, set()),
        ({"scope": {"a": 1}}, set()),
        ({}, set()),
    ],
)
def test_scopes_junk_tolerant(claims: dict[str, Any], expected: set[str]) -> None:
    assert extract_scopes(claims, GENERIC, None) == expected


def test_entra_scp() -> None:
    assert extract_scopes({"scp": "x y", "scope": "z"}, ENTRA, None) == {"x", "y"}


def test_keycloak_roles_use_client_id() -> None:
    claims = {"realm_access": {"roles": ["r1"]},
              "resource_access": {"gw": {"roles": ["c1"]}, "other": {"roles": ["c2"]}},
              "groups": ["/engineering", "/engineering/sre"]}
    assert extract_roles(claims, KEYCLOAK, "gw") == {"r1", "c1"}
    assert extract_roles(claims, KEYCLOAK, None) == {"r1"}
    assert extract_groups(claims, KEYCLOAK, "gw") == {"/engineering", "/engineering/sre"}


@pytest.mark.parametrize(
    "claims",
    [{"realm_access": "x"}, {"realm_access": {"roles": "admin"}},
     {"resource_access": {"gw": None}}, {"realm_access": {"roles": [1, "", None]}}],
)
def test_roles_junk_ignored(claims: dict[str, Any]) -> None:
    assert extract_roles(claims, KEYCLOAK, "gw") <= {"admin"}
    assert "" not in extract_roles(claims, KEYCLOAK, "gw")


def config(**overrides: Any) -> IssuerConfig:
    values: dict[str, Any] = {"issuer": "https://idp", "audiences": frozenset({"a"})}
    values.update(overrides)
    return IssuerConfig(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algorithms": ("none",)}, "never accepted"),
        ({"algorithms": ("NONE",)}, "never accepted"),
        ({"algorithms": ("HS256",)}, "asymmetric"),
        ({"algorithms": ("RS256", "rs256")}, "asymmetric"),
        ({"algorithms": ()}, "empty"),
        ({"leeway": 61}, "between 0 and 60"),
        ({"leeway": -1}, "between 0 and 60"),
        ({"issuer": ""}, "issuer"),
        ({"max_token_bytes": 0}, "max_token_bytes"),
    ],
)
def test_config_validation(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


def test_config_defaults_and_freezing() -> None:
    c = config(algorithms=["ES256", "EdDSA"], allowed_client_ids=["x"])
    assert c.allowed_client_ids is not None
    assert c.algorithms == ("ES256", "EdDSA") and c.allowed_client_ids == {"x"}
    assert c.leeway == 30 and c.max_token_bytes == 16384
