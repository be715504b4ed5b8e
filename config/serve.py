"""The production launch: ``scripts/serve`` (``python -m config.serve``).

One command for production, the dev stack, the benchmarks and the end-to-end tests:

1. read and validate the launch settings (``GATEWAY_WORKERS``, ``GATEWAY_BIND``, ...);
   a bad value stops here with a message naming the variable and the fix;
2. in a child process (the server process never imports Django before its workers
   start): refuse to start while migrations are unapplied, naming ``manage.py
   migrate`` (``--migrate`` applies them instead), then ``collectstatic --noinput``
   when ``STATIC_ROOT`` is set;
3. run the ASGI server with N worker processes sharing the listening socket, the
   request-head limits, and a graceful drain (``gateway.ops.drain``).

The server is uvicorn (httptools, websockets-sansio) with the protocols of
``config.hardening``, and without permessage-deflate unless ``GATEWAY_WS_COMPRESSION``
is true (uvicorn offers it by default, and browsers take it: a compressor per socket
costs memory and CPU for every frame, and mixes data of different origins in one
compression context): a request head over ``GATEWAY_MAX_HEADER_BYTES`` gets 431 and a
close, one not complete within ``GATEWAY_HANDSHAKE_TIMEOUT_SECONDS`` gets 408 and a
close. ``GATEWAY_SERVER=granian`` runs granian 2.8 instead, for comparison only: it
enforces both limits itself and spends less CPU per handshake, but a server-initiated
close (logout, expiry, drain) does not reach a client that is not sending, which
breaks the gateway's guarantees (measured, ``docs/deploy.md``).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.api import ConfigError, load_config
from gateway.api.server import read_bool, read_int, read_seconds

DEFAULT_APP = "config.asgi:application"
SERVERS = ("uvicorn", "granian")
DEFAULT_PORT = 8000
DEFAULT_HANDSHAKE_TIMEOUT = 5.0
DEFAULT_WS_PING_SECONDS = 20.0  # uvicorn's own default
DEFAULT_MAX_HEADER_BYTES = 32 * 1024  # a 16 KiB token in one header, and 16 KiB for the rest
MIN_MAX_HEADER_BYTES = 8 * 1024  # granian's floor
KILL_MARGIN_SECONDS = 2  # beyond the drain, before a stuck worker is killed


@dataclass(frozen=True)
class ServeConfig:
    server: str
    workers: int
    host: str
    port: int
    handshake_timeout: float  # seconds to receive a complete request head
    max_header_bytes: int  # request line plus headers
    drain_seconds: float
    ws_max_size: int  # websocket message cap where the server has one (uvicorn)
    ws_compression: bool = False  # permessage-deflate, when a client offers it (uvicorn)
    ws_ping_seconds: float = DEFAULT_WS_PING_SECONDS  # keepalive ping interval and pong wait (uvicorn)
    app: str = DEFAULT_APP
    log_level: str = "warning"

    @property
    def kill_timeout(self) -> int:
        return math.ceil(self.drain_seconds) + KILL_MARGIN_SECONDS


def parse_bind(raw: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, ``host`` or ``:port``; raises ConfigError."""
    fix = "set GATEWAY_BIND to host:port, e.g. 0.0.0.0:8000 or [::]:8000"
    raw = raw.strip()
    if not raw:
        return "127.0.0.1", DEFAULT_PORT
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"GATEWAY_BIND={raw!r} is not valid; {fix}")
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    elif ":" in raw:
        raise ConfigError(f"GATEWAY_BIND={raw!r}: put an IPv6 address in brackets; {fix}")
    else:
        host, port_text = raw, ""
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"GATEWAY_BIND={raw!r} has no valid port; {fix}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"GATEWAY_BIND={raw!r}: port out of range; {fix}")
    return host or "0.0.0.0", port  # noqa: S104 - ':8000' means every interface, as written


def ws_cap(frame_bytes: int) -> int:
    """The server's websocket message cap: twice the gateway's frame limit, at least 1 MiB.

    Frames up to it reach the consumer, which closes an oversized one with 1009
    ``frame_too_big``; beyond it the server closes with 1009 itself (uvicorn), so an
    unauthenticated socket cannot make it buffer its default 16 MiB.
    """
    return max(2 * frame_bytes, 1 << 20)


