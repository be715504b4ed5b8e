"""mozilla-django-oidc backend, hardened by overriding its small hooks.

- ID tokens are verified by ``oidc.verify.verify_id_token`` (OIDC Core 1.0
  §3.1.3.7: exact iss, aud, azp, exp, iat, nonce, algorithm allowlist),
  not by the library's ``verify_token``, which skips aud and iss.
- Users are bound to (issuer, subject) through ``OidcIdentity``, never by email; the
  username is only a readable label, and staff and superuser follow the provider's
  groups and roles at each login (``gateway.login.staff``).
- Provider endpoints come from discovery (``oidc_setting``).
- The code exchange authenticates as refresh and introspection do
  (``GATEWAY_OIDC_CLIENT_AUTH``: client_secret_basic, client_secret_post or private_key_jwt,
  ``gateway.issuers.tokenclient``), on the process's pooled sync client.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import HTTPError

from gateway.issuers import tokenclient
from gateway.issuers.registry import registry
from gateway.login.sessions import AUTH_KEY, snapshot_of
from gateway.login.staff import apply_admin_level, opaque_username, username_for
from gateway.models import OidcIdentity
from oidc.profiles import extract_roles
from oidc.verify import groups_of, verify_id_token, verify_userinfo_sub

DISCOVERED_SETTINGS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def oidc_setting(attr: str, *args: Any) -> Any:
    """mozilla-django-oidc's settings hook: endpoints from discovery, the rest from settings."""
    if attr in DISCOVERED_SETTINGS:
        metadata = registry.metadata_sync(settings.GATEWAY.issuer)
        return getattr(metadata, DISCOVERED_SETTINGS[attr])
    return import_from_settings(attr, *args)


class GatewayOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with our hooks. Django builds every backend for each
    permission check, so construction reads no discovery: the admin keeps working while
    the provider is unreachable, and the endpoints are looked up when a login uses them."""

    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.OIDC_RP_CLIENT_ID = oidc_setting("OIDC_RP_CLIENT_ID")
        self.OIDC_RP_CLIENT_SECRET = oidc_setting("OIDC_RP_CLIENT_SECRET")
        self.OIDC_RP_SIGN_ALGO = oidc_setting("OIDC_RP_SIGN_ALGO")
        self.OIDC_RP_IDP_SIGN_KEY = None  # keys come from the issuer's JWKS (verify_token)
        self.UserModel = get_user_model()

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_TOKEN_ENDPOINT"))

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_USER_ENDPOINT"))

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_JWKS_ENDPOINT"))

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The library's code exchange, with our client authentication instead of its own
        (it knows only a secret, in the body or as Basic)."""
        form = {key: value for key, value in payload.items()
                if key not in {"client_id", "client_secret"} and value is not None}
        try:
            response = tokenclient.post_sync(self.OIDC_OP_TOKEN_ENDPOINT, form)
        except httpx.HTTPError as exc:  # the callback view answers 502 token_exchange_failed
            raise RequestsConnectionError(type(exc).__name__) from exc
        if response.status_code != 200:  # the library's error, without the response body
            raise HTTPError(f"token endpoint answered HTTP {response.status_code}")
        body = response.json()
        if not isinstance(body, dict):
            raise HTTPError("token endpoint answered no JSON object")
        self.token_response: dict[str, Any] = body
        return self.token_response

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        issuer = registry.issuers[settings.GATEWAY.issuer]
        registry.metadata_sync(issuer.issuer)
        verified = async_to_sync(verify_id_token)(
            token, issuer, registry.keys_for(issuer.issuer),
            now=time.time(), nonce=kwargs.get("nonce"),
        )
        self.id_claims = dict(verified.claims)
        return self.id_claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        if not settings.GATEWAY.call_userinfo:
            return payload
        userinfo = super().get_userinfo(access_token, id_token, payload)
        verify_userinfo_sub(payload, userinfo)
        return {**userinfo, **payload}

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return isinstance(claims.get("sub"), str) and bool(claims["sub"])

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return self.UserModel.objects.filter(
            oidc_identities__issuer=claims["iss"], oidc_identities__subject=claims["sub"]
        )

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> Any:
        user = get_user_model().objects.create_user(
            opaque_username(claims["iss"], claims["sub"]), email=claims.get("email") or ""
        )
        OidcIdentity.objects.create(user=user, issuer=claims["iss"], subject=claims["sub"])
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user.username = username_for(claims, user.pk)
        user.first_name = str(claims.get("given_name") or "")[:150]
        user.last_name = str(claims.get("family_name") or "")[:150]
        user.email = str(claims.get("email") or "")[:254]
        user.save(update_fields=["username", "first_name", "last_name", "email"])
        stored = self.request.session.get(AUTH_KEY, {}).get("claims", {})  # store_tokens ran first
        apply_admin_level(user, stored.get("groups", ()), stored.get("roles", ()))
        return user

    def store_tokens(self, access_token: str, id_token: str) -> None:
        """Keep what later work needs: tokens, real expiry, and a claims snapshot."""
        issuer = registry.issuers[settings.GATEWAY.issuer]
        response = self.token_response
        now = time.time()
        expires_at = now + float(response.get("expires_in") or 0) if response.get("expires_in") \
            else float(self.id_claims["exp"])
        scopes = frozenset(str(response.get("scope") or "").split())
        groups, overage = groups_of(self.id_claims, issuer)
        roles = extract_roles(self.id_claims, issuer.profile, issuer.client_id)
        self.request.session[AUTH_KEY] = {
            "expires_at": expires_at,
            "issued_at": now,
            "id_token_expires_at": float(self.id_claims["exp"]),
            "access_token": access_token,
            "refresh_token": response.get("refresh_token"),
            "id_token": id_token,
            "claims": snapshot_of(self.id_claims, groups=groups, roles=roles, scopes=scopes,
                                  expires_at=expires_at, client_id=issuer.client_id or "",
                                  groups_overage=overage),
        }
