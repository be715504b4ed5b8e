"""config/env.py: configuration is validated once, and errors name the fix."""

from __future__ import annotations

import os

import pytest

from config.env import load_config
from config.serve import read_serve_config
from config.values import ConfigError

BASE = {"GATEWAY_OIDC_ISSUER": "https://idp.example.com", "GATEWAY_OIDC_CLIENT_ID": "gw",
        "GATEWAY_OIDC_CLIENT_SECRET": "s", "GATEWAY_SECRET_KEY": "x" * 40}


def test_defaults_are_embedded() -> None:
    config = load_config(BASE)
    assert config.database.engine.endswith("sqlite3")
    assert config.redis_url is None
    assert config.allowed_origins == frozenset({"http://127.0.0.1:8000"})
    assert config.audiences == frozenset({"gw"})


def test_database_and_redis_urls_switch_backends() -> None:
    config = load_config({**BASE, "GATEWAY_DATABASE_URL": "postgres://u:p@db:5432/gw",
                          "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (config.database.engine, config.database.name, config.database.host) == (
        "django.db.backends.postgresql", "gw", "db")
    assert config.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(("change", "names"), [
    ({"GATEWAY_OIDC_ISSUER": ""}, "GATEWAY_OIDC_ISSUER"),
    ({"GATEWAY_OIDC_ISSUER": "http://idp.example.com"}, "https"),
    ({"GATEWAY_SECRET_KEY": ""}, "GATEWAY_DEV=true"),
    ({"GATEWAY_OIDC_ALGORITHMS": "HS256"}, "asymmetric"),
    ({"GATEWAY_OIDC_ALGORITHMS": "none"}, "asymmetric"),
    ({"GATEWAY_LEEWAY_SECONDS": "120"}, "0 to 60"),
    ({"GATEWAY_DATABASE_URL": "mysql://x"}, "postgres://"),
    ({"GATEWAY_REDIS_URL": "http://x"}, "redis://"),
    ({"GATEWAY_ALLOWED_ORIGINS": "evil"}, "absolute http(s) URL"),
    ({"GATEWAY_OIDC_PROFILE": "ping"}, "generic, keycloak, entra, okta, auth0"),
    ({"GATEWAY_OIDC_PROFILE": "okta"}, "GATEWAY_OIDC_AUDIENCES to your API"),
    ({"GATEWAY_DEV": "maybe"}, "true or false"),
])
def test_bad_values_fail_with_the_fix(change: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("(", r"\(").replace(")", r"\)")):
        load_config({**BASE, **change})


def test_loopback_http_issuer_is_allowed_for_development() -> None:
    assert load_config({**BASE, "GATEWAY_OIDC_ISSUER": "http://127.0.0.1:9000"}).issuer


def test_channel_layer_defaults_to_pubsub_and_accepts_core() -> None:
    assert load_config(BASE).channel_layer == "pubsub"
    assert load_config({**BASE, "GATEWAY_CHANNEL_LAYER": " Core "}).channel_layer == "core"


def test_unknown_channel_layer_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_CHANNEL_LAYER='sharded': use pubsub"):
        load_config({**BASE, "GATEWAY_CHANNEL_LAYER": "sharded"})


def test_claim_paths_override_the_profile() -> None:
    config = load_config({**BASE, "GATEWAY_OIDC_PROFILE": "auth0",
                          "GATEWAY_OIDC_GROUPS_CLAIMS": "https://acme.example/groups, groups"})
    assert config.profile.name == "auth0"
    assert config.profile.groups_claims == ("https://acme.example/groups", "groups")
    assert config.profile.roles_claims == ("permissions",)  # not overridden: the profile's


def test_okta_profile_with_an_api_audience() -> None:
    config = load_config({**BASE, "GATEWAY_OIDC_PROFILE": "okta",
                          "GATEWAY_OIDC_AUDIENCES": "api://default"})
    assert config.profile.typ_required is False and config.audiences == {"api://default"}


def test_internal_url_is_an_origin_and_localhost_issuers_are_allowed() -> None:
    base = {"GATEWAY_OIDC_ISSUER": "http://localhost:8080/realms/gateway",
            "GATEWAY_OIDC_CLIENT_ID": "gateway", "GATEWAY_OIDC_CLIENT_SECRET": "s",
            "GATEWAY_DEV": "true"}
    cfg = load_config({**base, "GATEWAY_OIDC_INTERNAL_URL": "http://keycloak:8080/"})
    assert (cfg.issuer, cfg.internal_url) == ("http://localhost:8080/realms/gateway",
                                              "http://keycloak:8080")
    with pytest.raises(ConfigError, match="GATEWAY_OIDC_INTERNAL_URL"):
        load_config({**base, "GATEWAY_OIDC_INTERNAL_URL": "http://keycloak:8080/realms/x"})


@pytest.mark.parametrize(("raw", "expected"), [("", 20.0), ("300", 300.0), ("2.5", 2.5)])
def test_the_keepalive_ping_interval_is_configurable(raw: str, expected: float) -> None:
    assert read_serve_config({**BASE, "GATEWAY_WS_PING_SECONDS": raw}).ws_ping_seconds == expected


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "7200", "soon"])
def test_a_bad_keepalive_ping_interval_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_WS_PING_SECONDS"):
        read_serve_config({**BASE, "GATEWAY_WS_PING_SECONDS": raw})


def test_workers_default_to_one_without_redis_and_to_the_cores_with_it() -> None:
    assert read_serve_config(BASE).workers == 1
    with_redis = {**BASE, "GATEWAY_REDIS_URL": "redis://127.0.0.1:6379/0"}
    assert read_serve_config(with_redis).workers == (os.cpu_count() or 1)
    assert read_serve_config({**with_redis, "GATEWAY_WORKERS": "3"}).workers == 3


def test_several_workers_without_redis_are_refused_naming_the_fix() -> None:
    """Processes without a shared bus would keep sockets open after a logout elsewhere."""
    with pytest.raises(ConfigError, match="GATEWAY_WORKERS=2 needs GATEWAY_REDIS_URL"):
        read_serve_config({**BASE, "GATEWAY_WORKERS": "2"})
