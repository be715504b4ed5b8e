"""compose.yaml is valid Compose and wires the realm, the issuer split and the proxy right.

Validated against the Compose Specification's JSON schema (vendored in
``deploy/compose-spec.json``, see ``deploy/compose-spec.md``): a fast check without an
engine. ``tests/compose`` brings the same file up for real.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs: types-jsonschema is not installed
import pytest
import yaml

from tests.keycloak.launcher import REALM, REALM_FILE

ROOT = Path(__file__).resolve().parents[2]
IMPORT_DIR = "/opt/keycloak/data/import"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text()))


def _schema() -> dict[str, Any]:
    return dict(json.loads((ROOT / "deploy" / "compose-spec.json").read_text()))


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(_schema()).validate(compose)


def test_the_schema_catches_a_broken_compose_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["keycloak"]["ports"] = {"8080": "8080"}  # must be a list
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(_schema()).validate(broken)


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        mounts[container] = host
    return mounts


def test_keycloak_imports_the_realm_file_the_tests_import(compose: dict[str, Any]) -> None:
    keycloak = compose["services"]["keycloak"]
    assert "--import-realm" in keycloak["command"]
    host = _mounts(keycloak)[f"{IMPORT_DIR}/{REALM}-realm.json"]
    assert (ROOT / host).resolve() == REALM_FILE.resolve()
    assert json.loads(REALM_FILE.read_text())["realm"] == REALM


def test_every_realm_placeholder_is_set_for_keycloak(compose: dict[str, Any]) -> None:
    import re

    placeholders = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", REALM_FILE.read_text()))
    assert placeholders  # secrets and URLs come from the environment
    assert placeholders <= set(compose["services"]["keycloak"]["environment"])


def test_issuer_split_and_backchannel_logout_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    keycloak = services["keycloak"]["environment"]
    assert keycloak["KC_HOSTNAME"] == "http://localhost:8080"
    assert keycloak["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    assert keycloak["GATEWAY_BACKCHANNEL_LOGOUT_URL"].startswith("http://proxy:8000/")
    for name in ("gateway-1", "gateway-2"):
        env = services[name]["environment"]
        assert env["GATEWAY_OIDC_ISSUER"] == f"{keycloak['KC_HOSTNAME']}/realms/{REALM}"
        assert env["GATEWAY_OIDC_INTERNAL_URL"] == "http://keycloak:8080"
        assert env["GATEWAY_OIDC_PROFILE"] == "keycloak"
        assert env["GATEWAY_REDIS_URL"].startswith("redis://redis:")
        assert env["GATEWAY_DATABASE_URL"].startswith("postgres://")
        assert services[name]["depends_on"]["keycloak"]["condition"] == "service_healthy"
    assert "proxy" in services


def test_published_ports_are_bound_to_loopback(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_keycloak_health_check_uses_the_management_port(compose: dict[str, Any]) -> None:
    keycloak = compose["services"]["keycloak"]
    assert keycloak["image"] == "quay.io/keycloak/keycloak:26.7.3"
    assert keycloak["environment"]["KC_HEALTH_ENABLED"] == "true"
    check = " ".join(keycloak["healthcheck"]["test"])
    assert "/dev/tcp/127.0.0.1/9000" in check and "/health/ready" in check


def test_proxy_passes_websocket_upgrades_to_both_replicas() -> None:
    conf = (ROOT / "deploy" / "proxy" / "nginx.conf").read_text()
    assert "server gateway-1:8000" in conf and "server gateway-2:8000" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "proxy_http_version 1.1;" in conf


def test_dockerfile_uses_the_production_launch_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("# ") and "FROM python:3.11-slim" in dockerfile
    assert 'CMD ["scripts/serve"]' in dockerfile
    assert "requirements.lock" in dockerfile
