"""Issue 20 at the shipped defaults: the twins of the scenarios that shrink lifetime knobs.

The rest of the tier runs its gateways with a 4 s expiry notice and a 1 s JWKS refetch
interval to save time. Here both gateway processes are restarted with every lifetime knob
at its default (GATEWAY_EXPIRY_NOTICE_SECONDS 60, GATEWAY_JWKS_MIN_REFETCH_SECONDS 10), and
Keycloak issues 60 s access tokens, a lifespan companies set:
- one browser session makes at most one refresh per token lifetime, counted by Keycloak
  (its REFRESH_TOKEN events, recorded for the whole run: ``conftest.py``), while its
  sockets on both processes stay open; a bearer socket hears one ``auth.expiring`` per
  token;
- two signing-key rotations 5 s apart (the second to a new ES256 key) are each accepted at
  once on both processes, for bearer tokens and for a browser sign-in.

5-minute tokens, the other lifespan companies set, are watched at the defaults by
``test_five_minute_tokens.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from devidp.stack import start_gateway
from tests.keycloak.conftest import GATEWAY_READY_TIMEOUT, KeycloakStack
from tests.keycloak.flows import login
from tests.keycloak.helpers import (
    access_token_lifespan,
    bearer_socket,
    jose_header,
    recv_json,
    refresh_token_events,
    session_socket,
    temporary_user,
    welcome,
)
from tests.keycloak.test_keys import KEY_PROVIDER

LIFESPAN = 60  # seconds: Keycloak's access tokens in this module
SHRUNK = ("GATEWAY_EXPIRY_NOTICE_SECONDS", "GATEWAY_JWKS_MIN_REFETCH_SECONDS")
DORA = {"username": "dora", "enabled": True, "email": "dora@example.test",
        "emailVerified": True, "firstName": "Dora", "lastName": "Demo",
        "groups": ["/engineering"],
        "credentials": [{"type": "password", "value": "dora-password", "temporary": False}]}


def _restart(stack: KeycloakStack, envs: list[dict[str, str]], tag: str) -> None:
    for index, gateway in enumerate(stack.gateways):
        gateway.stop()
        stack.gateways[index] = start_gateway(gateway.port, envs[index],
                                              stack.tmp / f"gateway{index}-{tag}.log",
                                              ready_timeout=GATEWAY_READY_TIMEOUT)


@pytest.fixture(scope="module")
def defaults(kc_stack: KeycloakStack) -> Iterator[KeycloakStack]:
    """Both gateways restarted with the lifetime knobs at their defaults (then restored)."""
    shipped = [{**{k: v for k, v in env.items() if k not in SHRUNK},
                "GATEWAY_METRICS_NETWORKS": "127.0.0.1/32"} for env in kc_stack.envs]
    _restart(kc_stack, shipped, "defaults")
    try:
        yield kc_stack
    finally:
        _restart(kc_stack, kc_stack.envs, "restored")


@pytest.fixture(scope="module")
def sixty_second_tokens(defaults: KeycloakStack) -> Iterator[None]:
    with access_token_lifespan(defaults.keycloak, LIFESPAN):
        yield


@pytest.fixture
def dora(defaults: KeycloakStack) -> Iterator[str]:
    with temporary_user(defaults.keycloak, DORA) as user_id:
        yield user_id


async def _session_frames(ws: ClientConnection, seconds: float) -> list[dict[str, Any]]:
    """Every frame the server sends on ``ws`` for ``seconds`` (the socket must stay open)."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(await recv_json(ws, left))
        except TimeoutError:
            break
    return frames


async def _bearer_notices(stack: KeycloakStack, gateway: str, seconds: float) -> list[float]:
    """A service socket that answers each ``auth.expiring`` with a fresh 60 s token; the
    seconds from each answer to the next notice."""
    keycloak = stack.keycloak
    ws = await bearer_socket(gateway, keycloak.client_credentials("publisher")["access_token"])
    gaps: list[float] = []
    answered = time.monotonic()
    deadline = answered + seconds
    try:
        assert (await recv_json(ws))["type"] == "welcome"
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = await recv_json(ws, left)
            except TimeoutError:
                break
            if frame["type"] != "auth.expiring":
                continue
            gaps.append(time.monotonic() - answered)
            fresh = await asyncio.to_thread(keycloak.client_credentials, "publisher")
            await ws.send(f'{{"v": 1, "type": "auth", "id": {len(gaps)}, '
                          f'"token": "{fresh["access_token"]}"}}')
            answered = time.monotonic()
    finally:
        await ws.close()
    return gaps


