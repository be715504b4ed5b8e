"""The development stack: the dev IdP plus one or more gateway processes under uvicorn.

Used by ``scripts/dev`` and by the end-to-end tests, so both run the same way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from config.env import load_config
from devidp.launcher import API_AUDIENCE, CLIENTS, HOST, OPAQUE_AUDIENCE, stop_process

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def gateway_env(issuer: str, port: int, *, database_file: Path | None = None,
                redis_url: str | None = None, extra: Mapping[str, str] | None = None,
                ) -> dict[str, str]:
    """Environment for a gateway process federated with the dev IdP."""
    url = f"http://{HOST}:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "GATEWAY_DEV": "true",
        "GATEWAY_SECRET_KEY": "dev-only-secret-key-not-for-production-0123456789",
        "GATEWAY_OIDC_ISSUER": issuer,
        "GATEWAY_OIDC_CLIENT_ID": "gateway",
        "GATEWAY_OIDC_CLIENT_SECRET": CLIENTS["gateway"],
        "GATEWAY_OIDC_SCOPES": "openid profile email offline_access ws",
        "GATEWAY_OIDC_AUDIENCES": f"{API_AUDIENCE},{OPAQUE_AUDIENCE}",
        "GATEWAY_OIDC_INTROSPECTION": "true",
        "GATEWAY_PUBLIC_URL": url,
        "GATEWAY_ALLOWED_ORIGINS": url,
    })
    if database_file is not None:
        env["GATEWAY_DATABASE_URL"] = ""
        env["GATEWAY_SQLITE_PATH"] = str(database_file)
    if redis_url:
        env["GATEWAY_REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def migrate(env: Mapping[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                   cwd=ROOT, env=dict(env), check=True)


@dataclass
class GatewayProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def ws_max_size(env: Mapping[str, str]) -> int:
    """uvicorn's own frame cap: twice the gateway's frame limit, at least 1 MiB.

    Frames up to it reach the consumer, which closes an oversized one with 1009
    ``frame_too_big``; beyond it uvicorn closes with 1009 itself, so an unauthenticated
    socket cannot make the server buffer uvicorn's default 16 MiB.
    """
    return max(2 * load_config(env).limits.frame_bytes, 1 << 20)


def start_gateway(port: int, env: Mapping[str, str], log_file: Path,
                  ready_timeout: float = 30.0, app: str = "config.asgi:application",
                  ) -> GatewayProcess:
    """Run the gateway under uvicorn and wait until /readyz answers 200."""
    handle: IO[bytes] = log_file.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", HOST,
         "--port", str(port), "--ws", "websockets-sansio", "--lifespan", "on",
         "--ws-max-size", str(ws_max_size(env)),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=dict(env), stdout=handle, stderr=subprocess.STDOUT,
    )
    gateway = GatewayProcess(f"http://{HOST}:{port}", port, process, log_file)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{gateway.log()[-3000:]}")
        try:
            if httpx.get(f"{gateway.url}/readyz", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"gateway not ready after {ready_timeout}s:\n{gateway.log()[-3000:]}")