def _workers(env: Mapping[str, str], *, shared_bus: bool) -> int:
    """One per core with Redis; one without, since processes that share no bus cannot
    close each other's sockets on a logout or a grant change."""
    workers = read_int(env, "GATEWAY_WORKERS", (os.cpu_count() or 1) if shared_bus else 1, 1, 512)
    if workers > 1 and not shared_bus:
        raise ConfigError(f"GATEWAY_WORKERS={workers} needs GATEWAY_REDIS_URL: without Redis a "
                          "logout or a grant change reaches only one process. Set "
                          "GATEWAY_REDIS_URL or GATEWAY_WORKERS=1.")
    return workers


def read_serve_config(env: Mapping[str, str], *, app: str = DEFAULT_APP,
                      log_level: str = "warning") -> ServeConfig:
    server = env.get("GATEWAY_SERVER", "").strip() or "uvicorn"
    if server not in SERVERS:
        raise ConfigError(f"GATEWAY_SERVER={server!r} is unknown; "
                          f"set it to one of {', '.join(SERVERS)} (default uvicorn)")
    host, port = parse_bind(env.get("GATEWAY_BIND", ""))
    gateway = load_config(env)  # the whole gateway configuration is validated here, once
    return ServeConfig(
        server=server,
        workers=_workers(env, shared_bus=gateway.redis_url is not None),
        host=host,
        port=port,
        handshake_timeout=read_seconds(env, "GATEWAY_HANDSHAKE_TIMEOUT_SECONDS",
                                       DEFAULT_HANDSHAKE_TIMEOUT, 0.1, 60.0),
        max_header_bytes=read_int(env, "GATEWAY_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES,
                                  MIN_MAX_HEADER_BYTES, 1 << 20),
        drain_seconds=gateway.deployment.drain_seconds,
        ws_max_size=ws_cap(gateway.limits.frame_bytes),
        ws_compression=read_bool(env, "GATEWAY_WS_COMPRESSION", False),
        ws_ping_seconds=read_seconds(env, "GATEWAY_WS_PING_SECONDS", DEFAULT_WS_PING_SECONDS,
                                     1.0, 3600.0),
        app=app,
        log_level=log_level,
    )


# --- preparing: migrations and static files (run in a child process) -----------------

MIGRATE_HINT = ("unapplied database migrations: run `python manage.py migrate` "
                "(or start with `scripts/serve --migrate`) before serving")


def prepare(*, migrate: bool) -> int:
    """Check (or apply) migrations, then collect static files. Returns an exit status."""
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    django.setup()
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending and not migrate:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        print(f"gateway: refusing to start: {MIGRATE_HINT} ({len(pending)} pending: {names})",
              file=sys.stderr)
        return 2
    if pending:
        call_command("migrate", interactive=False, verbosity=1)
    if getattr(settings, "STATIC_ROOT", None):
        call_command("collectstatic", interactive=False, verbosity=0)
    else:
        print("gateway: STATIC_ROOT is not set; static files are not collected",
              file=sys.stderr)
    return 0


def run_prepare(*, migrate: bool) -> None:
    command = [sys.executable, "-m", "config.serve", "--prepare-only"]
    if migrate:
        command.append("--migrate")
    status = subprocess.run(command, check=False).returncode
    if status:
        raise SystemExit(status)


# --- serving ----------------------------------------------------------------------


