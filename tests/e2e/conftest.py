"""End-to-end fixtures: the real dev IdP (oidc-provider) and the gateway under uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import devidp
from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway

REDIS_URL = "redis://127.0.0.1:6379/7"
SOCKETS_PER_SUBJECT = 20  # high enough for every other e2e test; test_presence_limits hits it


@dataclass
class Stack:
    idp: devidp.DevIdp
    gateways: list[GatewayProcess]
    tmp: Path

    @property
    def gateway(self) -> str:
        return self.gateways[0].url

    def audit_events(self, index: int = 0) -> list[dict[str, Any]]:
        events = []
        for line in self.gateways[index].log().splitlines():
            if line.startswith("{") and '"outcome"' in line:
                events.append(json.loads(line))
        return events


def pytest_collection_finish(session: pytest.Session) -> None:
    """The watch at the defaults (test_defaults.py) mostly waits: start it now, beside the
    tiers that run before it."""
    if any(item.path.name == "test_defaults.py" and item.path.parent.name == "e2e"
           for item in session.items):
        from tests.e2e.test_defaults import EARLY
        EARLY.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.e2e.test_defaults import EARLY
    EARLY.stop()  # when its module never ran (a failure stopped the run first)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    idp = devidp.start(free_port(), urls[0], extra_gateway_urls=urls[1:],
                       log_file=tmp / "idp.log", keys_file=tmp / "keys.json")
    gateways: list[GatewayProcess] = []
    try:
        db = tmp / "gateway.sqlite3"
        for index, port in enumerate(ports):
            env = gateway_env(idp.issuer, port, database_file=db, redis_url=REDIS_URL,
                              extra={"GATEWAY_ALLOWED_ORIGINS": ",".join(urls),
                                     # twin at the default refetch (two rotations 5 s apart):
                                     # tests/e2e/test_defaults.py
                                     "GATEWAY_JWKS_MIN_REFETCH_SECONDS": "1",
                                     "GATEWAY_MAX_SOCKETS_PER_SUBJECT": str(SOCKETS_PER_SUBJECT)})
            if index == 0:
                migrate(env)
            gateways.append(start_gateway(port, env, tmp / f"gateway{index}.log"))
        yield Stack(idp, gateways, tmp)
    finally:
        for gateway in gateways:
            gateway.stop()
        idp.stop()
