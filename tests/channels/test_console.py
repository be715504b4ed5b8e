"""``/console/``: the signed-in page's starting state, and its websocket URL."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from gateway.console.views import websocket_url
from gateway.grants.store import cache
from gateway.login.sessions import AUTH_KEY
from gateway.models import Grant
from tests.channels.conftest import ISSUER

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(groups: list[str]) -> Client:
    client = Client()
    client.force_login(User.objects.create(username="alice"),
                       backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    expires_at = time.time() + 300
    session[AUTH_KEY] = {"expires_at": expires_at, "claims": {
        "issuer": ISSUER, "subject": "alice-sub", "sid": "s-1", "groups": groups, "roles": ["viewer"],
        "scopes": ["ws"], "expires_at": expires_at, "client_id": "gateway"}}
    session.save()
    return client


def console_config(client: Client) -> dict[str, Any]:
    response = client.get("/console/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    text = response.content.decode()
    start = text.index('<script id="console-config" type="application/json">') + 52
    config: dict[str, Any] = json.loads(text[start:text.index("</script>", start)])
    return config


def test_the_console_shows_the_principal_and_what_its_grants_allow() -> None:
    cache.clear()
    Grant.objects.create(issuer=ISSUER, claim="groups", value="engineering", target="deploys",
                         subscribe=True, publish=True)
    Grant.objects.create(issuer=ISSUER, claim="groups", value="admins", target="alerts.*",
                         subscribe=True)
    config = console_config(signed_in(["engineering"]))
    assert config["principal"]["subject"] == "alice-sub"
    assert config["principal"]["groups"] == ["engineering"]
    assert config["principal"]["username"] == "alice"
    assert config["channels"] == [{"channel": "deploys", "operations": ["publish", "subscribe"]}]
    assert config["websocket_url"] == "ws://127.0.0.1:8000/ws/events/"


def test_anonymous_visitors_are_sent_to_sign_in() -> None:
    response = Client().get("/console/")
    assert response.status_code == 302
    assert response["Location"].startswith("/oidc/authenticate/")


@pytest.mark.parametrize(("public", "expected"), [
    ("https://gw.example.com", "wss://gw.example.com/ws/events/"),
    ("https://example.com/gateway", "wss://example.com/gateway/ws/events/"),
    ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/ws/events/"),
])
def test_websocket_url_follows_the_public_url(public: str, expected: str) -> None:
    assert websocket_url(public, "/ws/events/") == expected
