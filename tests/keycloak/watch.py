"""Five-minute access tokens at every lifetime knob's default, watched beside the rest of the tier.

The Keycloak twin of the 300 s site in ``tests/e2e/test_defaults.py`` (issue 20 point 4).
Everything it touches is its own, so the other modules' changes to the realm cannot reach it:

- the client ``gateway-5min`` (made through the admin API, not the realm file) carries the
  per-client override ``access.token.lifespan`` = 300, which Keycloak applies before the
  realm's lifespan (TokenManager.getTokenExpiration), so the 10 s and 60 s lifespans other
  modules set on the realm meanwhile do not shorten its tokens; it logs in browsers and, with
  its service account, issues the bearer token;
- the user ``erin``, and one gateway process with GATEWAY_EXPIRY_NOTICE_SECONDS and
  GATEWAY_JWKS_MIN_REFETCH_SECONDS unset (60 and 10 s; the refresh has no knob: it happens
  at the notice), its own SQLite file and no Redis.

Key rotations in other modules (test_keys.py disables the old keys) do not disturb it: the
gateway verifies a bearer token only at connect and in an ``auth`` message, and a refreshed
ID token once, refetching the JWKS for a new ``kid``.

The watch lasts 265 s from the tokens' issue: the notice is due 5/6 of the lifetime in
(250 s). It mostly waits, so the ``keycloak`` fixture starts it in a thread as soon as
Keycloak is ready, when the run selected ``test_five_minute_tokens.py``; those tests run last
and read what it saw (``conftest.py``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from devidp.stack import GatewayProcess, free_port, gateway_env, migrate, start_gateway
from tests.e2e.flows import frames_until
from tests.keycloak.flows import login
from tests.keycloak.helpers import bearer_socket, refresh_token_events, session_socket, temporary_user
from tests.keycloak.launcher import Keycloak

LIFESPAN = 300  # seconds: the client's access tokens
WATCH = 265.0  # seconds from the tokens' issue
CLIENT_ID, SECRET = "gateway-5min", "gateway-5min-secret-for-tests"
API_AUDIENCE = "gateway-api"
KNOBS = ("GATEWAY_EXPIRY_NOTICE_SECONDS", "GATEWAY_JWKS_MIN_REFETCH_SECONDS")
ERIN = {"username": "erin", "enabled": True, "email": "erin@example.test",
        "emailVerified": True, "firstName": "Erin", "lastName": "Demo", "groups": ["/engineering"],
        "credentials": [{"type": "password", "value": "erin-password", "temporary": False}]}
SESSION_SOCKETS = 2  # of one browser session: they share one refresh


def client_representation(gateway: str) -> dict[str, Any]:
    """Like the realm's ``gateway`` client, plus a service account and 5-minute tokens."""
    return {
        "clientId": CLIENT_ID, "protocol": "openid-connect", "enabled": True,
        "publicClient": False, "clientAuthenticatorType": "client-secret", "secret": SECRET,
        "standardFlowEnabled": True, "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False, "serviceAccountsEnabled": True,
        "frontchannelLogout": False, "redirectUris": [f"{gateway}/oidc/callback/"],
        "webOrigins": ["+"],
        "defaultClientScopes": ["basic", "profile", "email", "roles", "web-origins", "acr", "ws",
                                "service_account"],
        "attributes": {"access.token.lifespan": str(LIFESPAN),
                       "pkce.code.challenge.method": "S256"},
        "protocolMappers": [{
            "name": "gateway-api audience", "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper",
            "config": {"included.custom.audience": API_AUDIENCE, "access.token.claim": "true",
                       "id.token.claim": "false", "introspection.token.claim": "true"}}]}


def create_client(keycloak: Keycloak, gateway: str) -> None:
    """Left in the throwaway realm: ``test_five_minute_tokens.py`` asks it for tokens last."""
    created = keycloak.admin("POST", "/clients", json=client_representation(gateway))
    assert created.status_code == 201, created.text


def client_token(keycloak: Keycloak) -> dict[str, Any]:
    response = httpx.post(keycloak.endpoint("token"), data={"grant_type": "client_credentials"},
                          auth=(CLIENT_ID, SECRET), timeout=20)
    assert response.status_code == 200, response.text
    return dict(response.json())


