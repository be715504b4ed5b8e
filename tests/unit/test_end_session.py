"""RP-Initiated Logout request (oidc.end_session) and the end_session_method setting."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.conf.env import load_config
from gateway.conf.values import ConfigError
from oidc.config import EndSessionMethod, IssuerConfig
from oidc.end_session import EndSessionRequest, end_session_request
from tests.unit.test_config_env import BASE

ENDPOINT = "https://idp.example.com/logout"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"


def _request(method: EndSessionMethod, endpoint: str = ENDPOINT) -> EndSessionRequest:
    return end_session_request(endpoint, method,
                               client_id="gw", post_logout_redirect_uri="https://gw.example.com/",
                               state="s1", id_token=ID_TOKEN)


def test_get_puts_no_token_in_the_url() -> None:
    leave = _request("GET")
    assert leave.method == "GET" and leave.form == {} and ID_TOKEN not in leave.url
    assert parse_qs(urlsplit(leave.url).query) == {
        "client_id": ["gw"], "post_logout_redirect_uri": ["https://gw.example.com/"],
        "state": ["s1"]}


def test_get_keeps_the_endpoints_own_query_and_overrides_ours() -> None:
    leave = _request("GET", ENDPOINT + "?p=B2C_1_signin&state=theirs")
    query = parse_qs(urlsplit(leave.url).query)
    assert query["p"] == ["B2C_1_signin"] and query["state"] == ["s1"]


def test_post_carries_the_hint_in_the_form_only() -> None:
    leave = _request("POST")
    assert leave.url == ENDPOINT and leave.state == "s1"
    assert leave.form == {"client_id": "gw", "post_logout_redirect_uri": "https://gw.example.com/",
                          "state": "s1", "id_token_hint": ID_TOKEN}


def test_the_method_defaults_to_get_and_is_validated() -> None:
    assert load_config(BASE).end_session_method == "GET"
    assert load_config({**BASE, "GATEWAY_OIDC_END_SESSION_METHOD": " post "}).end_session_method == "POST"
    with pytest.raises(ConfigError, match=r"GATEWAY_OIDC_END_SESSION_METHOD.*GET"):
        load_config({**BASE, "GATEWAY_OIDC_END_SESSION_METHOD": "redirect"})
    assert IssuerConfig("https://i", frozenset({"a"})).end_session_method == "GET"
    with pytest.raises(ValueError, match="end_session_method"):
        IssuerConfig("https://i", frozenset({"a"}), end_session_method="PUT")  # type: ignore[arg-type]
