"""Groups overage is never silent (#10 point 12).

A token can say that the user's groups are elsewhere: Entra puts ``_claim_names`` /
``_claim_sources`` instead of ``groups`` past 200 groups (``hasgroups: true`` in the
implicit flow), and any OpenID provider may name the groups claim in ``_claim_names``
(aggregated or distributed claims, OIDC Core 1.0 §5.6.2). Such a token is refused by
default (``groups_overage``), or, when the issuer says ``admit``, admitted with no group
at all and the principal records the overage.
"""

from __future__ import annotations

from typing import Any

import pytest

from oidc import errors
from oidc.config import GROUP_OVERAGE_CHOICES, GroupOverage, IssuerConfig
from oidc.introspection import principal_from_introspection
from oidc.jwks import JwksCache
from oidc.profiles import AUTH0, ENTRA, GENERIC, KEYCLOAK, IssuerProfile, customised, groups_overage
from oidc.types import CredentialKind
from oidc.verify import groups_of, verify_access_token, verify_id_token

from .factories import (
    AT_HEADER,
    CLIENT_ID,
    ID_HEADER,
    ISSUER,
    NOW,
    access_claims,
    encode,
    id_claims,
    make_config,
)

GRAPH = "https://graph.microsoft.com/v1.0/users/00000000-0000-0000-0000-000000000001/getMemberObjects"
ENTRA_OVERAGE = {"_claim_names": {"groups": "src1"},
                 "_claim_sources": {"src1": {"endpoint": GRAPH}}}
ENTRA_IMPLICIT = {"hasgroups": True}


def entra_access(**extra: Any) -> dict[str, Any]:
    """An Entra v2 access token's claims (``scp``, ``azp``, typ JWT), with ``extra``."""
    return access_claims(client_id=None, azp="app-1", scope=None, scp="ws.read",
                         roles=["Gateway.Admin"], ver="2.0", **extra)


async def verify(claims: dict[str, Any], config: IssuerConfig, keys: JwksCache) -> Any:
    return await verify_access_token(encode(ID_HEADER, claims), {config.issuer: config},
                                     {config.issuer: keys}, now=NOW,
                                     credential=CredentialKind.BEARER)


# -- detection --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("profile", "claims", "expected"),
    [
        (ENTRA, ENTRA_OVERAGE, True),
        (ENTRA, ENTRA_IMPLICIT, True),
        (ENTRA, {"hasgroups": "true"}, True),  # any value but false: never silent
        (ENTRA, {"hasgroups": False}, False),
        (ENTRA, {"groups": ["g1"]}, False),
        (ENTRA, {"_claim_names": {"email": "src1"}}, False),  # another claim is elsewhere
        (ENTRA, {"_claim_names": "groups"}, False),  # not the §5.6.2 object: no marker
        (GENERIC, {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"JWT": "e30"}}},
         True),  # aggregated claims (§5.6.2.1)
        (GENERIC, ENTRA_IMPLICIT, False),  # hasgroups is Entra's, not a generic claim
        (customised(AUTH0, groups=("https://acme.example/groups",)),
         {"_claim_names": {"https://acme.example/groups": "src1"}}, True),  # a URL names one claim
        (customised(GENERIC, groups=("org.groups",)), {"_claim_names": {"org": "src1"}}, True),
        (customised(GENERIC, groups=("org.groups",)), {"_claim_names": {"groups": "s"}}, False),
        (customised(GENERIC, groups=("resource_access.{client_id}.groups",)),
         {"_claim_names": {"resource_access": "src1"}}, True),
        (customised(ENTRA, roles=("wids",)), ENTRA_IMPLICIT, True),  # overrides keep the flag
        (KEYCLOAK, {"_claim_names": {"groups": "src1"}}, True),
    ],
    ids=["entra-code-flow", "entra-implicit", "hasgroups-string", "hasgroups-false",
         "groups-present", "other-claim-elsewhere", "claim-names-not-object",
         "generic-aggregated", "generic-ignores-hasgroups", "auth0-namespaced",
         "dotted-path", "dotted-path-other-root", "client-id-template", "customised-entra",
         "keycloak-distributed"],
)
def test_groups_overage_detection(profile: IssuerProfile, claims: dict[str, Any], expected: bool) -> None:
    assert groups_overage(claims, profile, CLIENT_ID) is expected


# -- access tokens ----------------------------------------------------------------------

