"""Redis servers of a test's own (plain, replica, Sentinel), real ``redis-server`` processes
on free loopback ports, for what must not touch the shared server: stopping it, killing
its clients, failing it over."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path


class PrivateRedis:
    def __init__(self, port: int, workdir: Path, *options: str) -> None:
        self.port, self.workdir, self.options = port, workdir, options
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, binary: str) -> list[str]:
        return [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), *self.options]

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: scripts/ensure-redis installs it"
        self.process = subprocess.Popen(self.command(binary), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cli(self, *command: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *command], capture_output=True,
                              text=True, check=True).stdout.strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PrivateSentinel(PrivateRedis):
    """A real Redis Sentinel watching ``master`` as service ``gw``, alone (quorum 1), quick
    to act: the master is down after 1 s without an answer."""

    def __init__(self, port: int, workdir: Path, master: PrivateRedis) -> None:
        super().__init__(port, workdir)
        self.master = master

    def command(self, binary: str) -> list[str]:
        conf = self.workdir / f"sentinel-{self.port}.conf"  # Sentinel rewrites it
        conf.write_text(f"bind 127.0.0.1\nport {self.port}\ndir {self.workdir}\n"
                        f"sentinel monitor gw 127.0.0.1 {self.master.port} 1\n"
                        "sentinel down-after-milliseconds gw 1000\n"
                        "sentinel failover-timeout gw 10000\n")
        return [binary, str(conf), "--sentinel"]

    def master_port(self) -> int:
        return int(self.cli("SENTINEL", "get-master-addr-by-name", "gw").split()[1])
