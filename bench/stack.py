"""What every benchmark launcher shares: DEBUG off, file limits, the baselines, /proc readings.

- :func:`bench_env` is the gateway's environment for benchmarks: ``GATEWAY_DEV=false``
  (DEBUG off, as in production: no query logging), a fixed secret key, ``/metrics``
  readable from 127.0.0.0/8, the bench settings module (``bench/settings.py``: the
  channel layer chosen by ``BENCH_CHANNEL_LAYER``) and, when asked, the loop-lag probe
  (``GATEWAY_LOOP_LAG_PROBE``, ``gateway/ops/loopwatch.py``).
- :func:`raise_file_limit` lifts this process's soft ``RLIMIT_NOFILE`` to its hard
  limit; children inherit it. Without ``CAP_SYS_RESOURCE`` the hard limit cannot be
  raised (20,000 on the development machines), which caps one process's sockets.
- L is a bare ``websockets`` server (``bench/bare.py``) in its own process; R is the
  stock Channels consumer at ``/bench/open/`` in the gateway process (``bench/asgi.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devidp.launcher import HOST  # noqa: E402
from devidp.stack import free_port, gateway_env  # noqa: E402

BENCH_SECRET_KEY = "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
LAYERS = ("flat", "channels", "redis")  # BENCH_CHANNEL_LAYER values; redis needs a URL


def raise_file_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by children); returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def bench_env(issuer: str, port: int, *, database_file: Path, layer: str = "flat",
              redis_url: str | None = None, probe_file: Path | None = None,
              extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The gateway's environment for a benchmark: production settings (DEBUG off)."""
    if layer == "redis" and not redis_url:
        raise ValueError("layer redis needs a redis_url")
    env = gateway_env(issuer, port, database_file=database_file,
                      redis_url=redis_url if layer == "redis" else None)
    env.update({
        "GATEWAY_DEV": "false",
        "GATEWAY_SECRET_KEY": BENCH_SECRET_KEY,
        "GATEWAY_METRICS_NETWORKS": "127.0.0.0/8",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_CHANNEL_LAYER": layer,
        "BENCH": "1",
    })
    if probe_file is not None:
        env["GATEWAY_LOOP_LAG_PROBE"] = str(probe_file)
    env.update(extra or {})
    return env


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a launcher and its server workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of ``pid`` and its descendants, from /proc (Linux)."""
    total = 0
    for each in descendants(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, in KiB."""
    total = 0
    for each in descendants(pid):
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


@dataclass
class BareServer:
    """L: a bare ``websockets`` server in its own process (``bench/bare.py``)."""

    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, probe_file: Path | None = None, ping_seconds: float | None = None) -> BareServer:
        port = free_port()
        command = [sys.executable, str(ROOT / "bench" / "bare.py"), "--port", str(port)]
        if probe_file is not None:
            command += ["--probe", str(probe_file)]
        if ping_seconds is not None:
            command += ["--ping-seconds", str(ping_seconds)]
        process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL)
        url = f"ws://{HOST}:{port}/"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            import socket

            with socket.socket() as probe:
                if probe.connect_ex((HOST, port)) == 0:
                    return cls(url, process)
            time.sleep(0.05)
        process.kill()
        raise RuntimeError("bench/bare.py did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def garbage_report(url: str) -> dict[str, Any]:
    """What a full collection of a gateway running ``bench.asgi:application`` would find
    unreachable, frozen objects included (its ``/bench/garbage/``)."""
    return await _probe(url, "/bench/garbage/")


async def heap_report(url: str) -> dict[str, Any]:
    """Where that gateway's memory is, by allocator (its ``/bench/heap/``)."""
    return await _probe(url, "/bench/heap/")


async def _probe(url: str, path: str) -> dict[str, Any]:
    from tests.e2e.flows import open_ws

    ws = await open_ws(url, path=path)
    try:
        found: dict[str, Any] = json.loads(await ws.recv())
    finally:
        await ws.close()
    return found
