"""GATEWAY_REDIS_URL: one server, or a master found through Sentinel (gateway/bus/target.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.bus.target import RedisUrlError, layer_host, parse_sentinel
from gateway.conf.env import load_config
from gateway.conf.values import ConfigError
from tests.unit.test_config_env import BASE


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/2",
                                 "unix:///run/redis.sock"])
def test_a_server_url_is_used_as_it_is(url: str) -> None:
    assert parse_sentinel(url) is None
    assert without_connection_options(layer_host(url)) == {"address": url}


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_data_nodes_credentials() -> None:
    url = ("rediss+sentinel://gw:s%40cret@10.0.0.1:26380,[::1],sentinel-c/mymaster/3"
           "?sentinel_password=watch")
    target = parse_sentinel(url)
    assert target is not None
    assert target.sentinels == (("10.0.0.1", 26380), ("::1", 26379), ("sentinel-c", 26379))
    assert (target.service, target.db, target.ssl) == ("mymaster", 3, True)
    assert (target.username, target.password, target.sentinel_password) == ("gw", "s@cret", "watch")
    assert without_connection_options(layer_host(url)) == {
        "master_name": "mymaster", "sentinels": list(target.sentinels),
        "sentinel_kwargs": {"password": "watch", "ssl": True},
        "db": 3, "username": "gw", "password": "s@cret", "ssl": True}


def test_a_sentinel_url_defaults_to_database_0_and_no_credentials() -> None:
    target = parse_sentinel("redis+sentinel://127.0.0.1:26379/gw")
    assert target is not None
    assert (target.db, target.ssl, target.password, target.sentinel_password) == (0, False, None, None)
    assert without_connection_options(layer_host("redis+sentinel://127.0.0.1:26379/gw")) == {
        "master_name": "gw", "sentinels": [("127.0.0.1", 26379)], "sentinel_kwargs": {}, "db": 0}


def test_tls_files_reach_the_sentinels_and_the_data_nodes() -> None:
    url = ("rediss+sentinel://:pw@s1:26379/gw/0?ssl_ca_certs=/etc/ca.pem&ssl_certfile=/etc/c.pem"
           "&ssl_keyfile=/etc/k.pem&sentinel_password=watch")
    tls = {"ssl": True, "ssl_ca_certs": "/etc/ca.pem", "ssl_certfile": "/etc/c.pem",
           "ssl_keyfile": "/etc/k.pem"}
    assert without_connection_options(layer_host(url)) == {
        "master_name": "gw", "sentinels": [("s1", 26379)],
        "sentinel_kwargs": {"password": "watch", **tls}, "db": 0, "password": "pw", **tls}


def without_connection_options(host: dict[str, Any]) -> dict[str, Any]:
    retry = host.pop("retry")
    assert retry.get_retries() == 2, "a dropped layer connection is retried briefly, then fails"
    assert host.pop("socket_connect_timeout") == 2.0
    return host


@pytest.mark.parametrize(("url", "fix"), [
    ("http://:hunter2@x", r"or redis\+sentinel://host:26379/service/0"),
    ("redis+sentinel://:hunter2@h:26379", "ends with /service"),
    ("redis+sentinel://:hunter2@h:26379/gw/zero", "ends with /service"),
    ("redis+sentinel://:hunter2@h:26379/gw/0/extra", "ends with /service"),
    ("redis+sentinel://:hunter2@h:port/gw", "is not host or host:port"),
    ("redis+sentinel://:hunter2@h1,,h2/gw", "is not host or host:port"),
    ("redis+sentinel://:hunter2@h/gw?sentinel_pasword=hunter2", r"unknown option\(s\) \['sentinel_pasw"),
    ("redis+sentinel://:hunter2@h/gw?ssl_ca_certs=/ca.pem", "need TLS: use rediss"),
])
def test_a_bad_url_is_refused_at_startup_naming_the_fix_not_the_password(url: str, fix: str) -> None:
    with pytest.raises(RedisUrlError, match=fix) as refused:
        parse_sentinel(url)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ConfigError, match="GATEWAY_REDIS_URL") as at_startup:
        load_config({**BASE, "GATEWAY_REDIS_URL": url})
    assert "hunter2" not in str(at_startup.value)


def test_a_sentinel_url_switches_the_channel_layer_to_redis() -> None:
    url = "redis+sentinel://127.0.0.1:26379/gw/1"
    assert load_config({**BASE, "GATEWAY_REDIS_URL": url}).redis_url == url


def test_shards_spread_the_layer_and_every_redis_is_on_the_bus() -> None:
    config = load_config({**BASE, "GATEWAY_REDIS_URL": "redis://a:6379/0",
                          "GATEWAY_REDIS_SHARDS": "redis://a:6379/0  redis://b:6379/0\n"
                                                  "redis+sentinel://s1,s2/c/0"})
    assert config.layer_urls == ("redis://a:6379/0", "redis://b:6379/0", "redis+sentinel://s1,s2/c/0")
    assert config.bus_urls == config.layer_urls
    alone = load_config({**BASE, "GATEWAY_REDIS_URL": "redis://a:6379/0"})
    assert alone.layer_urls == alone.bus_urls == ("redis://a:6379/0",)
    apart = load_config({**BASE, "GATEWAY_REDIS_URL": "redis://own:6379/0",
                         "GATEWAY_REDIS_SHARDS": "redis://b:6379/0 redis://c:6379/0"})
    assert apart.bus_urls == ("redis://own:6379/0", "redis://b:6379/0", "redis://c:6379/0")


@pytest.mark.parametrize(("env", "fix"), [
    ({"GATEWAY_REDIS_SHARDS": "redis://a/0 redis://b/0"}, "needs GATEWAY_REDIS_URL"),
    ({"GATEWAY_REDIS_URL": "redis://a/0", "GATEWAY_REDIS_SHARDS": "redis://b/0"}, "two or more"),
    ({"GATEWAY_REDIS_URL": "redis://a/0", "GATEWAY_REDIS_SHARDS": "redis://b/0 http://:hunter2@c"},
     "scheme 'http'"),
])
def test_bad_shards_are_refused_at_startup_naming_the_fix(env: dict[str, str], fix: str) -> None:
    with pytest.raises(ConfigError, match=fix) as refused:
        load_config({**BASE, **env})
    assert "hunter2" not in str(refused.value)
