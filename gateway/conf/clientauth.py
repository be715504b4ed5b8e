"""How the gateway authenticates itself at the provider's token and introspection endpoints.

RFC 6749 §2.3.1 (``client_secret_basic``, ``client_secret_post``) and OIDC Core 1.0 §9 /
RFC 7523 §2.2 (``private_key_jwt``: a JWT signed with our private key, whose public half the
provider holds under ``kid``). The login client is the one client the gateway has; the same
method serves the login's code exchange, session refresh and introspection. Read once at
startup; the key file is parsed here, so a wrong one fails before serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from gateway.conf.values import ConfigError, read_choice

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
METHODS: tuple[AuthMethod, ...] = ("client_secret_basic", "client_secret_post", "private_key_jwt")
AssertionAudience = Literal["token_endpoint", "issuer"]
PrivateKey = RSAKey | ECKey | OKPKey

VARIABLES: dict[str, str] = {
    "GATEWAY_OIDC_CLIENT_AUTH": "how the gateway authenticates at the token and introspection "
    "endpoints (login code exchange, session refresh, introspection): client_secret_basic "
    "(default), client_secret_post or private_key_jwt",
    "GATEWAY_OIDC_CLIENT_KEY_FILE": "private_key_jwt: PEM file with our private key (RSA, EC "
    "P-256/384/521 or Ed25519); the provider holds its public half",
    "GATEWAY_OIDC_CLIENT_KEY_ID": "private_key_jwt: the kid under which the provider knows our "
    "public key",
    "GATEWAY_OIDC_CLIENT_ASSERTION_AUDIENCE": "private_key_jwt: the aud of our signed assertion: "
    "token_endpoint (default; Entra, Okta, Keycloak) or issuer (Auth0, Keycloak)",
}

_EC_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


@dataclass(frozen=True)
class ClientAuth:
    """The login client's credentials at the provider; ``secret`` or ``key`` per ``method``."""

    method: AuthMethod = "client_secret_basic"
    secret: str = ""
    key: PrivateKey | None = None
    key_id: str = ""
    algorithm: str = ""
    assertion_audience: AssertionAudience = "token_endpoint"

    def __repr__(self) -> str:  # never print the secret or the key
        return f"ClientAuth(method={self.method!r}, key_id={self.key_id!r})"


def _method(env: Mapping[str, str]) -> AuthMethod:
    return cast(AuthMethod, read_choice(
        env, "GATEWAY_OIDC_CLIENT_AUTH", METHODS, "client_secret_basic",
        f"{', '.join(METHODS)} (the one your client is registered with at the provider)"))


def _audience(env: Mapping[str, str]) -> AssertionAudience:
    raw = env.get("GATEWAY_OIDC_CLIENT_ASSERTION_AUDIENCE", "").strip().lower() or "token_endpoint"
    if raw == "token_endpoint":
        return "token_endpoint"
    if raw == "issuer":
        return "issuer"
    raise ConfigError(f"GATEWAY_OIDC_CLIENT_ASSERTION_AUDIENCE={raw!r}: use token_endpoint "
                      "(the default) or issuer.")


def algorithm_of(key: PrivateKey) -> str:
    """The signing algorithm a key type implies (RFC 7518 §3.1, RFC 8037 §3.1)."""
    if isinstance(key, RSAKey):
        return "RS256"
    if isinstance(key, ECKey):
        return _EC_ALGORITHMS[str(key.get("crv"))]
    if key.get("crv") == "Ed25519":
        return "EdDSA"
    raise ValueError(f"curve {key.get('crv')} cannot sign client assertions")


def read_private_key(path: Path) -> PrivateKey:
    """Parse a PEM private key; the error names the file and what is wrong, never the key."""
    name = "GATEWAY_OIDC_CLIENT_KEY_FILE"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}={str(path)!r} cannot be read ({exc.strerror}): point it to "
                          "the PEM file holding the client's private key.") from None
    errors: list[str] = []
    for kind in (RSAKey, ECKey, OKPKey):
        try:
            key: PrivateKey = kind.import_key(data)
        except (JoseError, ValueError, TypeError) as exc:
            errors.append(type(exc).__name__)
            continue
        if not key.is_private:
            raise ConfigError(f"{name}={str(path)!r} holds a public key: the gateway needs the "
                              "private key; give the provider the public one.")
        try:
            algorithm_of(key)
        except (KeyError, ValueError):
            raise ConfigError(f"{name}={str(path)!r}: use an RSA, EC (P-256, P-384, P-521) or "
                              "Ed25519 key.") from None
        return key
    raise ConfigError(f"{name}={str(path)!r} is not a PEM private key (RSA, EC or Ed25519): "
                      "export it with openssl pkey -in key -out key.pem.")


def load_client_auth(env: Mapping[str, str]) -> ClientAuth:
    """Validate the method and the credentials it needs; each error names the fix."""
    method = _method(env)
    secret = env.get("GATEWAY_OIDC_CLIENT_SECRET", "").strip()
    key_file = env.get("GATEWAY_OIDC_CLIENT_KEY_FILE", "").strip()
    key_id = env.get("GATEWAY_OIDC_CLIENT_KEY_ID", "").strip()
    if method != "private_key_jwt":
        if key_file or key_id:
            raise ConfigError(f"GATEWAY_OIDC_CLIENT_KEY_FILE and GATEWAY_OIDC_CLIENT_KEY_ID are "
                              f"for private_key_jwt, but GATEWAY_OIDC_CLIENT_AUTH is {method}: "
                              "set GATEWAY_OIDC_CLIENT_AUTH=private_key_jwt or unset them.")
        if not secret:
            raise ConfigError(f"GATEWAY_OIDC_CLIENT_SECRET is not set: {method} needs our client "
                              "secret at the provider (or set GATEWAY_OIDC_CLIENT_AUTH="
                              "private_key_jwt with a key file).")
        return ClientAuth(method=method, secret=secret)
    if secret:
        raise ConfigError("GATEWAY_OIDC_CLIENT_SECRET is set, but GATEWAY_OIDC_CLIENT_AUTH is "
                          "private_key_jwt, which signs with a key instead: unset the secret.")
    if not key_file:
        raise ConfigError("GATEWAY_OIDC_CLIENT_KEY_FILE is not set: private_key_jwt needs the PEM "
                          "file holding the client's private key.")
    if not key_id:
        raise ConfigError("GATEWAY_OIDC_CLIENT_KEY_ID is not set: private_key_jwt needs the kid "
                          "under which the provider knows the client's public key.")
    key = read_private_key(Path(key_file))
    return ClientAuth(method=method, key=key, key_id=key_id, algorithm=algorithm_of(key),
                      assertion_audience=_audience(env))
