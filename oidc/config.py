"""Per-issuer trust configuration, validated at construction (RFC 8725 §3.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from oidc.profiles import GENERIC, IssuerProfile

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "END_SESSION_METHODS",
    "GROUP_OVERAGE_CHOICES",
    "EndSessionMethod",
    "GroupOverage",
    "IssuerConfig",
    "check_typless_audiences",
]

ASYMMETRIC_ALGORITHMS = frozenset(
    {
        "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512",
        "EdDSA", "Ed25519",
    }
)  # fmt: skip

MAX_LEEWAY = 60.0

GroupOverage = Literal["refuse", "admit"]
"""What to do with a token whose groups are elsewhere (:func:`oidc.verify.groups_of`):
``refuse`` it (the default: nobody silently loses or gains access), or ``admit`` it
without any group, so only grants on roles, scopes or other claims apply."""

GROUP_OVERAGE_CHOICES: tuple[GroupOverage, ...] = get_args(GroupOverage)

EndSessionMethod = Literal["GET", "POST"]
"""How the browser is sent to the provider's ``end_session_endpoint`` (RP-Initiated Logout
1.0 §2, which asks providers to accept both): ``GET`` (the default: every provider documents
it; stock panva oidc-provider accepts nothing else) carries ``client_id``,
``post_logout_redirect_uri`` and ``state`` in the URL and never ``id_token_hint``, so no
token is in a URL; ``POST`` sends a form that also carries ``id_token_hint``, which lets
providers such as Keycloak skip their "Do you want to sign out?" page."""

END_SESSION_METHODS: tuple[EndSessionMethod, ...] = get_args(EndSessionMethod)


@dataclass(frozen=True)
class IssuerConfig:
    """What we trust from one issuer."""

    issuer: str
    audiences: frozenset[str]
    algorithms: tuple[str, ...] = ("RS256",)
    profile: IssuerProfile = GENERIC
    client_id: str | None = None
    allowed_client_ids: frozenset[str] | None = None
    leeway: float = 30.0
    max_token_bytes: int = 16384
    jwks_uri: str | None = None
    introspection_endpoint: str | None = None
    group_overage: GroupOverage = "refuse"
    internal_url: str | None = None  # where the gateway calls the provider (issuer split)
    end_session_method: EndSessionMethod = "GET"

    def __post_init__(self) -> None:
        if not isinstance(self.issuer, str) or not self.issuer:
            raise ValueError("issuer must be a non-empty string (the exact 'iss' value).")
        object.__setattr__(self, "audiences", frozenset(self.audiences))
        object.__setattr__(self, "algorithms", tuple(self.algorithms))
        if self.allowed_client_ids is not None:
            object.__setattr__(self, "allowed_client_ids", frozenset(self.allowed_client_ids))
        _check_algorithms(self.issuer, self.algorithms)
        if not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(
                f"issuer {self.issuer}: leeway {self.leeway} is out of range; "
                f"use a value between 0 and {MAX_LEEWAY:g} seconds."
            )
        if self.max_token_bytes <= 0:
            raise ValueError(f"issuer {self.issuer}: max_token_bytes must be positive.")
        check_typless_audiences(self.issuer, self.profile, self.client_id, self.audiences)
        if self.group_overage not in GROUP_OVERAGE_CHOICES:
            raise ValueError(
                f"issuer {self.issuer}: group_overage {self.group_overage!r} is not a choice; "
                f"use one of {', '.join(GROUP_OVERAGE_CHOICES)}."
            )
        if self.end_session_method not in END_SESSION_METHODS:
            raise ValueError(
                f"issuer {self.issuer}: end_session_method {self.end_session_method!r} is not a "
                f"choice; use GET (works with every provider) or POST (the provider must "
                f"accept a form at end_session_endpoint)."
            )


def check_typless_audiences(issuer: str, profile: IssuerProfile, client_id: str | None,
                            audiences: frozenset[str]) -> None:
    """A profile that accepts access tokens without ``typ`` (Okta) relies on the audience
    alone to keep ID tokens out (their ``aud`` is our client id): refuse that audience."""
    if not profile.typ_required and client_id in audiences:
        raise ValueError(
            f"issuer {issuer}: profile {profile.name} accepts access tokens without typ, so "
            f"the audience is what keeps ID tokens out; remove our client_id {client_id!r} "
            f"from the audiences and list the API's audience (e.g. api://default)."
        )


def _check_algorithms(issuer: str, algorithms: tuple[str, ...]) -> None:
    if not algorithms:
        raise ValueError(f"issuer {issuer}: algorithms is empty; list e.g. ['RS256'].")
    for alg in algorithms:
        if not isinstance(alg, str) or alg.lower() == "none":
            raise ValueError(
                f"issuer {issuer}: algorithm {alg!r} is not allowed; "
                "remove it ('none' is never accepted, RFC 8725 §3.1)."
            )
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise ValueError(
                f"issuer {issuer}: algorithm {alg!r} is not allowed; use asymmetric "
                f"algorithms only: {sorted(ASYMMETRIC_ALGORITHMS)}."
            )