def run_granian(cfg: ServeConfig) -> None:
    try:
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP1Settings
        from granian.log import LogLevels
        from granian.server.mp import MPServer
    except ImportError:  # not a runtime dependency: requirements.lock and the image leave it out
        raise SystemExit("gateway: GATEWAY_SERVER=granian needs granian, which is for comparison "
                         "only and not installed here: install requirements-dev.lock (benchmarks), "
                         "or unset GATEWAY_SERVER to run uvicorn") from None

    class GatewayServer(MPServer):
        """granian's process server, with SIGHUP draining the old workers with 1012."""

        restarting = False

        def _reload(self, spawn_target: Any, target_loader: Any) -> Any:
            self.restarting = True
            try:
                return super()._reload(spawn_target, target_loader)  # type: ignore[no-untyped-call]
            finally:
                self.restarting = False

        def _spawn_worker(self, *args: Any, **kwargs: Any) -> Any:
            worker = super()._spawn_worker(*args, **kwargs)
            stop: Callable[[], None] = worker.terminate

            def terminate() -> None:
                if self.restarting and worker.inner.pid:
                    worker.interrupt_by_parent = True
                    os.kill(worker.inner.pid, signal.SIGUSR1)  # gateway.ops.drain: 1012
                else:
                    stop()

            setattr(worker, "terminate", terminate)  # noqa: B010 - one instance, not the class
            return worker

    server = GatewayServer(
        cfg.app,
        address=cfg.host,
        port=cfg.port,
        interface=Interfaces.ASGI,
        # HTTP/1 only: in auto mode a connection that sends nothing is never timed out
        # (the protocol detection runs before hyper's header-read timer starts).
        http=HTTPModes.http1,
        websockets=True,
        workers=cfg.workers,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, round(cfg.handshake_timeout * 1000)),
            max_buffer_size=cfg.max_header_bytes,
        ),
        workers_kill_timeout=cfg.kill_timeout,
        respawn_failed_workers=True,
        log_level=LogLevels(cfg.log_level),
        log_access=False,
    )
    server.serve()


def run_uvicorn(cfg: ServeConfig) -> None:
    import uvicorn

    # read by config.hardening and websockets in each worker, so set before they import
    os.environ["GATEWAY_MAX_HEADER_BYTES"] = str(cfg.max_header_bytes)
    os.environ["GATEWAY_HANDSHAKE_TIMEOUT_SECONDS"] = repr(cfg.handshake_timeout)
    os.environ["WEBSOCKETS_MAX_LINE_LENGTH"] = str(cfg.max_header_bytes)
    os.environ["WEBSOCKETS_MAX_NUM_HEADERS"] = str(cfg.max_header_bytes // 4)  # bytes bound it
    uvicorn.run(cfg.app, host=cfg.host, port=cfg.port, workers=cfg.workers,
                http="config.hardening:HttpToolsProtocol",
                ws="config.hardening:WebSocketProtocol", lifespan="on",
                ws_max_size=cfg.ws_max_size, ws_per_message_deflate=cfg.ws_compression,
                ws_ping_interval=cfg.ws_ping_seconds, ws_ping_timeout=cfg.ws_ping_seconds,
                timeout_graceful_shutdown=cfg.kill_timeout,
                access_log=False, log_level=cfg.log_level)


def serve(cfg: ServeConfig) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    print(f"gateway: {cfg.server} on {cfg.host}:{cfg.port}, {cfg.workers} workers, "
          f"handshake timeout {cfg.handshake_timeout:g} s, request head up to "
          f"{cfg.max_header_bytes} bytes, drain {cfg.drain_seconds:g} s", file=sys.stderr,
          flush=True)
    if cfg.server == "granian":
        print("gateway: GATEWAY_SERVER=granian is for comparison only: granian 2.8 does not "
              "send a server-initiated close to a client that is not sending (logout, expiry "
              "and drain closes are lost)", file=sys.stderr, flush=True)
        run_granian(cfg)
    else:
        run_uvicorn(cfg)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/serve", description=__doc__.split("\n")[0])
    parser.add_argument("--migrate", action="store_true",
                        help="apply unapplied migrations instead of refusing to start")
    parser.add_argument("--app", default=DEFAULT_APP, help="ASGI target (benchmarks)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if args.prepare_only:
        raise SystemExit(prepare(migrate=args.migrate))
    try:
        cfg = read_serve_config(os.environ, app=args.app, log_level=args.log_level)
    except Exception as exc:  # ConfigError, or gateway.conf.env's error for another variable
        raise SystemExit(f"gateway: {exc}") from None
    run_prepare(migrate=args.migrate)
    serve(cfg)


if __name__ == "__main__":
    main()