async def test_sixty_second_tokens_refresh_once_per_lifetime_at_the_defaults(
        defaults: KeycloakStack, sixty_second_tokens: None, dora: str) -> None:
    window = 2 * LIFESPAN + 15
    client = login(defaults.gateway, "dora", "dora-password")
    sockets = [await session_socket(gateway.url, client) for gateway in defaults.gateways]
    for ws in sockets:
        assert (await recv_json(ws))["type"] == "welcome"
    started = time.monotonic()
    seen, gaps = await asyncio.gather(
        asyncio.gather(*(_session_frames(ws, window) for ws in sockets)),
        _bearer_notices(defaults, defaults.gateways[1].url, window))
    lifetimes = (time.monotonic() - started) / LIFESPAN

    refreshes = refresh_token_events(defaults.keycloak, dora)
    assert 2 <= refreshes <= int(lifetimes) + 1, (
        f"{refreshes} refresh-token requests in {lifetimes:.1f} token lifetimes")
    for frames in seen:  # each socket: a notice, then the shared refresh, each lifetime
        kinds = [frame["type"] for frame in frames if frame["type"].startswith("auth.")]
        assert kinds == ["auth.expiring", "auth.refreshed"] * 2, kinds
    for ws in sockets:
        assert ws.close_code is None, "the session's sockets stay open across refreshes"
        await ws.close()
    # one notice per 60 s token, about 5/6 of its lifetime after it was handed over
    assert len(gaps) == 2, gaps
    assert all(LIFESPAN * 0.75 <= gap <= LIFESPAN for gap in gaps), gaps


def _add_key(stack: KeycloakStack, provider: str, algorithm: str, priority: int) -> str:
    keycloak = stack.keycloak
    realm_id = keycloak.admin("GET", "").json()["id"]
    config: dict[str, list[str]] = {"priority": [str(priority)], "enabled": ["true"],
                                    "active": ["true"], "algorithm": [algorithm]}
    if provider == "ecdsa-generated":
        config["ecdsaEllipticCurveKey"] = ["P-256"]
    else:
        config["keySize"] = ["2048"]
    created = keycloak.admin("POST", "/components", json={
        "name": f"{provider}-{priority}", "providerId": provider,
        "providerType": KEY_PROVIDER, "parentId": realm_id, "config": config})
    assert created.status_code == 201, created.text
    return str(created.headers["location"].rsplit("/", 1)[-1])


def _set_signature_algorithm(stack: KeycloakStack, algorithm: str) -> None:
    assert stack.keycloak.admin("PUT", "", json={"defaultSignatureAlgorithm": algorithm}
                                ).status_code == 204


def _jwks_fetches(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("gateway_jwks_fetches_total{"))


async def test_two_rotations_five_seconds_apart_are_accepted_at_once_everywhere(
        defaults: KeycloakStack, dora: str) -> None:
    keycloak = defaults.keycloak
    before = keycloak.client_credentials("publisher")["access_token"]
    for gateway in defaults.gateways:  # both processes have just fetched the keys
        assert (await welcome(gateway.url, token=before))["client_id"] == "publisher"
    added: list[str] = []
    try:
        added.append(_add_key(defaults, "rsa-generated", "RS256", 3000))
        first = keycloak.client_credentials("publisher")["access_token"]
        assert jose_header(first)["kid"] != jose_header(before)["kid"]
        for gateway in defaults.gateways:
            assert (await welcome(gateway.url, token=first))["client_id"] == "publisher"
        await asyncio.sleep(5)
        added.append(_add_key(defaults, "ecdsa-generated", "ES256", 4000))
        _set_signature_algorithm(defaults, "ES256")
        second = keycloak.client_credentials("publisher")["access_token"]
        assert jose_header(second)["alg"] == "ES256"
        for gateway in defaults.gateways:
            assert (await welcome(gateway.url, token=second))["client_id"] == "publisher"
        # a browser sign-in: the ID token from the token endpoint is signed with the new key
        client = await asyncio.to_thread(login, defaults.gateway, "dora", "dora-password")
        assert (await welcome(defaults.gateway, client=client))["subject"]
    finally:
        _set_signature_algorithm(defaults, "RS256")
        for component in added:
            keycloak.admin("DELETE", f"/components/{component}")


async def test_a_flood_of_unknown_kids_costs_a_bounded_number_of_fetches(
        defaults: KeycloakStack) -> None:
    """Forged kids: 3 fetches at once, then one per 10 s (the default), per process."""
    keycloak = defaults.keycloak
    real = keycloak.client_credentials("publisher")["access_token"]
    head, body, signature = real.split(".")
    gateway = defaults.gateways[0].url
    before = _jwks_fetches(gateway)
    started = time.monotonic()
    for n in range(40):
        forged_header = jose_header(real) | {"kid": f"forged-{n}"}
        forged = ".".join([_b64(forged_header), body, signature])
        ws = await bearer_socket(gateway, forged)
        await ws.wait_closed()
        assert ws.close_code == 4401
    elapsed = time.monotonic() - started
    fetched = _jwks_fetches(gateway) - before
    assert fetched <= 3 + elapsed / 10 + 1, f"{fetched} JWKS fetches in {elapsed:.1f} s"
    assert head  # the real header was replaced, not reused


def _b64(header: dict[str, Any]) -> str:
    raw = json.dumps(header, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
