"""Provider metadata: OpenID Connect Discovery 1.0 §3-§4 and RFC 8414."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from oidc.errors import DiscoveryError

__all__ = ["WELL_KNOWN", "ProviderMetadata", "discovery_url", "for_server_calls", "internal_url",
           "is_secure_url", "parse_metadata"]

WELL_KNOWN = "/.well-known/openid-configuration"
REQUIRED_URLS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
OPTIONAL_URLS = (
    "userinfo_endpoint",
    "end_session_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    introspection_endpoint: str | None = None
    revocation_endpoint: str | None = None
    iss_parameter_supported: bool = False
    backchannel_logout_supported: bool = False
    id_token_signing_alg_values_supported: tuple[str, ...] = ()


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4: strip one trailing ``/`` and append the well-known path."""
    return issuer.removesuffix("/") + WELL_KNOWN


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure_url(url: str) -> bool:
    """https, or http to a loopback host (for development providers)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname or parts.fragment:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback(parts.hostname)


def _same_origin(url: str, base: str) -> bool:
    try:
        parts, origin = urlsplit(url), urlsplit(base)
    except ValueError:
        return False
    return not parts.fragment and (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc)


def _url(document: Mapping[str, Any], name: str, *, required: bool,
         internal_base: str | None = None) -> str | None:
    value = document.get(name)
    if value is None:
        if required:
            raise DiscoveryError(f"provider metadata lacks {name}")
        return None
    if not isinstance(value, str):
        raise DiscoveryError(f"provider metadata {name} is not an https (or loopback http) URL")
    if is_secure_url(value) or (internal_base is not None and _same_origin(value, internal_base)):
        return value
    raise DiscoveryError(f"provider metadata {name} is not an https (or loopback http) URL"
                         + (f" nor on the internal URL {internal_base}" if internal_base else ""))


def _flag(document: Mapping[str, Any], name: str) -> bool:
    value = document.get(name, False)
    if not isinstance(value, bool):
        raise DiscoveryError(f"provider metadata {name} is not a boolean")
    return value


def parse_metadata(document: Mapping[str, Any], expected_issuer: str,
                   internal_base: str | None = None) -> ProviderMetadata:
    """Validate a discovery document (OIDC Discovery §3, §4.3; RFC 8414 §3.3).

    ``issuer`` must equal ``expected_issuer`` exactly, or a provider could
    impersonate another (Discovery §4.3). Endpoint URLs must be https (or http to a
    loopback host), or on the origin of ``internal_base``, the internal URL the operator
    configured for the issuer split: Keycloak with ``KC_HOSTNAME_BACKCHANNEL_DYNAMIC``
    answers a request on ``http://keycloak:8080`` with its back-channel endpoints there.
    """
    if not isinstance(document, Mapping):
        raise DiscoveryError("provider metadata is not a JSON object")
    issuer = document.get("issuer")
    if issuer != expected_issuer:
        raise DiscoveryError("provider metadata issuer does not match the configured issuer")
    _url(document, "issuer", required=True)
    urls = {name: _url(document, name, required=True, internal_base=internal_base)
            for name in REQUIRED_URLS}
    optional = {name: _url(document, name, required=False, internal_base=internal_base)
                for name in OPTIONAL_URLS}
    algs = document.get("id_token_signing_alg_values_supported", [])
    if not isinstance(algs, list) or not all(isinstance(a, str) for a in algs):
        raise DiscoveryError("provider metadata id_token_signing_alg_values_supported is invalid")
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=str(urls["authorization_endpoint"]),
        token_endpoint=str(urls["token_endpoint"]),
        jwks_uri=str(urls["jwks_uri"]),
        userinfo_endpoint=optional["userinfo_endpoint"],
        end_session_endpoint=optional["end_session_endpoint"],
        introspection_endpoint=optional["introspection_endpoint"],
        revocation_endpoint=optional["revocation_endpoint"],
        iss_parameter_supported=_flag(document, "authorization_response_iss_parameter_supported"),
        backchannel_logout_supported=_flag(document, "backchannel_logout_supported"),
        id_token_signing_alg_values_supported=tuple(algs),
    )


def internal_url(url: str, issuer: str, internal_base: str | None) -> str:
    """Where the gateway itself calls ``url``: on the issuer's public origin, the same path
    at ``internal_base`` (e.g. ``http://keycloak:8080`` inside a compose network).

    The browser keeps the public URLs, and ``iss`` is still checked against the issuer.
    """
    if internal_base is None:
        return url
    public, parts = urlsplit(issuer), urlsplit(url)
    if (parts.scheme, parts.netloc) != (public.scheme, public.netloc):
        return url
    base = urlsplit(internal_base)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))


def for_server_calls(metadata: ProviderMetadata, internal_base: str | None) -> ProviderMetadata:
    """The metadata with server-to-server endpoints moved to ``internal_base``."""
    if internal_base is None:
        return metadata
    def move(url: str | None) -> str | None:
        return None if url is None else internal_url(url, metadata.issuer, internal_base)

    return dataclasses.replace(
        metadata, token_endpoint=internal_url(metadata.token_endpoint, metadata.issuer, internal_base),
        jwks_uri=internal_url(metadata.jwks_uri, metadata.issuer, internal_base),
        userinfo_endpoint=move(metadata.userinfo_endpoint),
        introspection_endpoint=move(metadata.introspection_endpoint),
        revocation_endpoint=move(metadata.revocation_endpoint))

