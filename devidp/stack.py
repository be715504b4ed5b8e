"""The development stack: the dev IdP plus one or more gateway processes.

Used by ``scripts/dev``, the benchmarks and the end-to-end tests. Each gateway starts
through the production launch (``config.serve``, what ``scripts/serve`` runs), with one
worker process unless told otherwise, so the tests cover the production command.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Container, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx

from config import serve
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
        "GATEWAY_ADMIN_GROUPS": "admins",  # alice (devidp) reaches the admin as superuser
    })
    if database_file is not None:
        env["GATEWAY_DATABASE_URL"] = postgres_for(database_file)
        env["GATEWAY_SQLITE_PATH"] = str(database_file)
    if redis_url:
        env["GATEWAY_REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def postgres_for(database_file: Path) -> str:
    """The PostgreSQL stand-in for a gateway's SQLite file, or "" to use the file.

    scripts/test runs the end-to-end tier a second time with GATEWAY_DATABASE_URL set. Each
    file then gets its own database on that server, <db>_<hash of the path>, created on first
    use, so gateways that share a file share a database and the others start empty, as with
    SQLite. ``scripts/ensure-postgres --fresh <db>`` drops them all.
    """
    url = os.environ.get("GATEWAY_DATABASE_URL", "").strip()
    if not url:
        return ""
    import psycopg  # only the PostgreSQL pass needs it
    from psycopg import sql

    parts = urlsplit(url)
    digest = hashlib.sha256(str(database_file.resolve()).encode()).hexdigest()[:12]
    name = f"{parts.path.strip('/')}_{digest}"
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(parts._replace(path=f"/{name}"))


def migrate(env: Mapping[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                   cwd=ROOT, env=dict(env), check=True)


@dataclass
class GatewayProcess:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the launcher (its workers drain), then kill the whole group if stuck."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):  # orphaned workers, if any
            os.killpg(self.process.pid, signal.SIGKILL)
        stop_process(self.process, timeout=5)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def start_gateway(port: int, env: Mapping[str, str], log_file: Path,
                  ready_timeout: float = 30.0, app: str = serve.DEFAULT_APP,
                  *, workers: int | None = None, migrate: bool = False,
                  ready_statuses: Container[int] = (200,)) -> GatewayProcess:
    """Run the gateway through the production launch and wait until /readyz answers 200
    (or another of ``ready_statuses``, for a gateway that is meant not to be ready).

    ``workers`` defaults to ``GATEWAY_WORKERS`` in ``env``, else 1. The launcher and its
    workers form one process group, so ``stop`` can always clean up.
    """
    launch_env = {"GATEWAY_WORKERS": "1", **env, "GATEWAY_BIND": f"{HOST}:{port}"}
    if workers is not None:
        launch_env["GATEWAY_WORKERS"] = str(workers)
    command = [sys.executable, "-m", "config.serve", "--app", app]
    if migrate:
        command.append("--migrate")
    handle: IO[bytes] = log_file.open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=launch_env, stdout=handle,
                               stderr=subprocess.STDOUT, start_new_session=True)
    gateway = GatewayProcess(f"http://{HOST}:{port}", port, process, log_file)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{gateway.log()[-3000:]}")
        try:
            if httpx.get(f"{gateway.url}/readyz", timeout=1).status_code in ready_statuses:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise RuntimeError(f"gateway not ready after {ready_timeout}s:\n{gateway.log()[-3000:]}")
