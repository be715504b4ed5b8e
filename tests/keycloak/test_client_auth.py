"""Issue 24 §3: the gateway authenticates at Keycloak's token and introspection endpoints with
each configured method (``GATEWAY_OIDC_CLIENT_AUTH``).

The realm (``deploy/keycloak/realm.json``) has, beside ``gateway`` (client_secret_basic, the
default, used by every other test here), ``gateway-jwt``, a signed-JWT client holding only
the public half of ``tests/keycloak/keys/gateway-jwt.pem`` under kid ``gateway-jwt-test``,
and ``gateway-post``, a secret client the gateway talks to with client_secret_post. For each,
a gateway process runs with that client: a browser login (the code exchange), two server-side
refreshes, then (the gateway's own code in a child process) a client_credentials request
and introspection of the token it returned. Keycloak refuses a client-jwt client
anything but a valid fresh assertion, so the private_key_jwt runs fail if the method broke;
a wrong key is refused as well. What goes on the wire for each method is checked in
``tests/unit/test_client_auth.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import RSAKey

from devidp.stack import ROOT, GatewayProcess, free_port, migrate, start_gateway
from tests.keycloak.conftest import GATEWAY_READY_TIMEOUT, SECRETS, keycloak_gateway_env
from tests.keycloak.flows import login
from tests.keycloak.helpers import access_token_lifespan, next_of_kind, recv_json, session_socket
from tests.keycloak.launcher import Keycloak

KEY_FILE = Path(__file__).parent / "keys" / "gateway-jwt.pem"
KEY_ID = "gateway-jwt-test"
LIFESPAN = 10  # seconds: access tokens are shortened so the sockets refresh twice
CLIENTS = {"private_key_jwt": "gateway-jwt", "client_secret_post": "gateway-post"}


def _client_env(method: str, key_file: Path = KEY_FILE) -> dict[str, str]:
    """The gateway as that client. Its tokens carry only its own audience (the realm keeps
    these test clients out of gateway-api), so this gateway accepts that one."""
    client = {"GATEWAY_OIDC_CLIENT_ID": CLIENTS[method], "GATEWAY_OIDC_CLIENT_AUTH": method,
              "GATEWAY_OIDC_AUDIENCES": CLIENTS[method]}
    if method == "private_key_jwt":
        return client | {"GATEWAY_OIDC_CLIENT_SECRET": "",
                         "GATEWAY_OIDC_CLIENT_KEY_FILE": str(key_file),
                         "GATEWAY_OIDC_CLIENT_KEY_ID": KEY_ID}
    return client | {"GATEWAY_OIDC_CLIENT_SECRET": SECRETS["gateway"]}


def _send_browsers_to(keycloak: Keycloak, client_id: str, url: str) -> None:
    """The realm names gateway 0's URL; this client's gateway runs on its own port."""
    uuid = keycloak.client_uuid(client_id)
    client = keycloak.admin("GET", f"/clients/{uuid}").json()
    client["rootUrl"], client["redirectUris"] = url, [f"{url}/oidc/callback/"]
    assert keycloak.admin("PUT", f"/clients/{uuid}", json=client).status_code == 204


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def method_gateway(request: pytest.FixtureRequest, keycloak: Keycloak,
                   tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[str, GatewayProcess, dict[str, str]]]:
    method: str = request.param
    tmp = tmp_path_factory.mktemp(f"kc-{method}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    _send_browsers_to(keycloak, CLIENTS[method], url)
    env = keycloak_gateway_env(keycloak, port, tmp / "gateway.sqlite3", [url], **_client_env(method))
    migrate(env)
    gateway = start_gateway(port, env, tmp / "gateway.log", ready_timeout=GATEWAY_READY_TIMEOUT)
    try:
        yield method, gateway, env
    finally:
        gateway.stop()


@pytest.fixture
def short_tokens(keycloak: Keycloak) -> Iterator[None]:
    with access_token_lifespan(keycloak, LIFESPAN):
        yield


async def test_login_and_refresh_authenticate_with_the_configured_method(
        method_gateway: tuple[str, GatewayProcess, dict[str, str]], short_tokens: None) -> None:
    method, gateway, _ = method_gateway
    client = login(gateway.url, "bob", "bob-password")  # the code exchange
    ws = await session_socket(gateway.url, client)
    try:
        welcome = await recv_json(ws)
        assert welcome["type"] == "welcome", welcome
        assert welcome["principal"]["client_id"] == CLIENTS[method]
        expires_at = welcome["principal"]["expires_at"]
        for _ in range(2):  # the second refresh uses the refresh token the first one returned
            refreshed = await next_of_kind(ws, "auth.refreshed", LIFESPAN + 10)
            assert refreshed["expires_at"] > expires_at
            expires_at = refreshed["expires_at"]
    finally:
        await ws.close()
    log = gateway.log()
    assert "refresh_failed" not in log and "token_exchange_failed" not in log


SCRIPT = """
import asyncio, json, sys, time
import django
django.setup()
from django.conf import settings
from gateway.handshake.introspect import introspect
from gateway.issuers import http, tokenclient
from gateway.issuers.registry import registry
from oidc.errors import OidcError
from oidc.types import CredentialKind