def start_defaults_gateway(keycloak: Keycloak, port: int, tmp: Path) -> GatewayProcess:
    """One gateway for the client, every lifetime knob at its shipped default."""
    url = f"http://127.0.0.1:{port}"
    env = gateway_env(keycloak.issuer, port, database_file=tmp / "gateway-5min.sqlite3", extra={
        "GATEWAY_OIDC_PROFILE": "keycloak", "GATEWAY_OIDC_CLIENT_ID": CLIENT_ID,
        "GATEWAY_OIDC_CLIENT_SECRET": SECRET, "GATEWAY_OIDC_SCOPES": "openid profile email",
        "GATEWAY_OIDC_AUDIENCES": API_AUDIENCE, "GATEWAY_OIDC_INTROSPECTION": "false",
        "GATEWAY_ALLOWED_ORIGINS": url, "GATEWAY_METRICS_NETWORKS": "127.0.0.1/32"})
    assert not set(KNOBS) & set(env), "every lifetime knob at its shipped default"
    migrate(env)
    return start_gateway(port, env, tmp / "gateway-5min.log", ready_timeout=90)


@dataclass
class Seen:
    """What one socket saw: frames with their seconds since its token was issued, the
    wall-clock time each arrived, and how it ended (None: open when the watch ended)."""

    frames: list[tuple[float, float, dict[str, Any]]] = field(default_factory=list)
    closed: tuple[float, int, str] | None = None

    def kinds(self, prefix: str = "") -> list[str]:
        return [frame["type"] for _, _, frame in self.frames if frame["type"].startswith(prefix)]

    def of(self, kind: str) -> list[tuple[float, float, dict[str, Any]]]:
        return [entry for entry in self.frames if entry[2]["type"] == kind]


@dataclass
class Outcome:
    sessions: list[Seen]
    bearer: Seen
    session_lifetime: float  # the welcome's expires_at minus the login's start
    bearer_lifetime: float  # expires_in of the client_credentials token
    refreshes_at_keycloak: int  # REFRESH_TOKEN events for erin
    refreshes_at_gateway: float  # gateway_session_refreshes_total{outcome="refreshed"}


async def _record(ws: ClientConnection, seen: Seen, began: float,
                  keycloak: Keycloak | None = None) -> None:
    """Record ``ws`` until the watch ends; with ``keycloak``, answer each ``auth.expiring``
    with a fresh token of the client, as a bearer client should."""
    try:
        async for frame in frames_until(ws, began + WATCH):
            seen.frames.append((time.monotonic() - began, time.time(), frame))
            if keycloak is not None and frame["type"] == "auth.expiring":
                fresh = await asyncio.to_thread(client_token, keycloak)
                await ws.send(json.dumps({"type": "auth", "token": fresh["access_token"]}))
    except ConnectionClosed as closed:
        code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        seen.closed = (time.monotonic() - began, code, reason)
    finally:
        await ws.close()


def _refreshes_at_gateway(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('gateway_session_refreshes_total{outcome="refreshed"}'))


async def _observe(keycloak: Keycloak, gateway: str, user_id: str) -> Outcome:
    login_started = time.time()
    client = await asyncio.to_thread(login, gateway, "erin", "erin-password")
    began = time.monotonic()  # the session's tokens were issued just now
    sessions = [await session_socket(gateway, client) for _ in range(SESSION_SOCKETS)]
    bearer_began = time.monotonic()
    token = await asyncio.to_thread(client_token, keycloak)
    bearer = await bearer_socket(gateway, token["access_token"])
    seen = [Seen() for _ in sessions]
    bearer_seen = Seen()
    await asyncio.gather(*(_record(ws, s, began) for ws, s in zip(sessions, seen, strict=True)),
                         _record(bearer, bearer_seen, bearer_began, keycloak))
    welcome = seen[0].of("welcome")[0][2]
    return Outcome(seen, bearer_seen, welcome["principal"]["expires_at"] - login_started,
                   float(token["expires_in"]), refresh_token_events(keycloak, user_id),
                   await asyncio.to_thread(_refreshes_at_gateway, gateway))


class FiveMinuteWatch:
    """The client, the user, the gateway and the watch, run in a thread once Keycloak is up."""

    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.gateway: GatewayProcess | None = None
        self.thread: threading.Thread | None = None

    def start(self, keycloak: Keycloak, tmp: Path) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, args=(keycloak, tmp),
                                           name="five-minute-watch", daemon=True)
            self.thread.start()

    def _run(self, keycloak: Keycloak, tmp: Path) -> None:
        try:
            port = free_port()
            create_client(keycloak, f"http://127.0.0.1:{port}")
            with temporary_user(keycloak, ERIN) as user_id:
                self.gateway = start_defaults_gateway(keycloak, port, tmp)
                self.outcome = asyncio.run(_observe(keycloak, self.gateway.url, user_id))
        except BaseException as exc:  # reported by the tests that wait for it
            self.error = exc
        finally:
            self.stop()

    def result(self) -> Outcome:
        assert self.thread is not None, "the keycloak fixture starts the watch"
        self.thread.join(WATCH + 300)
        if self.error is not None:
            raise self.error
        assert self.outcome is not None, "the five-minute watch did not finish"
        return self.outcome

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None


FIVE_MINUTES = FiveMinuteWatch()
