"""Key and token factories for the pure ``oidc`` tests. Keys are generated locally."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwk import Key, RSAKey

from oidc.config import IssuerConfig
from oidc.profiles import GENERIC

NOW = 1_700_000_000.0
ISSUER = "https://idp.example.com/realms/main"
CLIENT_ID = "gateway"
AUDIENCE = "ws-gateway"
BCL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

KEY1 = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
KEY2 = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
KEY3 = RSAKey.generate_key(2048, parameters={"kid": "k3", "use": "sig", "alg": "RS256"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks_of(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def encode(header: Mapping[str, Any], claims: Mapping[str, Any], *,
           key: RSAKey | None = KEY1, hmac_secret: bytes | None = None) -> str:
    """Compact JWS built by hand so tests can put anything in the header."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    alg = str(header.get("alg", ""))
    if hmac_secret is not None:
        sig = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    elif alg.lower() == "none" or key is None:
        sig = b""
    else:
        digest = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(),
                  "RS512": hashes.SHA512()}.get(alg, hashes.SHA256())
        assert key.private_key is not None  # the factory keys are generated here, private half included
        sig = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), digest)
    return f"{signing_input}.{b64(sig)}"


def access_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "user-1", "aud": AUDIENCE, "client_id": "spa",
        "exp": NOW + 300, "iat": NOW - 10, "jti": "jti-1", "scope": "openid ws.read",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def id_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT_ID, "exp": NOW + 300,
        "iat": NOW - 10, "nonce": "n-123", "sid": "sid-1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def logout_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT_ID, "iat": NOW - 5,
        "exp": NOW + 115, "jti": "logout-1", "sid": "sid-1", "events": {BCL_EVENT: {}},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


AT_HEADER = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
ID_HEADER = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
LOGOUT_HEADER = {"alg": "RS256", "typ": "logout+jwt", "kid": "k1"}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeFetcher:
    """Serves a JWKS document, counts calls, can be told to fail."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.calls = 0
        self.fail = False
        self.gate: Any = None  # an asyncio.Event to hold fetches in flight

    async def __call__(self, url: str) -> Mapping[str, Any]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("provider down")
        return self.document


def make_config(profile: Any = GENERIC, **overrides: Any) -> IssuerConfig:
    options: dict[str, Any] = {
        "issuer": ISSUER, "audiences": frozenset({AUDIENCE}), "algorithms": ("RS256",),
        "profile": profile, "client_id": CLIENT_ID,
    }
    options.update(overrides)
    return IssuerConfig(**options)
