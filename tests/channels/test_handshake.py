"""Handshake middleware in process: credential carriers, policy, Origin, close codes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application
from gateway.issuers.registry import registry
from oidc.discovery import ProviderMetadata
from tests.channels.conftest import ORIGIN, token

pytestmark = pytest.mark.django_db(transaction=True)


def _communicator(path: str = "/ws/", *, headers: list[tuple[bytes, bytes]] | None = None,
                  subprotocols: list[str] | None = None) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=headers or [],
                                 subprotocols=subprotocols)


async def _refusal(comm: WebsocketCommunicator) -> tuple[int, str]:
    connected, _ = await comm.connect()
    assert connected  # accept-then-close, so browsers can read the code
    message = await comm.receive_output()
    assert message["type"] == "websocket.close"
    return message["code"], message.get("reason", "")


async def test_bearer_header_gets_welcome_with_principal() -> None:
    comm = _communicator(headers=[(b"authorization", f"Bearer {token()}".encode())])
    connected, _ = await comm.connect()
    assert connected
    welcome = json.loads(await comm.receive_from())
    assert welcome["principal"]["subject"] == "svc-1"
    assert welcome["principal"]["credential"] == "bearer"
    await comm.disconnect()


async def test_sockets_of_one_token_get_the_same_full_welcome_built_once() -> None:
    from consumers.principal import welcome_frame

    frames, bearer = [], f"Bearer {token()}".encode()
    for _ in range(2):
        comm = _communicator(headers=[(b"authorization", bearer)])
        assert (await comm.connect())[0]
        frames.append(await comm.receive_from())
        await comm.disconnect()
    assert frames[0] == frames[1]
    welcome = json.loads(frames[0])
    assert (welcome["v"], welcome["type"]) == (1, "welcome")
    assert set(welcome["principal"]) == {"subject", "issuer", "client_id", "groups",
                                         "groups_overage", "roles", "scopes", "expires_at",
                                         "credential", "sid"}
    assert frames[0] in [text for _, (text, _) in welcome_frame.values.values()]


async def test_subprotocol_carrier_selects_fixed_name_only() -> None:
    comm = _communicator(subprotocols=["gateway.v1", f"gateway.bearer.{token()}"])
    connected, subprotocol = await comm.connect()
    assert connected
    assert subprotocol == "gateway.v1"
    assert json.loads(await comm.receive_from())["principal"]["credential"] == "subprotocol"
    await comm.disconnect()


async def test_auth_message_carrier() -> None:
    comm = _communicator()
    assert (await comm.connect())[0]
    await comm.send_to(text_data=json.dumps({"type": "auth", "token": token()}))
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    await comm.disconnect()


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"exp": 1}, "expired_token"),
    ({"aud": "someone-else"}, "invalid_audience"),
    ({"iss": "https://evil.example"}, "unknown_issuer"),
])
async def test_bad_tokens_close_4401_with_reason(overrides: dict[str, Any], reason: str) -> None:
    comm = _communicator(headers=[(b"authorization", f"Bearer {token(**overrides)}".encode())])
    assert await _refusal(comm) == (4401, reason)


async def test_missing_scope_closes_4403() -> None:
    comm = _communicator("/ws/ops/", headers=[(b"authorization", f"Bearer {token()}".encode())])
    assert await _refusal(comm) == (4403, "missing_scope")


async def test_scope_present_is_allowed() -> None:
    comm = _communicator("/ws/ops/", headers=[(b"authorization",
                                               f"Bearer {token(scope='ws ops')}".encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    await comm.disconnect()


async def test_token_in_query_string_closes_1008() -> None:
    comm = _communicator(f"/ws/?access_token={token()}")
    assert await _refusal(comm) == (1008, "token_in_url")


async def test_undeclared_route_closes_4404() -> None:
    comm = _communicator("/ws/secret/", headers=[(b"authorization", f"Bearer {token()}".encode())])
    assert await _refusal(comm) == (4404, "no_route")


async def test_foreign_origin_refused_before_accept() -> None:
    comm = _communicator(headers=[(b"origin", b"https://evil.example"),
                                  (b"authorization", f"Bearer {token()}".encode())])
    connected, _ = await comm.connect()
    assert not connected


async def test_allowed_origin_with_bearer_is_fine() -> None:
    comm = _communicator(headers=[(b"origin", ORIGIN.encode()),
                                  (b"authorization", f"Bearer {token()}".encode())])
    assert (await comm.connect())[0]
    await comm.disconnect()


async def test_cookie_without_origin_closes_4403() -> None:
    comm = _communicator(headers=[(b"cookie", b"sessionid=abc")])
    assert await _refusal(comm) == (4403, "origin_required")


async def test_unknown_session_closes_4401() -> None:
    comm = _communicator(headers=[(b"cookie", b"sessionid=abc"), (b"origin", ORIGIN.encode())])
    assert await _refusal(comm) == (4401, "no_session")


@pytest.mark.parametrize("frame", ["{not json", "[" * 19_000, '{"type": "auth", "token": NaN}'],
                         ids=["not json", "nested past the recursion limit", "NaN"])
async def test_invalid_auth_message_closes_4401(frame: str) -> None:
    comm = _communicator()
    assert (await comm.connect())[0]
    await comm.send_to(text_data=frame)
    message = await comm.receive_output()
    assert (message["code"], message["reason"]) == (4401, "invalid_auth_message")


@pytest.mark.parametrize(("frame", "reason"), [
    ('{"type": "auth", "ticket": "\\ud800"}', "invalid_ticket"),
    ('{"type": "auth", "ticket": "caf\u00e9"}', "invalid_ticket"),
    ('{"type": "auth", "token": "\\ud800"}', "malformed_token"),
])
async def test_a_credential_no_encoder_can_write_closes_4401_not_1011(frame: str, reason: str) -> None:
    comm = _communicator()
    assert (await comm.connect())[0]
    await comm.send_to(text_data=frame)
    message = await comm.receive_output()
    assert (message["code"], message["reason"]) == (4401, reason)


async def test_revoke_event_closes_socket_4401() -> None:
    from channels.layers import get_channel_layer

    from gateway.sockets.addressing import revoke, subject_group
    from tests.channels.conftest import ISSUER

    comm = _communicator(headers=[(b"authorization", f"Bearer {token()}".encode())])
    assert (await comm.connect())[0]
    await comm.receive_from()
    group = subject_group(ISSUER, "svc-1")
    await get_channel_layer().group_send(group, revoke(group, "logged_out"))
    message = await comm.receive_output()
    assert (message["type"], message["code"]) == ("websocket.close", 4401)


async def test_expiring_notice_then_close_4401_at_expiry() -> None:
    import time

    expires_at = time.time() + 1.0  # default lead is 60 s, so the notice comes at once
    comm = _communicator(headers=[(b"authorization", f"Bearer {token(exp=expires_at)}".encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    notice = json.loads(await comm.receive_from())
    assert notice["type"] == "auth.expiring"
    assert notice["expires_at"] == pytest.approx(expires_at)
    closing = await comm.receive_output(timeout=5)
    assert (closing["type"], closing["code"], closing["reason"]) == ("websocket.close", 4401,
                                                                      "expired")
    assert time.time() >= expires_at - 0.05


async def test_verified_token_is_cached_until_its_key_leaves_the_jwks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.handshake import authn
    from gateway.issuers.registry import registry
    from oidc.jwks import JwksCache
    from oidc.types import Principal
    from oidc.verify import verify_access_token
    from tests.channels.conftest import ISSUER
    from tests.unit.factories import KEY2, jwks_of

    authn.verified_jwts._entries.clear()
    calls: list[int] = []
    real = verify_access_token  # what authn calls, until patched below

    async def counting(*args: Any, **kwargs: Any) -> Principal:
        calls.append(1)
        return await real(*args, **kwargs)

    monkeypatch.setattr(authn, "verify_access_token", counting)
    bearer = [(b"authorization", f"Bearer {token(jti='cache-1')}".encode())]
    for _ in range(3):
        comm = _communicator(headers=bearer)
        assert (await comm.connect())[0]
        await comm.disconnect()
    assert len(calls) == 1  # verified once, then served from the cache

    registry.keys[ISSUER] = JwksCache.from_keys(jwks_of(KEY2), jwks_uri="static:rotated")
    assert await _refusal(_communicator(headers=bearer)) == (4401, "unknown_kid")
    assert len(calls) == 2  # the cached entry was not trusted once k1 was gone


async def test_a_socket_never_hops_to_the_database_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Channels 4.3 runs close_old_connections in a thread before every handler; our
    consumers skip it (gateway.ops.lifespan does it once a minute), so a bearer socket's
    connect, frames and disconnect cost no thread hop."""
    import channels.consumer
    import channels.generic.websocket

    hops: list[str] = []

    async def counted() -> None:
        hops.append("hop")

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counted)
    monkeypatch.setattr(channels.generic.websocket, "aclose_old_connections", counted)
    comm = _communicator(headers=[(b"authorization", f"Bearer {token()}".encode())])
    assert (await comm.connect())[0]
    assert json.loads(await comm.receive_from())["type"] == "welcome"
    await comm.send_to(text_data="{}")
    assert json.loads(await comm.receive_from())["type"] == "error"
    await comm.disconnect()
    assert hops == []


