"""Sentinel with passwords, against real servers: the data nodes' password in the URL's user
part and the sentinels' own in ``?sentinel_password=`` reach the gateway's clients and both
channel layers (gateway/bus/target.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis.asyncio as redis

from devidp.stack import free_port
from gateway.bus.redis import PubSubChannelLayer
from gateway.bus.target import connect, layer_host
from tests.redis_servers import PrivateRedis, PrivateSentinel

MASTER_PASSWORD = "master/pw:odd@chars%"  # URL-reserved characters, percent-encoded
SENTINEL_PASSWORD = "sentinel-pw"


@pytest.fixture
def sentinel_port(tmp_path: Path) -> Iterator[int]:
    master = PrivateRedis(free_port(), tmp_path, password=MASTER_PASSWORD)
    master.start()
    sentinel = PrivateSentinel(free_port(), tmp_path, master, password=SENTINEL_PASSWORD)
    sentinel.start()
    try:
        yield sentinel.port
    finally:
        sentinel.stop()
        master.stop()


def url(port: int, *, master: str | None = MASTER_PASSWORD,
        sentinel: str | None = SENTINEL_PASSWORD) -> str:
    quoted = "" if master is None else f":{quote(master, safe='')}@"
    query = "" if sentinel is None else f"?sentinel_password={sentinel}"
    return f"redis+sentinel://{quoted}127.0.0.1:{port}/gw/0{query}"


async def test_both_passwords_reach_the_master_through_the_sentinels(sentinel_port: int) -> None:
    client = connect(url(sentinel_port), socket_timeout=2)
    try:
        assert await client.ping()
        await client.set("gateway:probe", "1")
        assert await client.get("gateway:probe") == b"1"
    finally:
        await client.aclose()


@pytest.mark.parametrize("missing", ["master", "sentinel"])
async def test_a_missing_password_is_refused(sentinel_port: int, missing: str) -> None:
    client = connect(url(sentinel_port, **{missing: None}), socket_timeout=2)
    try:
        with pytest.raises(redis.RedisError):  # authentication, or no master found
            await client.ping()
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_the_channel_layers_carry_messages_through_a_protected_sentinel(
        sentinel_port: int, kind: str) -> None:
    from channels_redis.core import RedisChannelLayer

    host = layer_host(url(sentinel_port))
    layer: Any = (PubSubChannelLayer(hosts=[host]) if kind == "pubsub"
                  else RedisChannelLayer(hosts=[host]))
    try:
        channel = await layer.new_channel()
        await layer.group_add("probe", channel)
        await layer.group_send("probe", {"type": "hello"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "hello"
    finally:
        await layer.flush()
