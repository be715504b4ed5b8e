"""Receive cost of the in-memory channel layers with K channels open.

    .venv/bin/python bench/memory_layer.py [--channels 10,1000,10000] [--rounds 200]

For each layer (Channels' ``InMemoryChannelLayer`` and ``gateway.bus.memory.
FlatInMemoryChannelLayer``) and each K, K idle sockets are set up as a consumer holds
them: a receiver waiting on its channel and two group memberships. Then one more
channel does ``rounds`` rounds of send + receive, and of group_send (a one-member
group) + receive. Reported: CPU µs (process time, so other load on the machine
counts less) per send+receive and per group_send+receive, the best of five
repetitions, in this one process (no server, no sockets). The collector is off while
timing: its full collections grow with every live object, whatever the layer (that is
issue 13's collector-stall item), and would hide what the layer itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from channels.layers import InMemoryChannelLayer

from gateway.bus.memory import FlatInMemoryChannelLayer

LAYERS = {"channels InMemoryChannelLayer": InMemoryChannelLayer,
          "FlatInMemoryChannelLayer": FlatInMemoryChannelLayer}


async def open_idle(layer: Any, count: int) -> list[asyncio.Future[Any]]:
    """``count`` idle sockets: receivers first (Channels' layer scans on each receive)."""
    channels = [f"idle.{i}" for i in range(count)]
    waiting = [asyncio.ensure_future(layer.receive(c)) for c in channels]
    await asyncio.sleep(0)
    for channel in channels:
        await layer.group_add(f"user.{channel}", channel)
        await layer.group_add(f"session.{channel}", channel)
    await layer.group_add("mine", "me")
    return waiting


async def direct(layer: Any, rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        await layer.send("me", {"type": "direct"})
        await layer.receive("me")
    return (time.process_time() - start) / rounds * 1e6


async def grouped(layer: Any, rounds: int) -> float:
    start = time.process_time()
    for _ in range(rounds):
        await layer.group_send("mine", {"type": "fan"})
        await layer.receive("me")
    return (time.process_time() - start) / rounds * 1e6


async def measure(cls: type, count: int, rounds: int) -> tuple[float, float]:
    layer = cls()
    waiting = await open_idle(layer, count)
    gc.collect()
    gc.disable()
    try:
        best_direct = min([await direct(layer, rounds) for _ in range(5)])
        best_grouped = min([await grouped(layer, rounds) for _ in range(5)])
    finally:
        gc.enable()
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    return best_direct, best_grouped


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", default="10,1000,10000")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    counts = [int(c) for c in args.channels.split(",")]
    print("| layer | channels open | send + receive | group_send + receive |")
    print("|---|---|---|---|")
    for name, cls in LAYERS.items():
        for count in counts:
            d, g = await measure(cls, count, args.rounds)
            print(f"| {name} | {count:,} | {d:,.1f} µs | {g:,.1f} µs |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
