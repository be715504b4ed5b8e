"""The issuers we trust: their configuration, discovery metadata and cached keys.

Keys and metadata are fetched at startup and refreshed in the background
(``run_refresh_loop``); the handshake hot path only reads memory. Fetchers are
injected into the pure ``oidc`` core, which never does I/O itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import httpx
from django.conf import settings

from gateway.issuers import http
from gateway.issuers.config import configured_issuers
from gateway.observe.metrics import JWKS_FETCHES
from oidc.config import IssuerConfig
from oidc.discovery import (
    ProviderMetadata,
    discovery_url,
    for_server_calls,
    internal_url,
    parse_metadata,
)
from oidc.errors import DiscoveryError, KeysUnavailable
from oidc.jwks import JwksCache

logger = logging.getLogger("gateway.providers")

FETCH_TIMEOUT = http.TIMEOUT
ACCEPT_JSON = {"Accept": "application/json"}
MAX_DOCUMENT_BYTES = 512 * 1024


def _json_of(response: httpx.Response) -> Mapping[str, Any]:
    response.raise_for_status()
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document at {response.url} is too large")
    document = response.json()
    if not isinstance(document, dict):
        raise ValueError(f"document at {response.url} is not a JSON object")
    return document


async def fetch_json(url: str) -> Mapping[str, Any]:
    """GET a JSON document on the process's pooled client, without blocking the event loop."""
    return _json_of(await http.client().get(url, headers=ACCEPT_JSON))


async def fetch_jwks(url: str) -> Mapping[str, Any]:
    """The JWKS fetcher handed to ``JwksCache``: counted, never called on the hot path."""
    try:
        document = await fetch_json(url)
    except Exception:
        JWKS_FETCHES.labels("failure").inc()
        raise
    JWKS_FETCHES.labels("success").inc()
    return document


def fetch_json_sync(url: str) -> Mapping[str, Any]:
    """GET a JSON document from sync code (Django views run in a worker thread)."""
    return _json_of(http.sync_client().get(url, headers=ACCEPT_JSON))


class Registry:
    """Per-process state for every trusted issuer. One instance: ``registry``."""

    def __init__(self, issuers: Mapping[str, IssuerConfig]) -> None:
        self.issuers: dict[str, IssuerConfig] = dict(issuers)
        self.metadata: dict[str, ProviderMetadata] = {}
        self.published: dict[str, ProviderMetadata] = {}  # as the provider wrote it
        self.keys: dict[str, JwksCache] = {}

    def _discovery_url(self, issuer: str) -> str:
        return internal_url(discovery_url(issuer), issuer, self.issuers[issuer].internal_url)

    def _parse(self, document: Mapping[str, Any], issuer: str) -> ProviderMetadata:
        """Validate the document as published (``iss`` included), then move the endpoints the
        gateway calls itself to the issuer's internal URL, if one is configured."""
        published = parse_metadata(document, issuer)
        self.published[issuer] = published
        return for_server_calls(published, self.issuers[issuer].internal_url)

    def published_token_endpoint(self, issuer: str) -> str:
        """The token endpoint as discovery names it (the ``aud`` of a client assertion), even
        where the gateway calls it at an internal URL."""
        if issuer not in self.published:
            self.metadata_sync(issuer)  # sync code before startup's load; async callers run after
        return self.published[issuer].token_endpoint

    def _install(self, issuer: str, metadata: ProviderMetadata) -> JwksCache:
        self.metadata[issuer] = metadata
        cache = self.keys.get(issuer)
        if cache is None or cache.jwks_uri != metadata.jwks_uri:
            cache = JwksCache(metadata.jwks_uri, fetch_jwks,
                              min_refetch_interval=settings.GATEWAY.jwks_min_refetch)
            self.keys[issuer] = cache
        return cache

    async def load(self, issuer: str) -> None:
        """Discovery, then keys. Raises DiscoveryError or KeysUnavailable."""
        try:
            document = await fetch_json(self._discovery_url(issuer))
        except Exception as exc:
            raise DiscoveryError(f"cannot fetch discovery for {issuer}: {type(exc).__name__}") from exc
        cache = self._install(issuer, self._parse(document, issuer))
        await cache.refresh(force=True)

    def metadata_sync(self, issuer: str) -> ProviderMetadata:
        """Metadata for sync views; fetched here only if startup has not loaded it yet."""
        metadata = self.metadata.get(issuer)
        if metadata is None:
            try:
                document = fetch_json_sync(self._discovery_url(issuer))
            except Exception as exc:
                raise DiscoveryError(f"cannot fetch discovery for {issuer}") from exc
            metadata = self._parse(document, issuer)
            self._install(issuer, metadata)
        return metadata

    def keys_for(self, issuer: str) -> JwksCache:
        cache = self.keys.get(issuer)
        if cache is None:
            raise KeysUnavailable(f"keys for {issuer} are not loaded yet")
        return cache

    def ready(self) -> bool:
        """True once at least one issuer has usable keys."""
        return any(cache.loaded for cache in self.keys.values())

    def unloaded(self) -> set[str]:
        """The issuers whose keys have never loaded."""
        return {issuer for issuer in self.issuers
                if issuer not in self.keys or not self.keys[issuer].loaded}

    async def load_each(self, issuers: set[str]) -> None:
        """One attempt per issuer, side by side; failures are logged, not raised."""
        await asyncio.gather(*(self._attempt(issuer) for issuer in sorted(issuers)))

    async def _attempt(self, issuer: str) -> None:
        try:
            await self.load(issuer)
        except Exception as exc:
            logger.warning("issuer %s not loaded yet: %s", issuer, exc)
        else:
            logger.info("issuer %s loaded", issuer)

    async def load_all_with_retry(self, max_delay: float = 30.0) -> None:
        """Load every issuer not loaded yet, retrying with capped exponential backoff."""
        delay = 0.5
        while pending := self.unloaded():
            await self.load_each(pending)
            if self.unloaded():
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def run_refresh_loop(self, period: float = 60.0) -> None:
        """Background task: refresh key sets that are due, so the hot path never fetches."""
        while True:
            await asyncio.sleep(period)
            for cache in list(self.keys.values()):
                if cache.needs_refresh():
                    try:
                        await cache.refresh()
                    except Exception as exc:
                        logger.warning("JWKS refresh of %s failed: %s", cache.jwks_uri, exc)


def build_registry() -> Registry:
    return Registry(configured_issuers())


registry = build_registry()


def now() -> float:
    return time.time()
