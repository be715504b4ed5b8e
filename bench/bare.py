"""L, the ceiling: a bare ``websockets`` server (no compression, no Django, no Channels).

    .venv/bin/python bench/bare.py --port 8765 [--probe lag.jsonl]

Every connection but a publisher gets one welcome frame. Then, by path:

- ``/sub``: a subscriber. It only receives what publishers broadcast.
- ``/pub``: a publisher (no welcome). Every text frame it sends goes to every subscriber
  with ``websockets.broadcast``: the same bytes, received undecoded and framed once per
  subscriber, with no backpressure. This is the fan-out ceiling (``bench/fanout.py``).
- any other path: every frame the client sends is echoed back.

Pings are off (as the clients' are), so an idle socket costs nothing but its memory. With
``--probe``, the same loop-lag and collector probe as the gateway's
(``gateway/ops/loopwatch.py``) writes one line a second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.process import run_fast

WELCOME = '{"v":1,"type":"welcome"}'
SUBSCRIBERS: set[ServerConnection] = set()


async def subscribe(ws: ServerConnection) -> None:
    SUBSCRIBERS.add(ws)  # before the welcome: a client that has it gets every later message
    try:
        await ws.send(WELCOME)
        await ws.wait_closed()
    finally:
        SUBSCRIBERS.discard(ws)


async def publish(ws: ServerConnection) -> None:
    while True:
        broadcast(SUBSCRIBERS, await ws.recv(decode=False), text=True)


async def echo(ws: ServerConnection) -> None:
    await ws.send(WELCOME)
    async for message in ws:
        await ws.send(message)


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    with contextlib.suppress(ConnectionClosed):
        await {"/sub": subscribe, "/pub": publish}.get(path, echo)(ws)


async def main(port: int, probe: Path | None, ping_seconds: float | None = None) -> None:
    if probe is not None:
        from gateway.ops.loopwatch import probe as run_probe

        asyncio.get_running_loop().create_task(run_probe(probe))
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=ping_seconds,
                     ping_timeout=ping_seconds, max_queue=4, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--probe", type=Path)
    parser.add_argument("--ping-seconds", type=float, help="keepalive pings (default: none)")
    args = parser.parse_args()
    run_fast(main(args.port, args.probe, args.ping_seconds))
