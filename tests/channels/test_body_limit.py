"""HTTP request bodies are bounded in size and time before Django reads them
(gateway/ops/bodylimit.py), through the real ASGI stack and around a recording app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from channels.testing import ApplicationCommunicator

from config.asgi import application
from gateway.ops.bodylimit import BoundedBody

pytestmark = pytest.mark.django_db(transaction=True)


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "http_version": "1.1", "method": "POST", "path": path,
            "raw_path": path.encode(), "query_string": b"", "scheme": "http",
            "headers": [(b"host", b"127.0.0.1"), *headers],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}


async def response_of(app: Any, scope: dict[str, Any],
                      chunks: list[bytes], *, more: bool = False) -> tuple[int, dict[str, Any]]:
    """Send the body chunks (the last with more_body=False unless ``more``); the answer."""
    comm = ApplicationCommunicator(app, scope)
    for index, chunk in enumerate(chunks):
        last = index == len(chunks) - 1 and not more
        await comm.send_input({"type": "http.request", "body": chunk, "more_body": not last})
    start = await comm.receive_output(timeout=5)
    body = await comm.receive_output(timeout=5)
    await comm.wait(timeout=5)
    return start["status"], json.loads(body["body"])


def audited(caplog: pytest.LogCaptureFixture, reason: str) -> bool:
    return any(json.loads(r.message).get("reason") == reason and json.loads(r.message)["event"] == "http"
               for r in caplog.records if r.name == "gateway.audit")


async def test_a_declared_length_over_the_limit_gets_413_before_the_body_is_read(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="gateway.audit")
    scope = http_scope("/oidc/backchannel-logout/", [(b"content-length", b"209715200")])
    status, answer = await response_of(application, scope, [b"x" * 1000], more=True)
    assert (status, answer["error"]) == (413, "payload_too_large")
    assert audited(caplog, "payload_too_large")


class Recorder:
    """Reads the whole body as Django does, then (like Django's disconnect listener during
    the view) waits ``listen`` seconds on receive, then answers 200 with the body's length."""

    def __init__(self, listen: float = 0.0) -> None:
        self.calls, self.listen = 0, listen

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        if self.listen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receive(), self.listen)
        body = json.dumps({"size": size}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def test_a_body_without_a_length_that_grows_past_the_limit_gets_413() -> None:
    app = BoundedBody(Recorder(), max_bytes=65536, seconds=5)
    status, answer = await response_of(app, http_scope("/api/publish", []),
                                       [b"x" * 40000, b"x" * 40000], more=True)
    assert (status, answer["error"]) == (413, "payload_too_large")


async def test_a_body_not_complete_in_time_gets_408() -> None:
    recorder = Recorder()
    app = BoundedBody(recorder, max_bytes=65536, seconds=0.3)
    status, answer = await response_of(app, http_scope("/api/publish", []), [b"x"], more=True)
    assert (status, answer["error"]) == (408, "body_timeout")
    assert recorder.calls == 1


async def test_a_body_within_bounds_reaches_the_app_whole_and_the_app_may_go_on_listening() -> None:
    app = BoundedBody(Recorder(listen=0.6), max_bytes=65536, seconds=0.3)
    scope = http_scope("/api/publish", [(b"content-length", b"65536")])
    status, answer = await response_of(app, scope, [b"x" * 30000, b"x" * 35536])
    assert (status, answer) == (200, {"size": 65536}), "only the body is timed, not the view"


async def test_a_malformed_length_is_refused() -> None:
    app = BoundedBody(Recorder(), max_bytes=65536, seconds=5)
    status, answer = await response_of(app, http_scope("/", [(b"content-length", b"-1")]), [b""])
    assert (status, answer["error"]) == (400, "invalid_content_length")
