"""Opt-in loop-lag and collector-pause probe, for benchmarks (``GATEWAY_LOOP_LAG_PROBE``).

With ``GATEWAY_LOOP_LAG_PROBE=/some/file.jsonl`` the lifespan starts :func:`probe`. It
schedules a tick every ``TICK`` seconds and, once a second, appends one JSON line::

    {"t": 1764230000.1, "lag_ms": 1.9, "gc_ms": 0.8, "gc_gen": 0, "gc_runs": [41, 3, 0],
     "frozen": 120034, "rss_kib": 210432}

- ``lag_ms``: the longest gap between two ticks in that second, less the tick period:
  how long the loop was unable to run anything (a collector pause, a slow callback);
- ``gc_ms`` and ``gc_gen``: the longest collector pause in that second (from
  ``gc.callbacks``) and its generation; ``gc_runs``: collections per generation;
- ``frozen``: objects in the permanent generation (``gc.freeze``); ``rss_kib``: the
  process's resident memory, from ``/proc``.

Off by default: no tick, no callback and no file without the variable. The file is
opened for appending, so a benchmark reads the lines of the window it measured.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "GATEWAY_LOOP_LAG_PROBE"
TICK = 0.005  # seconds between ticks
WINDOW = 1.0  # seconds per line


def probe_path(env: Any = None) -> Path | None:
    """The probe's output file, or None when the probe is off (the default)."""
    raw = (os.environ if env is None else env).get(ENV_VAR, "").strip()
    return Path(raw) if raw else None


@dataclass
class GcPauses:
    """Collector pauses seen through ``gc.callbacks``, longest first per window."""

    longest: float = 0.0
    generation: int = -1
    runs: list[int] = field(default_factory=lambda: [0, 0, 0])
    _started: float = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        generation = info["generation"]
        self.runs[generation] += 1
        if pause > self.longest:
            self.longest, self.generation = pause, generation

    def take(self) -> tuple[float, int, list[int]]:
        """This window's longest pause, its generation and the runs; then start afresh."""
        window = (self.longest, self.generation, self.runs)
        self.longest, self.generation, self.runs = 0.0, -1, [0, 0, 0]
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
    clock = time.perf_counter
    last = clock()
    window_ends = last + window
    worst = 0.0
    while True:
        await asyncio.sleep(tick)
        now = clock()
        worst = max(worst, now - last - tick)
        last = now
        if now >= window_ends:
            gc_pause, generation, runs = pauses.take()
            out.write(json.dumps({
                "t": round(time.time(), 3), "lag_ms": round(worst * 1e3, 2),
                "gc_ms": round(gc_pause * 1e3, 2), "gc_gen": generation, "gc_runs": runs,
                "frozen": gc.get_freeze_count(), "rss_kib": rss_kib()}) + "\n")
            out.flush()
            worst, window_ends = 0.0, now + window
