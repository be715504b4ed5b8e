"""Redis servers of a test's own (plain, replica, Sentinel), real ``redis-server`` processes
on free loopback ports, for what must not touch the shared server: stopping it, killing
its clients, failing it over."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


class PrivateRedis:
    def __init__(self, port: int, workdir: Path, *options: str, password: str | None = None) -> None:
        self.port, self.workdir, self.options, self.password = port, workdir, options, password
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, binary: str) -> list[str]:
        auth = ["--requirepass", self.password] if self.password else []
        return [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), *auth, *self.options]

    def _cli_env(self) -> dict[str, str]:
        return {**os.environ, "REDISCLI_AUTH": self.password} if self.password else dict(os.environ)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: scripts/ensure-redis installs it"
        self.process = subprocess.Popen(self.command(binary), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True, env=self._cli_env()).stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cli(self, *command: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *command], capture_output=True,
                              text=True, check=True, env=self._cli_env()).stdout.strip()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class PrivateSentinel(PrivateRedis):
    """A real Redis Sentinel watching ``master`` as service ``gw``, alone (quorum 1), quick
    to act: the master is down after 1 s without an answer."""

    def __init__(self, port: int, workdir: Path, master: PrivateRedis,
                 password: str | None = None) -> None:
        super().__init__(port, workdir, password=password)
        self.master = master

    def command(self, binary: str) -> list[str]:
        conf = self.workdir / f"sentinel-{self.port}.conf"  # Sentinel rewrites it
        auth = f"requirepass {self.password}\n" if self.password else ""
        if self.master.password:
            auth += f"sentinel auth-pass gw {self.master.password}\n"
        conf.write_text(f"bind 127.0.0.1\nport {self.port}\ndir {self.workdir}\n"
                        f"sentinel monitor gw 127.0.0.1 {self.master.port} 1\n"
                        "sentinel down-after-milliseconds gw 1000\n"
                        f"sentinel failover-timeout gw 10000\n{auth}")
        return [binary, str(conf), "--sentinel"]

    def master_port(self) -> int:
        return int(self.cli("SENTINEL", "get-master-addr-by-name", "gw").split()[1])
