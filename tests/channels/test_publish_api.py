"""`POST /api/publish` in process: token, scope, body checks, and delivery to the group."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from channels.layers import get_channel_layer
from django.test import AsyncClient

from oidc.channels import group_name
from oidc.types import ChannelName
from tests.channels.conftest import token

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedASGIResponse

pytestmark = pytest.mark.django_db(transaction=True)


async def post(body: object, *, bearer: str | None = None, content_type: str = "application/json",
               raw: bytes | None = None) -> _MonkeyPatchedASGIResponse:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    data = raw if raw is not None else json.dumps(body)
    return await AsyncClient().post("/api/publish", data=data, content_type=content_type,
                                    headers=headers)


async def test_publish_is_accepted_and_reaches_the_channel_group() -> None:
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(group_name(ChannelName("deploys")), listener)
    response = await post({"channel": "Deploys", "payload": {"v": 1}},
                          bearer=token(scope="ws publish"))
    assert response.status_code == 202, response.content
    event = await layer.receive(listener)
    assert (event["type"], event["channel"], event["payload"]) == (
        "pubsub.message", "deploys", {"v": 1})
    assert event["mid"] == response.json()["mid"]


@pytest.mark.parametrize(("kwargs", "status", "error"), [
    ({"body": {"channel": "deploys", "payload": 1}}, 401, "not_authenticated"),
    ({"body": {"channel": "deploys", "payload": 1}, "bearer": "junk"}, 401, None),
    ({"body": {"channel": "deploys", "payload": 1}, "bearer": token(scope="ws")}, 403,
     "insufficient_scope"),
    ({"body": {"channel": "deploys", "payload": 1}, "bearer": token(scope="ws publish",
                                                                    exp=1)}, 401, "expired_token"),
    ({"body": None, "raw": b"{", "bearer": token(scope="publish")}, 400, "invalid_json"),
    ({"body": None, "raw": b'{"channel": "deploys", "payload": "\\ud800"}',
      "bearer": token(scope="publish")}, 400, "invalid_json"),  # no layer can encode it
    ({"body": [1], "bearer": token(scope="publish")}, 400, "invalid_body"),
    ({"body": {"channel": "deploys"}, "bearer": token(scope="publish")}, 400, "invalid_body"),
    ({"body": {"channel": "d", "payload": 1, "x": 2}, "bearer": token(scope="publish")}, 400,
     "invalid_body"),
    ({"body": {"channel": "alerts.*", "payload": 1}, "bearer": token(scope="publish")}, 400,
     "wildcard_channel"),
    ({"body": {"channel": "d\u0435ploys", "payload": 1}, "bearer": token(scope="publish")}, 400,
     "invalid_channel"),
    ({"body": {"channel": "deploys", "payload": "x" * 70_000}, "bearer": token(scope="publish")},
     413, "payload_too_large"),
    ({"body": None, "raw": b"a=b", "content_type": "application/x-www-form-urlencoded",
      "bearer": token(scope="publish")}, 415, "unsupported_media_type"),
])
async def test_refusals(kwargs: dict[str, Any], status: int, error: str | None,
                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="gateway.audit")
    response = await post(**kwargs)
    assert response.status_code == status, response.content
    if error:
        assert response.json()["error"] == error
    events = [json.loads(r.message) for r in caplog.records if r.name == "gateway.audit"]
    assert [(e["event"], e["outcome"]) for e in events] == [("publish", "deny")]


async def test_get_is_not_allowed() -> None:
    response = await AsyncClient().get("/api/publish")
    assert (response.status_code, response.json()["error"]) == (405, "method_not_allowed")
