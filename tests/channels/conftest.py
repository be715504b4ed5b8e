"""In-process tier: the real ASGI stack from config/asgi.py, driven by WebsocketCommunicator.

The trusted issuer's keys are installed in the registry from locally generated keys.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from channels.db import aclose_old_connections
from django.conf import settings

from gateway.issuers.registry import registry
from oidc.discovery import ProviderMetadata
from oidc.jwks import JwksCache
from tests.unit.factories import AT_HEADER, KEY1, encode, jwks_of

ISSUER = settings.GATEWAY.issuer
AUDIENCE = "urn:wsgateway:api"
ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
async def close_thread_connections(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The async ORM's thread keeps its connection (gateway.ops.lifespan closes it once a
    minute in production); close it after each database test so PostgreSQL can drop
    the test database."""
    yield
    if request.node.get_closest_marker("django_db") is not None:
        await aclose_old_connections()


@pytest.fixture(autouse=True)
def trusted_keys() -> Iterator[None]:
    registry.keys[ISSUER] = JwksCache.from_keys(jwks_of(KEY1), jwks_uri="static:test")
    yield
    registry.keys.pop(ISSUER, None)


def token(**overrides: Any) -> str:
    now = time.time()
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "svc-1", "aud": AUDIENCE, "client_id": "svc-1",
                              "exp": now + 300, "iat": now - 5, "jti": "j-1", "scope": "ws"}
    claims.update(overrides)
    return encode(AT_HEADER, {k: v for k, v in claims.items() if v is not None})


def age_memberships(layer: Any) -> None:
    """Make every group membership of the in-memory layer older than its expiry."""
    for members in layer.groups.values():
        for channel in members:
            members[channel] = time.time() - layer.group_expiry - 60


async def eventually(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    """Wait until ``condition()`` holds, polling every 20 ms; fail naming ``what``."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture
def discovered() -> Iterator[None]:
    """What startup discovery leaves in the registry for the login issuer (admin permission
    checks build the login backend)."""
    issuer = settings.GATEWAY.issuer
    registry.metadata[issuer] = ProviderMetadata(
        issuer=issuer, authorization_endpoint=f"{issuer}/auth",
        token_endpoint=f"{issuer}/token", jwks_uri=f"{issuer}/jwks")
    yield
    registry.metadata.pop(issuer, None)
