"""L, the ceiling: a bare ``websockets`` server (no compression, no Django, no Channels).

    .venv/bin/python bench/bare.py --port 8765 [--probe lag.jsonl]

Each connection gets one welcome frame, then every frame it sends is echoed back. Pings
are off (as the clients' are), so an idle socket costs nothing but its memory. With
``--probe``, the same loop-lag and collector probe as the gateway's
(``gateway/ops/loopwatch.py``) writes one line a second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.process import run_fast

WELCOME = '{"v":1,"type":"welcome"}'


async def handler(ws: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        await ws.send(WELCOME)
        async for message in ws:
            await ws.send(message)


async def main(port: int, probe: Path | None) -> None:
    if probe is not None:
        from gateway.ops.loopwatch import probe as run_probe

        asyncio.get_running_loop().create_task(run_probe(probe))
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None,
                     max_queue=4, backlog=4096):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--probe", type=Path)
    args = parser.parse_args()
    run_fast(main(args.port, args.probe))
