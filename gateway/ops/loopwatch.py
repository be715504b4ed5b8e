"""Opt-in loop-lag and collector-pause probe, for benchmarks (``GATEWAY_LOOP_LAG_PROBE``).

With ``GATEWAY_LOOP_LAG_PROBE=/some/file.jsonl`` the lifespan starts :func:`probe`. It
schedules a tick every ``TICK`` seconds and, once a second, appends one JSON line::

    {"t": 1764230000.1, "lag_ms": 1.9, "busy_ms": 1.2, "gc_ms": 0.8, "gc_cpu_ms": 0.7,
     "gc_gen": 0, "gc_runs": [41, 3, 0], "rss_kib": 210432}

- ``lag_ms``: the longest gap between two ticks in that second, less the tick period:
  how long the loop was unable to run anything, wall clock. On a machine shared with
  other busy processes this includes time the OS did not schedule the process at all;
- ``busy_ms``: the most CPU time the loop's thread spent between two ticks in that
  second: the stall the process caused itself (a collector pause, a slow callback),
  whatever else runs on the machine;
- ``gc_ms``, ``gc_cpu_ms`` and ``gc_gen``: the longest collector pause in that second
  (from ``gc.callbacks``), wall clock and thread CPU, and its generation; ``gc_runs``:
  collections per generation;
- ``rss_kib``: the process's resident memory, from ``/proc``. (Not the number of frozen
  objects: ``gc.get_freeze_count()`` walks the whole permanent generation, a stall of
  its own with many sockets.)

Off by default: no tick, no callback and no file without the variable. The file is
opened for appending, so a benchmark reads the lines of the window it measured.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICK = 0.005  # seconds between ticks
WINDOW = 1.0  # seconds per line


@dataclass
class GcPauses:
    """Collector pauses seen through ``gc.callbacks``, longest first per window."""

    longest: float = 0.0
    longest_cpu: float = 0.0
    generation: int = -1
    runs: list[int] = field(default_factory=lambda: [0, 0, 0])
    _started: tuple[float, float] = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
            return
        pause = time.perf_counter() - self._started[0]
        generation = info["generation"]
        self.runs[generation] += 1
        self.longest_cpu = max(self.longest_cpu, time.thread_time() - self._started[1])
        if pause > self.longest:
            self.longest, self.generation = pause, generation

    def take(self) -> tuple[float, float, int, list[int]]:
        """This window's longest pause (wall, CPU), its generation and the runs; then
        start afresh."""
        window = (self.longest, self.longest_cpu, self.generation, self.runs)
        self.longest, self.longest_cpu, self.generation, self.runs = 0.0, 0.0, -1, [0, 0, 0]
        return window


def rss_kib() -> int:
    """Resident memory of this process in KiB (Linux ``/proc``), 0 elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def probe(path: Path, tick: float = TICK, window: float = WINDOW) -> None:
    """Tick every ``tick`` seconds; append one line per ``window`` to ``path``."""
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        with path.open("a", encoding="utf-8") as out:
            await _tick(out, pauses, tick, window)
    finally:
        gc.callbacks.remove(pauses)


async def _tick(out: Any, pauses: GcPauses, tick: float, window: float) -> None:
    clock, cpu = time.perf_counter, time.thread_time
    last, last_cpu = clock(), cpu()
    window_ends = last + window
    worst = busiest = 0.0
    while True:
        await asyncio.sleep(tick)
        now, now_cpu = clock(), cpu()
        worst = max(worst, now - last - tick)
        busiest = max(busiest, now_cpu - last_cpu)
        last, last_cpu = now, now_cpu
        if now >= window_ends:
            gc_pause, gc_cpu, generation, runs = pauses.take()
            out.write(json.dumps({
                "t": round(time.time(), 3), "lag_ms": round(worst * 1e3, 2),
                "busy_ms": round(busiest * 1e3, 2), "gc_ms": round(gc_pause * 1e3, 2),
                "gc_cpu_ms": round(gc_cpu * 1e3, 2), "gc_gen": generation, "gc_runs": runs,
                "rss_kib": rss_kib()}) + "\n")
            out.flush()
            worst = busiest = 0.0
            window_ends = now + window
