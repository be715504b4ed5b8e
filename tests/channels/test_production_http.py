"""Issue 10's HTTP and handshake hardening, in process: metrics access, readiness,
the bus-down handshake, tickets burnt in URLs, no-store on token pages, proxies."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import Any

import pytest
from channels.testing import ApplicationCommunicator, WebsocketCommunicator
from django.conf import settings
from django.test import AsyncClient, override_settings

from config.asgi import application
from gateway.bus.health import bus
from gateway.handshake.tickets import InvalidTicket, redeem_ticket, store_ticket
from oidc.config import GroupOverage
from tests.channels.conftest import ORIGIN, token

pytestmark = pytest.mark.django_db(transaction=True)


def deployment(**changes: Any) -> override_settings:
    cfg = settings.GATEWAY
    return override_settings(GATEWAY=dataclasses.replace(
        cfg, deployment=dataclasses.replace(cfg.deployment, **changes)))


def audit_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.message) for r in caplog.records if r.name == "gateway.audit"]


@pytest.fixture
def audit_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level("INFO", logger="gateway.audit")
    return caplog


async def test_metrics_refuse_a_request_without_credentials(audit_log: pytest.LogCaptureFixture) -> None:
    response = await AsyncClient().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"gateway_handshakes_total" not in response.content
    assert audit_events(audit_log)[-1]["reason"] == "not_authenticated"


async def test_metrics_refuse_a_token_without_the_scope(audit_log: pytest.LogCaptureFixture) -> None:
    response = await AsyncClient().get(
        "/metrics", headers={"authorization": f"Bearer {token(scope='ws')}"})
    assert response.status_code == 403
    assert 'scope="gateway.metrics"' in response["WWW-Authenticate"]
    assert audit_events(audit_log)[-1]["reason"] == "insufficient_scope"


async def test_metrics_refuse_an_invalid_token() -> None:
    response = await AsyncClient().get("/metrics", headers={"authorization": "Bearer not.a.token"})
    assert response.status_code == 401


async def test_metrics_open_to_a_configured_network() -> None:
    with deployment(metrics_networks=(ipaddress.ip_network("127.0.0.0/8"),)):
        response = await AsyncClient().get("/metrics")
    assert response.status_code == 200
    assert b"gateway_handshakes_total" in response.content
    with deployment(metrics_networks=(ipaddress.ip_network("10.0.0.0/8"),)):
        assert (await AsyncClient().get("/metrics")).status_code == 401


async def test_readyz_names_missing_keys() -> None:
    from gateway.issuers.registry import registry

    keys = registry.keys.pop(settings.GATEWAY.issuer)
    try:
        response = await AsyncClient().get("/readyz")
    finally:
        registry.keys[settings.GATEWAY.issuer] = keys
    assert response.status_code == 503
    assert any(item.startswith("keys:") for item in response.json()["failing"])
    assert "no-store" in response["Cache-Control"]


async def test_readyz_names_an_unreachable_redis() -> None:
    cfg = dataclasses.replace(settings.GATEWAY, redis_url="redis://127.0.0.1:9/0")
    with override_settings(GATEWAY=cfg):
        response = await AsyncClient().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis: ConnectionError"]


async def test_a_handshake_while_the_bus_is_down_is_refused_and_audited(
        audit_log: pytest.LogCaptureFixture) -> None:
    bus.up = False
    try:
        comm = WebsocketCommunicator(application, "/ws/",
                                     headers=[(b"authorization", f"Bearer {token()}".encode())])
        connected, _ = await comm.connect()
        assert connected  # accept-then-close: the client can read the code
        closed = await comm.receive_output()
    finally:
        bus.up = True
    assert closed == {"type": "websocket.close", "code": 1013, "reason": "bus_unavailable"}
    event = audit_events(audit_log)[-1]
    assert (event["outcome"], event["reason"]) == ("deny", "bus_unavailable")


async def test_a_ticket_seen_in_a_url_is_used_up_before_the_refusal() -> None:
    from asgiref.sync import sync_to_async

    ticket = await sync_to_async(store_ticket)("https://issuer", "alice", session_key="s1")
    comm = WebsocketCommunicator(application, f"/ws/?ticket={ticket}",
                                 headers=[(b"origin", ORIGIN.encode())])
    await comm.connect()
    closed = await comm.receive_output()
    assert (closed["code"], closed["reason"]) == (1008, "token_in_url")
    later = WebsocketCommunicator(application, "/ws/", headers=[(b"origin", ORIGIN.encode())],
                                  subprotocols=["gateway.v1", f"gateway.ticket.{ticket}"])
    await later.connect()
    refused = await later.receive_output()
    assert (refused["code"], refused["reason"]) == (4401, "invalid_ticket")
    with pytest.raises(InvalidTicket):
        await redeem_ticket(ticket, now=0)


async def test_an_unseen_ticket_stays_redeemable() -> None:
    from asgiref.sync import sync_to_async

    ticket = await sync_to_async(store_ticket)("https://issuer", "alice", session_key="s1")
    other = await sync_to_async(store_ticket)("https://issuer", "bob", session_key="s2")
    comm = WebsocketCommunicator(application, f"/ws/?ticket={ticket}")
    await comm.connect()
    await comm.receive_output()
    assert (await redeem_ticket(other, now=0)).session_key == "s2"


@pytest.mark.parametrize(("peer", "client", "scheme"), [
    ("10.0.0.5", "203.0.113.9", "https"),  # a trusted proxy: its headers count
    ("127.0.0.1", "127.0.0.1", "http"),  # anyone else: ignored
])
async def test_x_forwarded_headers_count_only_from_trusted_proxies(peer: str, client: str,
                                                                   scheme: str) -> None:
    from config.asgi import behind_proxies

    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: object, send: object) -> None:
        seen.append(scope)

    wrapped = behind_proxies(app, (ipaddress.ip_network("10.0.0.0/24"),))
    await wrapped({"type": "http", "scheme": "http", "client": (peer, 5000),
                   "headers": [(b"x-forwarded-for", b"203.0.113.9"),
                               (b"x-forwarded-proto", b"https")]}, None, None)
    assert (seen[0]["client"][0], seen[0]["scheme"]) == (client, scheme)


def test_no_proxies_means_no_wrapper() -> None:
    from config.asgi import behind_proxies, router

    assert behind_proxies(router, ()) is router


@pytest.mark.parametrize("path", ["/oidc/logout/", "/ws/ticket"])
def test_token_pages_are_never_cached(path: str) -> None:
    from django.test import Client

    response = Client(enforce_csrf_checks=False).post(path)
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize(("setting", "outcome", "reason", "close"), [
    ("refuse", "deny", "groups_overage", (4403, "groups_overage")),
    ("admit", "allow", "groups_overage_admitted", None),
])
async def test_a_groups_overage_token_is_audited_and_follows_the_setting(
        audit_log: pytest.LogCaptureFixture, setting: GroupOverage, outcome: str, reason: str,
        close: tuple[int, str] | None) -> None:
    from gateway.issuers.registry import registry

    issuer = settings.GATEWAY.issuer
    config = registry.issuers[issuer]
    registry.issuers[issuer] = dataclasses.replace(config, group_overage=setting)
    overage = token(groups=["partial"], _claim_names={"groups": "src1"},
                    _claim_sources={"src1": {"endpoint": "https://graph.example/groups"}})
    try:
        comm = WebsocketCommunicator(application, "/ws/",
                                     headers=[(b"authorization", f"Bearer {overage}".encode())])
        assert (await comm.connect())[0]
        first = await comm.receive_output()
    finally:
        registry.issuers[issuer] = config
    event = [e for e in audit_events(audit_log) if e["event"] == "connect"][-1]
    assert (event["outcome"], event["reason"]) == (outcome, reason)
    if close is not None:
        assert (first["code"], first["reason"]) == close
    else:
        principal = json.loads(first["text"])["principal"]
        assert principal["groups"] == [] and principal["groups_overage"] is True
        await comm.disconnect()


def test_the_admin_works_while_the_provider_is_unreachable() -> None:
    """Django builds every auth backend for each permission check: ours reads no discovery
    until a login needs an endpoint (the test issuer at 127.0.0.1:9 never answers)."""
    from django.contrib.auth.models import User
    from django.test import Client

    from gateway.issuers.registry import registry
    from gateway.login.backend import GatewayOIDCBackend
    from oidc.errors import DiscoveryError

    assert settings.GATEWAY.issuer not in registry.metadata
    backend = GatewayOIDCBackend()
    staffer = User.objects.create_user("staffer", is_staff=True)
    assert backend.has_perm(staffer, "gateway.view_grant") is False
    with pytest.raises(DiscoveryError):
        _ = backend.OIDC_OP_TOKEN_ENDPOINT
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.test", "pw"),
                       backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/admin/gateway/grant/").status_code == 200


def test_pages_on_allowed_origins_may_mint_tickets_with_a_bearer_token() -> None:
    from django.test import Client

    client = Client()
    preflight = client.options("/ws/ticket", headers={"origin": ORIGIN,
                                                      "access-control-request-method": "POST"})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    minted = client.post("/ws/ticket", headers={"origin": ORIGIN,
                                                "authorization": f"Bearer {token()}"})
    assert minted.status_code == 200 and minted.json()["ticket"]
    assert minted["Access-Control-Allow-Origin"] == ORIGIN
    assert not minted.has_header("Access-Control-Allow-Credentials")  # never with cookies


def test_other_origins_get_no_cors_permission() -> None:
    from django.test import Client

    foreign = "https://evil.example"
    preflight = Client().options("/ws/ticket", headers={"origin": foreign})
    assert not preflight.has_header("Access-Control-Allow-Origin")
    assert not preflight.has_header("Access-Control-Allow-Methods")
    minted = Client().post("/ws/ticket", headers={"origin": foreign,
                                                  "authorization": f"Bearer {token()}"})
    assert not minted.has_header("Access-Control-Allow-Origin")


async def get_with_host(host: bytes) -> tuple[int, bytes]:
    """GET /healthz through the whole ASGI application with this Host header."""
    scope = {"type": "http", "http_version": "1.1", "method": "GET", "path": "/healthz",
             "raw_path": b"/healthz", "query_string": b"", "scheme": "http",
             "headers": [(b"host", host)], "client": ("198.51.100.7", 50000),
             "server": ("127.0.0.1", 8000)}
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start, body = await comm.receive_output(timeout=5), await comm.receive_output(timeout=5)
    await comm.wait(timeout=5)
    return start["status"], body["body"]


async def test_a_request_for_another_host_is_refused_and_audited(
        audit_log: pytest.LogCaptureFixture) -> None:
    assert await get_with_host(b"evil.example") == (400, b"disallowed_host")
    event = audit_events(audit_log)[-1]
    assert (event["event"], event["outcome"], event["reason"]) == ("http", "deny", "disallowed_host")
    assert (event["detail"], event["route"], event["remote"]) == (
        "Host: evil.example", "/healthz", "198.51.100.7")
    assert not [r for r in audit_log.records if r.name.startswith("django.security")], \
        "refused before Django's own check, which logs a traceback with DEBUG on"
    assert (await get_with_host(b"127.0.0.1:8000"))[0] == 200
