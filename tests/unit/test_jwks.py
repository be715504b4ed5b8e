"""JwksCache: parse once, single-flight, rate limit, stale keys, rotation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from oidc import errors
from oidc.jwks import JwksCache

from .factories import KEY1, KEY2, KEY3, FakeClock, FakeFetcher, jwks_of

URI = "https://idp.example.com/jwks"


def test_parsed_key_object_is_reused(keys: JwksCache) -> None:
    assert keys.get("k1") is keys.get("k1")
    assert keys.get("k1") is not keys.get("k2")


async def test_unchanged_keys_are_not_reparsed_on_refresh(keys: JwksCache, clock: FakeClock) -> None:
    before = keys.get("k1")
    clock.now += 60
    assert await keys.refresh()
    assert keys.get("k1") is before


async def test_first_load_fetches(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks_of(KEY1))
    cache = JwksCache(URI, fetcher, clock=clock)
    assert not cache.loaded and cache.needs_refresh()
    assert (await cache.resolve("k1")).kid == "k1"
    # mypy keeps the narrowing of cache.loaded from the first assert across the await
    assert cache.loaded and fetcher.calls == 1 and not cache.needs_refresh()  # type: ignore[unreachable]


async def test_never_loaded_and_unreachable(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks_of(KEY1))
    fetcher.fail = True
    cache = JwksCache(URI, fetcher, clock=clock)
    for _ in range(cache.refetch_burst + 2):
        with pytest.raises(errors.KeysUnavailable):
            await cache.resolve("k1")
    assert fetcher.calls == cache.refetch_burst  # then rate-limited, still unavailable


async def test_single_flight(clock: FakeClock) -> None:
    fetcher = FakeFetcher(jwks_of(KEY1, KEY3))
    cache = JwksCache(URI, fetcher, clock=clock)
    cache.load(jwks_of(KEY1))
    clock.now += 60
    fetcher.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(cache.resolve("k3")) for _ in range(20)]
    await asyncio.sleep(0)
    fetcher.gate.set()
    results = await asyncio.gather(*tasks)
    assert fetcher.calls == 1
    assert all(r is results[0] for r in results)


async def test_concurrent_unknown_kid_fetches_once(keys: JwksCache, fetcher: FakeFetcher) -> None:
    fetcher.gate = asyncio.Event()
    tasks = [asyncio.ensure_future(keys.resolve("nope")) for _ in range(10)]
    await asyncio.sleep(0)
    fetcher.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, errors.UnknownKey) for r in results)
    assert fetcher.calls == 1


async def test_refetch_bucket(keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    for _ in range(keys.refetch_burst):
        assert await keys.refresh()
    assert not await keys.refresh()
    clock.now += keys.min_refetch_interval - 1
    assert not await keys.refresh()
    assert await keys.refresh(force=True)  # force takes nothing from the bucket
    clock.now += 1
    assert await keys.refresh()  # one regained
    assert not await keys.refresh()
    assert fetcher.calls == keys.refetch_burst + 2


async def test_two_rotations_seconds_apart_are_each_picked_up(
        keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    """Issue 20: a rotation, then another 5 s later, each accepted at once."""
    clock.now += 1
    fetcher.document = jwks_of(KEY2, KEY3)
    assert (await keys.resolve("k3")).kid == "k3"
    clock.now += 5
    fetcher.document = jwks_of(KEY3, KEY1)
    assert (await keys.resolve("k1")).kid == "k1"
    assert fetcher.calls == 2


async def test_a_flood_of_unknown_kids_costs_a_bounded_number_of_fetches(
        keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    seconds = 120.0
    for n in range(int(seconds * 10)):  # ten unknown kids a second
        clock.now += 0.1
        with pytest.raises(errors.UnknownKey):
            await keys.resolve(f"bogus-{n}")
    assert fetcher.calls <= keys.refetch_burst + seconds / keys.min_refetch_interval
    assert fetcher.calls >= seconds / keys.min_refetch_interval  # and it keeps looking


async def test_forced_resolve_fetches_when_the_bucket_is_empty(
        keys: JwksCache, fetcher: FakeFetcher) -> None:
    for _ in range(keys.refetch_burst):
        await keys.refresh()
    fetcher.document = jwks_of(KEY3)
    with pytest.raises(errors.UnknownKey):
        await keys.resolve("k3")
    assert (await keys.resolve("k3", force=True)).kid == "k3"


async def test_stale_keys_survive_failed_refetch_within_max_stale(
        keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    fetcher.fail = True
    clock.now += 7200
    assert keys.needs_refresh()
    assert await keys.refresh()  # fetched (and failed) without raising
    assert keys.get("k1") is not None
    assert (await keys.resolve("k2")).kid == "k2"
    clock.now += keys.max_stale
    assert keys.get("k1") is None
    with pytest.raises(errors.KeysUnavailable):
        await keys.resolve("k1")


async def test_key_rotation(keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    fetcher.document = jwks_of(KEY2, KEY3)
    clock.now += 60
    assert (await keys.resolve("k3")).kid == "k3"
    assert keys.get("k1") is None  # retired key is gone after the refresh
    assert keys.kids == {"k2", "k3"}


async def test_bad_document_keeps_previous_keys(
        keys: JwksCache, fetcher: FakeFetcher, clock: FakeClock) -> None:
    fetcher.document = {"keys": "nope"}
    clock.now += 60
    await keys.refresh()
    assert keys.get("k1") is not None


@pytest.mark.parametrize(
    "jwk",
    [
        {**KEY3.as_dict(private=False), "use": "enc"},
        {**KEY3.as_dict(private=False), "key_ops": ["encrypt"]},
        KEY3.as_dict(private=True),
        {**OctKey.generate_key(256).as_dict(), "kid": "k3"},
        {"kid": "k3", "kty": "RSA", "n": "!!", "e": "AQAB"},
        "not-a-jwk",
    ],
    ids=["use-enc", "key-ops-encrypt", "private", "symmetric", "garbage", "string"],
)
def test_unusable_keys_are_ignored(clock: FakeClock, jwk: dict[str, Any] | str) -> None:
    cache = JwksCache.from_keys({"keys": [KEY1.as_dict(private=False), jwk]}, clock=clock)
    assert cache.kids == {"k1"}
    assert cache.get("k3") is None


def test_document_without_usable_key_is_refused(clock: FakeClock) -> None:
    cache = JwksCache(URI, FakeFetcher({}), clock=clock)
    with pytest.raises(ValueError, match="no usable"):
        cache.load({"keys": [KEY1.as_dict(private=True)]})


def test_ec_and_rsa_keys_load(clock: FakeClock) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec"})
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa"})
    cache = JwksCache.from_keys(jwks_of(ec, rsa), clock=clock)
    assert cache.kids == {"ec", "rsa"}


def test_no_kid_single_key(clock: FakeClock) -> None:
    cache = JwksCache.from_keys(jwks_of(KEY1), clock=clock)
    assert cache.get(None) is cache.get("k1")
    two = JwksCache.from_keys(jwks_of(KEY1, KEY2), clock=clock)
    assert two.get(None) is None