async def main():
    issuer = settings.GATEWAY.issuer
    await registry.load(issuer)
    # a token of our own (client_credentials): Keycloak introspects only for a client in aud
    answer = await tokenclient.post(registry.metadata[issuer].token_endpoint,
                                    {"grant_type": "client_credentials"})
    token = answer.json().get("access_token") or sys.stdin.read().strip()
    result = {"token_status": answer.status_code}
    try:
        principal = await introspect(token, CredentialKind.BEARER, now=time.time())
        result |= {"client_id": principal.client_id, "format": principal.token_format}
    except OidcError as exc:
        result |= {"error": exc.error, "detail": str(exc)}
    finally:
        await http.aclose()
    print(json.dumps(result))

asyncio.run(main())
"""


def _run(env: dict[str, str], fallback_token: str = "") -> dict[str, Any]:
    """The gateway's own code, configured by ``env``: a client_credentials request at the token
    endpoint, then introspection (gateway.handshake.introspect) of the token it got, or of
    ``fallback_token`` (given on stdin, never on the command line) if it got none."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, input=fallback_token,
                          env={**env, "GATEWAY_OIDC_INTROSPECTION": "true"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_token_requests_and_introspection_authenticate_with_the_configured_method(
        method_gateway: tuple[str, GatewayProcess, dict[str, str]]) -> None:
    method, _, env = method_gateway
    assert _run(env) == {"token_status": 200, "client_id": CLIENTS[method], "format": "opaque"}


def test_a_key_keycloak_does_not_hold_is_refused(keycloak: Keycloak, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(RSAKey.generate_key(2048).as_pem(private=True))
    env = keycloak_gateway_env(keycloak, free_port(), tmp_path / "gateway.sqlite3",
                               ["http://127.0.0.1:1"], **_client_env("private_key_jwt", stranger))
    answer = _run(env, keycloak.client_credentials("publisher")["access_token"])
    assert answer["token_status"] in {400, 401}, answer  # Keycloak: 400 invalid_client
    assert answer["error"] == "keys_unavailable", answer
    assert answer["detail"].endswith(f"introspection answered HTTP {answer['token_status']}")


def test_the_realm_holds_only_the_public_half_of_the_test_key() -> None:
    realm = json.loads((ROOT / "deploy" / "keycloak" / "realm.json").read_text())
    client = next(c for c in realm["clients"] if c["clientId"] == "gateway-jwt")
    (jwk,) = json.loads(client["attributes"]["jwks.string"])["keys"]
    assert "d" not in jwk and jwk["kid"] == KEY_ID
    private = RSAKey.import_key(KEY_FILE.read_bytes())
    assert private.as_dict(private=False)["n"] == jwk["n"]



def test_the_test_clients_get_nothing_from_a_gateway_for_gateway_api() -> None:
    """gateway-jwt's key is public (in this repository): its tokens must not carry the API
    audience real gateways accept, nor the publish scope."""
    realm = json.loads((ROOT / "deploy" / "keycloak" / "realm.json").read_text())
    for client in realm["clients"]:
        if client["clientId"] in CLIENTS.values():
            audiences = {m["config"].get("included.custom.audience")
                         for m in client["protocolMappers"]
                         if m["protocolMapper"] == "oidc-audience-mapper"}
            assert "gateway-api" not in audiences, client["clientId"]
            assert "publish" not in client["defaultClientScopes"] + client["optionalClientScopes"]
