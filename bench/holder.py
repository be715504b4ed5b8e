"""One client process holding idle websockets open (used by ``bench/open_sockets.py``).

    .venv/bin/python bench/holder.py URL COUNT SOURCE_ADDRESS [HEADER_JSON] [CONCURRENCY]

Opens COUNT sockets from SOURCE_ADDRESS (e.g. 127.0.0.11, so many holders do not run
out of ephemeral ports), each waiting for its first frame, then prints one line
``ready <opened> <failed> <seconds>`` and holds them, reading nothing more, until its
stdin closes; then it exits without closing them one by one (the kernel does).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.process import run_fast


async def open_one(url: str, headers: dict[str, str], source: str,
                   semaphore: asyncio.Semaphore, held: list[ClientConnection]) -> bool:
    async with semaphore:
        for _ in range(3):
            try:
                ws = await connect(url, additional_headers=headers, compression=None,
                                   ping_interval=None, open_timeout=60, max_queue=4,
                                   local_addr=(source, 0))
                await asyncio.wait_for(ws.recv(), 60)
            except (TimeoutError, OSError, Exception):
                await asyncio.sleep(0.2)
                continue
            held.append(ws)
            return True
    return False


async def main() -> None:
    url, count, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    headers = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    concurrency = int(sys.argv[5]) if len(sys.argv) > 5 else 100
    semaphore = asyncio.Semaphore(concurrency)
    held: list[ClientConnection] = []
    start = time.perf_counter()
    results = await asyncio.gather(*(open_one(url, headers, source, semaphore, held)
                                     for _ in range(count)))
    opened = sum(results)
    print(f"ready {opened} {count - opened} {time.perf_counter() - start:.2f}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    os._exit(0)


if __name__ == "__main__":
    run_fast(main())
