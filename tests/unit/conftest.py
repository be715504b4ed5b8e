"""Fixtures for the pure ``oidc`` tests; factories live in ``factories.py``."""

from __future__ import annotations

import pytest

from oidc.config import IssuerConfig
from oidc.jwks import JwksCache

from .factories import KEY1, KEY2, FakeClock, FakeFetcher, jwks_of, make_config


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fetcher() -> FakeFetcher:
    return FakeFetcher(jwks_of(KEY1, KEY2))


@pytest.fixture
def keys(fetcher: FakeFetcher, clock: FakeClock) -> JwksCache:
    cache = JwksCache("https://idp.example.com/jwks", fetcher, clock=clock)
    cache.load(fetcher.document)
    return cache


@pytest.fixture
def config() -> IssuerConfig:
    return make_config()