@pytest.mark.parametrize("headers", [
    [(b"authorization", f"Bearer {token()}".encode()), (b"authorization", b"Bearer other")],
    [(b"authorization", f"Bearer {token()}".encode())] * 2,
    [(b"authorization", f"Basic {token()}".encode())],
    [(b"authorization", b"Bearer    ")],
])
async def test_duplicate_or_malformed_authorization_is_refused(headers: list[tuple[bytes, bytes]]) -> None:
    """Two Authorization fields are ambiguous (a proxy may forward either), so neither counts."""
    assert await _refusal(_communicator(headers=headers)) == (4401, "invalid_token")


async def test_a_refused_token_is_audited_with_its_kind_kid_and_jti_hash(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.handshake.middleware

    events: list[dict[str, Any]] = []
    monkeypatch.setattr(gateway.handshake.middleware, "audit",
                        lambda event, outcome, reason, **fields: events.append(
                            {"event": event, "outcome": outcome, "reason": reason, **fields}))
    bad = token(aud="someone-else", jti="jti-secret")
    comm = _communicator(subprotocols=["gateway.v1", f"gateway.bearer.{bad}"])
    assert await _refusal(comm) == (4401, "invalid_audience")
    [event] = events
    assert (event["outcome"], event["credential"], event["kid"]) == ("deny", "subprotocol", "k1")
    assert len(event["jti_hash"]) == 16 and "jti-secret" not in json.dumps(event)
    assert bad not in json.dumps(event)


async def test_an_unreachable_introspection_endpoint_closes_1013_not_1011(settings: Any) -> None:
    settings.GATEWAY = dataclasses.replace(settings.GATEWAY, introspection=True)
    issuer = settings.GATEWAY.issuer
    before = registry.metadata.get(issuer)
    registry.metadata[issuer] = ProviderMetadata(
        issuer=issuer, authorization_endpoint=f"{issuer}/auth", token_endpoint=f"{issuer}/token",
        jwks_uri=f"{issuer}/jwks", introspection_endpoint="http://127.0.0.1:1/introspect")
    try:
        comm = _communicator(headers=[(b"authorization", b"Bearer an-opaque-token")])
        assert await _refusal(comm) == (1013, "keys_unavailable")
    finally:
        if before is None:
            registry.metadata.pop(issuer, None)
        else:
            registry.metadata[issuer] = before