@pytest.mark.parametrize("marker", [ENTRA_OVERAGE, ENTRA_IMPLICIT], ids=["claim-names", "hasgroups"])
async def test_entra_overage_refused_by_default(keys: JwksCache, marker: dict[str, Any]) -> None:
    config = make_config(profile=ENTRA)
    assert config.group_overage == "refuse"
    with pytest.raises(errors.GroupsOverage) as caught:
        await verify(entra_access(**marker), config, keys)
    assert (caught.value.error, caught.value.status) == ("groups_overage", "forbidden")


@pytest.mark.parametrize("marker", [ENTRA_OVERAGE, ENTRA_IMPLICIT], ids=["claim-names", "hasgroups"])
async def test_entra_overage_admitted_without_groups(keys: JwksCache, marker: dict[str, Any]) -> None:
    config = make_config(profile=ENTRA, group_overage="admit")
    p = await verify(entra_access(**marker), config, keys)
    assert p.groups_overage is True and p.groups == frozenset()
    assert p.roles == {"Gateway.Admin"} and p.scopes == {"ws.read"}  # the rest still applies
    assert p.as_dict()["groups_overage"] is True


async def test_admitted_overage_drops_a_partial_group_list(keys: JwksCache) -> None:
    """Groups beside the marker are not all of them: none is granted, not some."""
    config = make_config(group_overage="admit")
    claims = access_claims(groups=["engineering"], _claim_names={"groups": "src1"},
                           _claim_sources={"src1": {"endpoint": GRAPH}})
    p = await verify_access_token(encode(AT_HEADER, claims), {config.issuer: config},
                                  {config.issuer: keys}, now=NOW,
                                  credential=CredentialKind.BEARER)
    assert p.groups == frozenset() and p.groups_overage is True


@pytest.mark.parametrize("setting", GROUP_OVERAGE_CHOICES)
async def test_token_without_marker_keeps_its_groups(keys: JwksCache, setting: GroupOverage) -> None:
    config = make_config(profile=ENTRA, group_overage=setting)
    p = await verify(entra_access(groups=["8c1f-guid"]), config, keys)
    assert p.groups == {"8c1f-guid"} and p.groups_overage is False
    assert p.as_dict()["groups_overage"] is False


# -- ID tokens (login and refresh) ------------------------------------------------------

async def test_id_token_overage_refused_by_default(keys: JwksCache) -> None:
    config = make_config(profile=ENTRA)
    with pytest.raises(errors.GroupsOverage):
        await verify_id_token(encode(ID_HEADER, id_claims(**ENTRA_OVERAGE)), config, keys,
                              now=NOW, nonce="n-123")


async def test_id_token_overage_admitted_then_groups_of_gives_none(keys: JwksCache) -> None:
    config = make_config(profile=ENTRA, group_overage="admit")
    token = await verify_id_token(encode(ID_HEADER, id_claims(**ENTRA_IMPLICIT)), config, keys,
                                  now=NOW, nonce="n-123")
    assert groups_of(token.claims, config) == (frozenset(), True)


def test_groups_of_without_marker() -> None:
    config = make_config(profile=ENTRA)
    assert groups_of({"groups": ["a", "b"]}, config) == (frozenset({"a", "b"}), False)
    with pytest.raises(errors.GroupsOverage):
        groups_of(ENTRA_IMPLICIT, config)


# -- introspection ----------------------------------------------------------------------

def introspected(**extra: Any) -> dict[str, Any]:
    return {"active": True, "iss": ISSUER, "sub": "user-1", "exp": NOW + 60, **extra}


def test_introspected_overage_follows_the_setting() -> None:
    with pytest.raises(errors.GroupsOverage):
        principal_from_introspection(introspected(**ENTRA_IMPLICIT),
                                     make_config(profile=ENTRA), now=NOW)
    p = principal_from_introspection(introspected(**ENTRA_IMPLICIT),
                                     make_config(profile=ENTRA, group_overage="admit"), now=NOW)
    assert p.groups_overage is True and p.groups == frozenset()


# -- configuration and error tree -------------------------------------------------------

@pytest.mark.parametrize("value", ["ignore", "Refuse", "", None])
def test_config_refuses_unknown_setting(value: str | None) -> None:
    with pytest.raises(ValueError, match=r"group_overage .* use one of refuse, admit"):
        make_config(group_overage=value)


def test_groups_overage_error_in_the_tree() -> None:
    assert errors.GroupsOverage.error == "groups_overage"
    assert errors.GroupsOverage.status == "forbidden"
    assert not issubclass(errors.GroupsOverage, errors.TokenError)  # the token is valid
    assert 'GroupsOverage               "groups_overage"       forbidden' in (errors.__doc__ or "")
    codes = [c.error for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.OidcError)]
    assert codes.count("groups_overage") == 1
