"""Issue 11 §4: server-side session refresh against Keycloak's rotating refresh tokens.

The realm rotates refresh tokens (``revokeRefreshToken`` with no reuse): a gateway that kept
using the first refresh token would be refused at the second refresh. Access tokens are
shortened to 10 s for this module through the admin API; the gateways refresh 4 s before
expiry (GATEWAY_EXPIRY_NOTICE_SECONDS).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.keycloak.conftest import KeycloakStack
from tests.keycloak.flows import login
from tests.keycloak.helpers import (
    access_token_lifespan,
    close_of,
    next_of_kind,
    recv_json,
    session_socket,
    temporary_user,
)

LIFESPAN = 10
CAROL = {"username": "carol", "enabled": True, "email": "carol@example.test",
         "emailVerified": True, "firstName": "Carol", "lastName": "Demo",
         "groups": ["/engineering"],
         "credentials": [{"type": "password", "value": "carol-password", "temporary": False}]}


@pytest.fixture
def short_tokens(kc_stack: KeycloakStack) -> Iterator[None]:
    with access_token_lifespan(kc_stack.keycloak, LIFESPAN):
        yield


@pytest.fixture
def carol(kc_stack: KeycloakStack, short_tokens: None) -> Iterator[str]:
    with temporary_user(kc_stack.keycloak, CAROL) as user_id:
        yield user_id


async def test_rotating_refresh_keeps_sockets_open_then_disabled_user_closes_them(
        kc_stack: KeycloakStack, carol: str) -> None:
    client = login(kc_stack.gateway, "carol", "carol-password")
    sockets = [await session_socket(gateway.url, client) for gateway in kc_stack.gateways]
    expiries = [(await recv_json(ws))["principal"]["expires_at"] for ws in sockets]
    # two refreshes in a row: the second one needs the refresh token the first one returned
    for _ in range(2):
        refreshed = await asyncio.gather(*(next_of_kind(ws, "auth.refreshed", LIFESPAN + 5)
                                           for ws in sockets))
        new = [frame["expires_at"] for frame in refreshed]
        assert all(after > before for after, before in zip(new, expiries, strict=True))
        expiries = new
    assert kc_stack.keycloak.admin("PUT", f"/users/{carol}", json={"enabled": False}
                                   ).status_code == 204
    closes = await asyncio.gather(*(close_of(ws, LIFESPAN + 5) for ws in sockets))
    assert closes == [(4401, "refresh_failed")] * len(sockets)
