"""Static files under ASGI, in process through the whole stack (``config.asgi``): served
asynchronously, so Django never warns "StreamingHttpResponse must consume synchronous
iterators" (WhiteNoise's sync file iterator made every process log it, issue 24).

The e2e tier checks the same in production mode (collected, manifest storage) in a real
server's log (tests/e2e/test_serve.py).
"""

from __future__ import annotations

import warnings
from typing import Any

from channels.testing import ApplicationCommunicator

from config.asgi import application

SYNC_ITERATOR_WARNING = "StreamingHttpResponse must consume synchronous iterators"


async def _get(path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    scope: dict[str, Any] = {"type": "http", "http_version": "1.1", "method": "GET",
                             "scheme": "http", "path": path, "raw_path": path.encode(),
                             "query_string": b"", "root_path": "",
                             "headers": [(b"host", b"127.0.0.1:8000")],
                             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], {name.lower(): value for name, value in start["headers"]}, body


async def test_a_static_file_is_served_without_the_sync_iterator_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, headers, body = await _get("/static/gateway/client.js")
    assert status == 200, (headers, body[:300])
    assert headers[b"content-type"].startswith(b"text/javascript")
    assert b"getTicket" in body
    assert headers[b"access-control-allow-origin"] == b"*"  # another origin may import the client
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if SYNC_ITERATOR_WARNING in m], messages
