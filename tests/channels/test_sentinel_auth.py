"""Sentinel with passwords and TLS, against real servers: the data nodes' password in the
URL's user part, the sentinels' own in ``?sentinel_password=``, a private CA in
``?ssl_ca_certs=`` and a client certificate in ``?ssl_certfile=&ssl_keyfile=`` reach the
gateway's clients and both channel layers (gateway/bus/target.py)."""

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
from tests.redis_servers import PrivateRedis, PrivateSentinel, make_tls_files

MASTER_PASSWORD = "master/pw:odd@chars%"  # URL-reserved characters, percent-encoded
SENTINEL_PASSWORD = "sentinel-pw"


@pytest.fixture
def sentinel_port(tmp_path: Path) -> Iterator[int]:
    yield from _protected_sentinel(tmp_path, tls=None)


@pytest.fixture
def tls_sentinel(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A Sentinel and a master that speak only TLS, with a certificate from a private CA."""
    tls = make_tls_files(tmp_path / "tls")
    for port in _protected_sentinel(tmp_path, tls=tls):
        yield port, tls / "ca.pem"


@pytest.fixture
def mtls_sentinel(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """As ``tls_sentinel``, but the master and the Sentinel also ask clients for a
    certificate from the private CA; yields the folder of PEM files."""
    tls = make_tls_files(tmp_path / "tls")
    for port in _protected_sentinel(tmp_path, tls=tls, client_certs=True):
        yield port, tls


def _protected_sentinel(tmp_path: Path, tls: Path | None,
                        client_certs: bool = False) -> Iterator[int]:
    master = PrivateRedis(free_port(), tmp_path, password=MASTER_PASSWORD, tls=tls,
                          client_certs=client_certs)
    master.start()
    sentinel = PrivateSentinel(free_port(), tmp_path, master, password=SENTINEL_PASSWORD)
    sentinel.start()
    try:
        yield sentinel.port
    finally:
        sentinel.stop()
        master.stop()


def url(port: int, *, master: str | None = MASTER_PASSWORD,
        sentinel: str | None = SENTINEL_PASSWORD, ca: Path | None = None,
        client: Path | None = None) -> str:
    """``client`` is a folder with client.pem and client-key.pem."""
    quoted = "" if master is None else f":{quote(master, safe='')}@"
    options = {"sentinel_password": sentinel, "ssl_ca_certs": str(ca) if ca else None,
               "ssl_certfile": str(client / "client.pem") if client else None,
               "ssl_keyfile": str(client / "client-key.pem") if client else None}
    query = "&".join(f"{k}={quote(v)}" for k, v in options.items() if v is not None)
    scheme = "rediss+sentinel" if ca else "redis+sentinel"
    return f"{scheme}://{quoted}127.0.0.1:{port}/gw/0" + (f"?{query}" if query else "")


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
    await carries_a_message(PubSubChannelLayer(hosts=[host]) if kind == "pubsub"
                            else RedisChannelLayer(hosts=[host]))


async def carries_a_message(layer: Any) -> None:
    """A group message sent through ``layer`` reaches a member (then the layer is flushed)."""
    try:
        channel = await layer.new_channel()
        await layer.group_add("probe", channel)
        await layer.group_send("probe", {"type": "hello"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "hello"
    finally:
        await layer.flush()


async def test_over_tls_the_private_ca_is_trusted_by_the_clients_and_the_layers(
        tls_sentinel: tuple[int, Path]) -> None:
    port, ca = tls_sentinel
    await pings_and_carries(url(port, ca=ca))


async def pings_and_carries(target: str) -> None:
    """The gateway's client answers a ping and the pub/sub layer carries a message."""
    client = connect(target, socket_timeout=2)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    await carries_a_message(PubSubChannelLayer(hosts=[layer_host(target)]))


async def test_a_client_certificate_reaches_servers_that_require_one(
        mtls_sentinel: tuple[int, Path]) -> None:
    port, tls = mtls_sentinel
    await pings_and_carries(url(port, ca=tls / "ca.pem", client=tls))


async def test_without_a_client_certificate_servers_that_require_one_refuse(
        mtls_sentinel: tuple[int, Path]) -> None:
    port, tls = mtls_sentinel
    client = connect(url(port, ca=tls / "ca.pem"), socket_timeout=2)
    try:
        with pytest.raises(redis.RedisError):  # the sentinels end the TLS handshake
            await client.ping()
    finally:
        await client.aclose()


async def test_over_tls_a_server_outside_the_trusted_cas_is_refused(
        tls_sentinel: tuple[int, Path]) -> None:
    port, _ = tls_sentinel
    untrusting = url(port).replace("redis+sentinel://", "rediss+sentinel://")  # system CAs only
    client = connect(untrusting, socket_timeout=2)
    try:
        with pytest.raises(redis.RedisError):  # the sentinels' certificate does not verify
            await client.ping()
    finally:
        await client.aclose()
