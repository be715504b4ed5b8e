"""Metrics, readiness and the explain command, in process."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.test import AsyncClient

from config.asgi import application
from tests.channels.conftest import token

pytestmark = pytest.mark.django_db(transaction=True)


def _sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_metrics_count_handshakes_by_outcome_and_reason() -> None:
    client = AsyncClient()
    scrape = {"authorization": f"Bearer {token(scope='gateway.metrics')}"}
    before = (await client.get("/metrics", headers=scrape)).content.decode()
    comm = WebsocketCommunicator(application, "/ws/ops/",
                                 headers=[(b"authorization", f"Bearer {token()}".encode())])
    await comm.connect()
    await comm.receive_output()
    after = (await client.get("/metrics", headers=scrape)).content.decode()
    labels = '{outcome="deny",reason="missing_scope"}'
    assert _sample(after, "gateway_handshakes_total", labels) == \
        _sample(before, "gateway_handshakes_total", labels) + 1
    assert _sample(after, "gateway_auth_seconds_count") > _sample(before, "gateway_auth_seconds_count")


async def test_readyz_reflects_loaded_keys() -> None:
    client = AsyncClient()
    assert (await client.get("/readyz")).status_code == 200  # the fixture installed keys
    assert (await client.get("/healthz")).json() == {"status": "ok"}


def test_explain_allows_and_shows_each_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(token(scope="ws ops")))
    out = io.StringIO()
    call_command("explain", route="/ws/ops/", stdout=out)
    text = out.getvalue()
    assert "ok    verify" in text
    assert "ok    policy   ALLOW" in text
    assert token(scope="ws ops").split(".")[2] not in text  # never prints the token


@pytest.mark.parametrize(("route", "claims", "reason"), [
    ("/ws/ops/", {}, "missing_scope"),
    ("/ws/", {"exp": 1}, "expired_token"),
    ("/nowhere/", {}, "no_route"),
])
def test_explain_names_the_failing_check(monkeypatch: pytest.MonkeyPatch, route: str,
                                         claims: dict[str, Any], reason: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(token(**claims)))
    with pytest.raises(CommandError, match=reason):
        call_command("explain", route=route, stdout=io.StringIO())
