"""Keycloak tier: one real Keycloak per session, two real gateway processes sharing Redis.

Keycloak is the pinned distribution from ``scripts/ensure-keycloak``, started natively
with ``deploy/keycloak/realm.json`` (the realm file compose mounts). If it cannot be
fetched or started, every test here fails with the reason: the tier is never skipped.
Keycloak records REFRESH_TOKEN events for the whole run (refreshes are counted per user).

When the run selected ``test_five_minute_tokens.py``, its watch (``watch.py``) starts in a
thread as soon as Keycloak is ready, and its tests run last: the watch mostly waits, so the
rest of the run overlaps its 265 s. A run without that module never starts it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devidp.stack import ROOT, GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.keycloak.helpers import record_refresh_events
from tests.keycloak.launcher import Keycloak, KeycloakUnavailable, launch
from tests.keycloak.watch import FIVE_MINUTES

REDIS_URL = "redis://127.0.0.1:6379/9"
API_AUDIENCE = "gateway-api"
WATCH_MODULE = "test_five_minute_tokens.py"  # reads the watch in watch.py
READY_TIMEOUT = 300.0
GATEWAY_READY_TIMEOUT = 90.0  # the machines are shared: be patient, not flaky
EXPIRY_NOTICE = 4  # seconds; the refresh scenario shortens Keycloak's access tokens to 10 s
SECRETS = {"gateway": "gateway-secret-for-tests",
           "publisher": "publisher-secret-for-tests",
           "publisher-rfc9068": "publisher-secret-for-tests"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "keycloak: needs the real Keycloak server (tests/keycloak)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/keycloak/" in str(item.fspath) and "test_compose" not in str(item.fspath):
            item.add_marker(pytest.mark.keycloak)
    # the five-minute watch's tests wait for it: last, so the rest of the run overlaps it
    items.sort(key=_watches_five_minutes)  # stable: every other test keeps its place


def _watches_five_minutes(item: pytest.Item) -> bool:
    return item.path.name == WATCH_MODULE and item.path.parent.name == "keycloak"


@dataclass
class KeycloakStack:
    keycloak: Keycloak
    gateways: list[GatewayProcess]
    tmp: Path
    envs: list[dict[str, str]] = field(default_factory=list)

    @property
    def gateway(self) -> str:
        return self.gateways[0].url

    @property
    def issuer(self) -> str:
        return self.keycloak.issuer

    def env(self, index: int = 0) -> dict[str, str]:
        return self.envs[index]

    def add_grants(self, grants: list[dict[str, Any]]) -> None:
        """Create grants the way the admin saves them (one Django process, gateway 0's env)."""
        script = ("import django, json, sys; django.setup()\n"
                  "from django.contrib import admin\n"
                  "from django.test import RequestFactory\n"
                  "from django.contrib.auth import get_user_model\n"
                  "from gateway.models import Grant\n"
                  "user, _ = get_user_model().objects.get_or_create(username='kc-admin', "
                  "defaults={'is_staff': True, 'is_superuser': True})\n"
                  "request = RequestFactory().post('/admin/gateway/grant/'); request.user = user\n"
                  "grant_admin = admin.site._registry[Grant]\n"
                  "for g in json.loads(sys.argv[-1]):\n"
                  "    if not Grant.objects.filter(**g).exists():\n"
                  "        grant_admin.save_model(request, Grant(**g), None, False)\n")
        done = subprocess.run([sys.executable, "-c", script, json.dumps(grants)], cwd=ROOT,
                              env=self.envs[0], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-3000:]


def keycloak_gateway_env(keycloak: Keycloak, port: int, database_file: Path,
                         public_urls: list[str], **extra: str) -> dict[str, str]:
    """A gateway federated with the Keycloak realm (GATEWAY_OIDC_PROFILE=keycloak)."""
    return gateway_env(keycloak.issuer, port, database_file=database_file, redis_url=REDIS_URL,
                       extra={"GATEWAY_OIDC_PROFILE": "keycloak",
                              "GATEWAY_OIDC_CLIENT_ID": "gateway",
                              "GATEWAY_OIDC_CLIENT_SECRET": SECRETS["gateway"],
                              "GATEWAY_OIDC_SCOPES": "openid profile email",
                              "GATEWAY_OIDC_AUDIENCES": API_AUDIENCE,
                              "GATEWAY_OIDC_INTROSPECTION": "false",
                              "GATEWAY_ALLOWED_ORIGINS": ",".join(public_urls),
                              # twins at the defaults (60 s and 300 s tokens):
                              # tests/keycloak/test_defaults.py, test_five_minute_tokens.py
                              "GATEWAY_JWKS_MIN_REFETCH_SECONDS": "1",
                              "GATEWAY_EXPIRY_NOTICE_SECONDS": str(EXPIRY_NOTICE),
                              **extra})


@pytest.fixture(scope="session")
def keycloak_ports() -> list[int]:
    """Ports for the two gateways, fixed before Keycloak starts (the realm names them)."""
    return [free_port(), free_port()]


@pytest.fixture(scope="session")
def keycloak(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             keycloak_ports: list[int]) -> Iterator[Keycloak]:
    tmp = tmp_path_factory.mktemp("keycloak")
    public = f"http://127.0.0.1:{keycloak_ports[0]}"
    realm_env = {"GATEWAY_CLIENT_SECRET": SECRETS["gateway"],
                 "PUBLISHER_CLIENT_SECRET": SECRETS["publisher"],
                 "GATEWAY_PUBLIC_URL": public,
                 "GATEWAY_BACKCHANNEL_LOGOUT_URL": f"{public}/oidc/backchannel-logout/"}
    started = time.monotonic()
    try:
        server = launch(tmp, free_port(), free_port(), realm_env, SECRETS)
        server.wait_ready(READY_TIMEOUT)
    except (KeycloakUnavailable, OSError) as exc:
        pytest.fail(f"Keycloak tier cannot run: {exc}", pytrace=False)
    server.started_in = time.monotonic() - started
    print(f"\nkeycloak: ready in {server.started_in:.1f} s at {server.issuer}", file=sys.stderr)
    try:
        record_refresh_events(server)
        if any(map(_watches_five_minutes, request.session.items)):
            FIVE_MINUTES.start(server, tmp_path_factory.mktemp("five-minutes"))  # beside the rest
        yield server
    finally:
        FIVE_MINUTES.stop()
        server.stop()


@pytest.fixture(scope="session")
def kc_stack(tmp_path_factory: pytest.TempPathFactory, keycloak: Keycloak,
             keycloak_ports: list[int]) -> Iterator[KeycloakStack]:
    tmp = tmp_path_factory.mktemp("kc-stack")
    urls = [f"http://127.0.0.1:{port}" for port in keycloak_ports]
    stack = KeycloakStack(keycloak, [], tmp)
    try:
        for index, port in enumerate(keycloak_ports):
            env = keycloak_gateway_env(keycloak, port, tmp / "gateway.sqlite3", urls)
            if index == 0:
                migrate(env)
            stack.envs.append(env)
            stack.gateways.append(start_gateway(port, env, tmp / f"gateway{index}.log",
                                                ready_timeout=GATEWAY_READY_TIMEOUT))
        yield stack
    finally:
        for gateway in stack.gateways:
            gateway.stop()
