"""The opt-in loop-lag probe (gateway/ops/loopwatch.py): off by default, what it writes."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path

from gateway.conf.deployment import load_deployment
from gateway.ops.loopwatch import GcPauses, probe


def test_off_unless_the_variable_names_a_file(tmp_path: Path) -> None:
    def probe_path(env: dict[str, str]) -> Path | None:
        return load_deployment(env, https=False).loop_lag_probe

    assert probe_path({}) is None
    assert probe_path({"GATEWAY_LOOP_LAG_PROBE": " "}) is None
    assert probe_path({"GATEWAY_LOOP_LAG_PROBE": str(tmp_path / "lag.jsonl")}) == tmp_path / "lag.jsonl"


def test_gc_pauses_records_each_collection_and_its_generation() -> None:
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        gc.collect(1)
    finally:
        gc.callbacks.remove(pauses)
    longest, cpu, generation, runs = pauses.take()
    assert runs[1] >= 1 and generation == 1 and longest >= 0.0 and cpu >= 0.0
    assert pauses.take()[3] == [0, 0, 0]  # a window starts afresh


async def test_probe_appends_one_json_line_per_window_and_unhooks(tmp_path: Path) -> None:
    path = tmp_path / "lag.jsonl"
    hooks = len(gc.callbacks)
    task = asyncio.create_task(probe(path, tick=0.001, window=0.01))
    while not path.exists() or len(path.read_text().splitlines()) < 2:
        await asyncio.sleep(0.005)
        gc.collect(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(gc.callbacks) == hooks
    record = json.loads(path.read_text().splitlines()[0])
    assert set(record) == {"t", "lag_ms", "busy_ms", "gc_ms", "gc_cpu_ms", "gc_gen", "gc_runs",
                           "rss_kib"}
