"""The gateway as an OAuth 2.0 client at its login provider's token and introspection endpoints.

Client authentication is authlib's: ``ClientAuth`` for ``client_secret_basic`` and
``client_secret_post`` (RFC 6749 §2.3.1), ``PrivateKeyJWT`` for ``private_key_jwt``
(OIDC Core 1.0 §9, RFC 7523 §2.2), chosen by ``GATEWAY_OIDC_CLIENT_AUTH``
(``config/clientauth.py``). ``ClientHttpAuth`` hands it to httpx as an ``httpx.Auth``, so
the requests travel on the process's pooled client (``gateway.issuers.http``) beside
discovery and JWKS.

Why not authlib's ``AsyncOAuth2Client``: it *is* an ``httpx.AsyncClient`` bound to one set
of credentials, so discovery and JWKS could not share its pool, and its httpx integration
warns on import unless the ``httpx2`` fork is installed. Its auth classes need neither.

Who calls: the login code exchange (``gateway.login.backend``, sync), session refresh
(``gateway.login.refresh``) and introspection (``gateway.handshake.introspect``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Generator, Mapping
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth as AuthlibClientAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from django.conf import settings

from gateway.issuers import http
from gateway.issuers.registry import registry

ASSERTION_LIFETIME = 60  # seconds; the provider checks exp, and a short one limits replay
ACCEPT_JSON = {"Accept": "application/json"}


class FreshPrivateKeyJWT(PrivateKeyJWT):
    """authlib's ``private_key_jwt`` with a new ``jti``, a ``kid`` and a short ``exp`` for
    every assertion (RFC 7523 §3: a provider may refuse a ``jti`` it has seen, and
    Keycloak does; authlib would store the first ``jti`` in a shared claims dict)."""

    def __init__(self, audience: str, key_id: str, alg: str) -> None:
        super().__init__(token_endpoint=audience, alg=alg)
        self.key_id = key_id

    def sign(self, auth: AuthlibClientAuth, token_endpoint: str) -> str:
        now = int(time.time())
        return str(private_key_jwt_sign(
            auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
            alg=self.alg, claims={"jti": secrets.token_urlsafe(32)}, header={"kid": self.key_id},
            issued_at=now, expires_at=now + ASSERTION_LIFETIME))


class ClientHttpAuth(httpx.Auth):
    """An authlib ``ClientAuth`` as an ``httpx.Auth``: it rewrites the form body or the
    Authorization header of each request, sync or async."""

    requires_request_body = True

    def __init__(self, client_auth: AuthlibClientAuth) -> None:
        self.client_auth = client_auth

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        headers = dict(request.headers)
        url, headers, body = self.client_auth.prepare(request.method, str(request.url), headers,
                                                      request.content)
        headers.pop("content-length", None)
        headers.pop("Content-Length", None)
        yield httpx.Request(request.method, url, headers=headers, content=body,
                            extensions=request.extensions)


def assertion_audience(auth: Any, issuer: str) -> str:
    """The ``aud`` of a client assertion: the token endpoint as the provider publishes it (even
    when the gateway reaches it at an internal URL), or the issuer."""
    if auth.assertion_audience == "issuer":
        return issuer
    return registry.published_token_endpoint(issuer)


def http_auth(client_id: str, auth: Any, *, audience: str) -> ClientHttpAuth:
    """authlib's client authentication for ``auth`` (a ``config.clientauth.ClientAuth``);
    ``audience`` is the ``aud`` of a private_key_jwt assertion."""
    if auth.method == "private_key_jwt":
        method = FreshPrivateKeyJWT(audience, auth.key_id, auth.algorithm)
        return ClientHttpAuth(AuthlibClientAuth(client_id, auth.key, method))
    return ClientHttpAuth(AuthlibClientAuth(client_id, auth.secret, auth.method))


def client_auth() -> ClientHttpAuth:
    """The login client's authentication, as configured (``settings.GATEWAY.client_auth``)."""
    config = settings.GATEWAY
    audience = (assertion_audience(config.client_auth, config.issuer)
                if config.client_auth.method == "private_key_jwt" else "")
    return http_auth(config.client_id, config.client_auth, audience=audience)


async def post(endpoint: str, data: Mapping[str, str]) -> httpx.Response:
    """POST a form to the login provider's ``endpoint``, authenticated as our client, on the
    pooled client. Raises ``httpx.HTTPError`` when the provider cannot be reached."""
    return await http.client().post(endpoint, data=dict(data), auth=client_auth(),
                                    headers=ACCEPT_JSON)


def post_sync(endpoint: str, data: Mapping[str, str]) -> httpx.Response:
    """``post`` for sync code (the login callback runs in a worker thread)."""
    return http.sync_client().post(endpoint, data=dict(data), auth=client_auth(),
                                   headers=ACCEPT_JSON)
