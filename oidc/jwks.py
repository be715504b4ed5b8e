"""A per-issuer cache of the provider's signing keys (RFC 7517 §5, OIDC Core §10.1.1).

The fetcher is injected; this module does no I/O. Keys are parsed once per
``kid`` (parsing an RSA key costs ~10x a verification) and reused. Refetches
are single-flight and drawn from a small token bucket: up to ``refetch_burst``
back to back (so a rotation, and another one seconds later, are each picked up at
once), then one per ``min_refetch_interval``. A flood of unknown ``kid`` values thus
costs at most ``refetch_burst + t / min_refetch_interval`` fetches over ``t`` seconds.
A kid met where the provider itself handed over the token (an ID token from the token
endpoint) may ``force`` a fetch. A failed refetch keeps the previous keys for up to
``max_stale`` seconds after the last good fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from joserfc.jwk import JWKRegistry, Key

from oidc.errors import KeysUnavailable, UnknownKey

__all__ = ["Clock", "Fetcher", "JwksCache", "parse_jwks"]

log = logging.getLogger(__name__)

Fetcher = Callable[[str], Awaitable[Mapping[str, Any]]]
Clock = Callable[[], float]

SIGNING_KTYS = frozenset({"RSA", "EC", "OKP"})
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
NO_KID = ""


def _usable(jwk: Any) -> bool:
    """Public signature keys only: ``use`` absent or "sig"; no private or symmetric material."""
    if not isinstance(jwk, Mapping):
        return False
    if jwk.get("kty") not in SIGNING_KTYS or PRIVATE_MEMBERS.intersection(jwk):
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    ops = jwk.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def parse_jwks(
    document: Mapping[str, Any], previous: Mapping[str, tuple[dict[str, Any], Key]] | None = None
) -> dict[str, tuple[dict[str, Any], Key]]:
    """Usable keys by kid (``""`` for a key without kid), reusing ``previous``
    parsed objects when the JWK is unchanged. Unparseable keys are skipped."""
    keys = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError("JWKS has no 'keys' list")
    previous = previous or {}
    out: dict[str, tuple[dict[str, Any], Key]] = {}
    for jwk in keys:
        if not _usable(jwk):
            continue
        kid = jwk.get("kid", NO_KID)
        if not isinstance(kid, str) or kid in out:
            continue
        raw = dict(jwk)
        old = previous.get(kid)
        if old is not None and old[0] == raw:
            out[kid] = old
            continue
        try:
            key = JWKRegistry.import_key(raw)
        except Exception:  # a bad key is skipped, never fatal
            log.warning("skipping unparseable JWK kid=%r", kid)
            continue
        out[kid] = (raw, key)
    return out


class JwksCache:
    """Signing keys of one issuer, fetched from ``jwks_uri`` by ``fetch``."""

    def __init__(
        self,
        jwks_uri: str,
        fetch: Fetcher,
        *,
        clock: Clock = time.monotonic,
        min_refetch_interval: float = 10.0,
        refetch_burst: int = 3,
        max_stale: float = 86400.0,
        refresh_interval: float = 3600.0,
    ) -> None:
        self.jwks_uri = jwks_uri
        self._fetch = fetch
        self._clock = clock
        self.min_refetch_interval = min_refetch_interval
        self.refetch_burst = refetch_burst
        self._allowance = float(refetch_burst)  # refetches that may start now
        self._allowance_at = clock()
        self.max_stale = max_stale
        self.refresh_interval = refresh_interval
        self._keys: dict[str, tuple[dict[str, Any], Key]] = {}
        self._last_success: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self.fetch_count = 0

    @classmethod
    def from_keys(
        cls, jwks: Mapping[str, Any], *, jwks_uri: str = "static:", clock: Clock = time.monotonic,
        **options: Any,
    ) -> JwksCache:
        """A cache preloaded with ``jwks`` whose refetches return the same document."""
        document = MappingProxyType(dict(jwks))

        async def fetch(_: str) -> Mapping[str, Any]:
            return document

        cache = cls(jwks_uri, fetch, clock=clock, **options)
        cache.load(jwks)
        return cache

    def load(self, jwks: Mapping[str, Any]) -> None:
        """Install a JWKS document as if just fetched. ValueError if it has no usable key."""
        keys = parse_jwks(jwks, self._keys)
        if not keys:
            raise ValueError("JWKS contains no usable public signing key")
        self._keys = keys
        self._last_success = self._clock()

    @property
    def loaded(self) -> bool:
        """Whether a JWKS has ever been loaded successfully."""
        return self._last_success is not None

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def _fresh(self) -> bool:
        return (
            self._last_success is not None
            and self._clock() - self._last_success <= self.max_stale
        )

    def get(self, kid: str | None) -> Key | None:
        """The cached key for ``kid`` (in memory only); None if unknown or too stale.

        Without a kid, the key is used only when exactly one key is cached.
        """
        if not self._fresh():
            return None
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))[1]
            return None
        entry = self._keys.get(kid)
        return entry[1] if entry is not None else None

    def needs_refresh(self) -> bool:
        """True when a background task should refetch (older than refresh_interval)."""
        return (
            self._last_success is None
            or self._clock() - self._last_success >= self.refresh_interval
        )

    def _take_allowance(self) -> bool:
        """One refetch from the bucket, refilled one per ``min_refetch_interval``."""
        now = self._clock()
        regained = (now - self._allowance_at) / self.min_refetch_interval
        self._allowance = min(float(self.refetch_burst), self._allowance + regained)
        self._allowance_at = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True

    async def refresh(self, *, force: bool = False) -> bool:
        """Refetch the JWKS; returns whether a fetch happened.

        Single-flight: concurrent callers share one in-flight fetch. Unless
        ``force``, a fetch takes one from the refetch bucket (module docstring). A
        failure keeps the previous keys; raises KeysUnavailable only if none ever loaded.
        """
        task = self._inflight
        if task is None:
            if not force and not self._take_allowance():
                fetched = False
            else:
                task = self._inflight = asyncio.ensure_future(self._do_fetch())
                task.add_done_callback(self._clear_inflight)
        if task is not None:
            # shield: a cancelled caller must not cancel the fetch others await.
            fetched = await asyncio.shield(task)
        if not self.loaded:
            raise KeysUnavailable(f"no signing keys could be loaded from {self.jwks_uri}")
        return fetched

    def _clear_inflight(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _do_fetch(self) -> bool:
        self.fetch_count += 1
        try:
            document = await self._fetch(self.jwks_uri)
            self.load(document)
        except Exception as exc:  # any fetch failure keeps the old keys
            log.warning("JWKS fetch from %s failed: %s", self.jwks_uri, type(exc).__name__)
        return True

    async def resolve(self, kid: str | None, *, force: bool = False) -> Key:
        """``get(kid)``, or on a miss one refresh (rate-limited unless ``force``) and
        ``get`` again.

        Raises UnknownKey if still missing, KeysUnavailable if no fresh keys exist.
        """
        key = self.get(kid)
        if key is not None:
            return key
        if kid is None and self._fresh() and len(self._keys) > 1:
            raise UnknownKey("token has no kid and the issuer publishes several keys")
        await self.refresh(force=force)
        key = self.get(kid)
        if key is not None:
            return key
        if not self._fresh():
            raise KeysUnavailable(f"signing keys from {self.jwks_uri} are stale")
        raise UnknownKey("no key with this kid" if kid is not None else "no key without kid")
