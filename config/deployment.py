"""Deployment settings read from the environment: proxies, TLS, and who may read /metrics.

Part of ``config.env.load_config``: read once, validated, frozen. Errors name the
variable and the fix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from config.values import ConfigError, read_bool, read_int, read_seconds

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

YEAR = 365 * 24 * 3600

VARIABLES: dict[str, str] = {
    "GATEWAY_TRUSTED_PROXIES": "comma-separated proxy addresses or networks (e.g. 10.0.0.5,"
    "10.1.0.0/16) whose X-Forwarded-For and X-Forwarded-Proto are honoured; from any other "
    "peer those headers are ignored (default: none)",
    "GATEWAY_HSTS_SECONDS": "Strict-Transport-Security max-age (default: one year for an https "
    "public URL, 0 otherwise)",
    "GATEWAY_HSTS_INCLUDE_SUBDOMAINS": "true to add includeSubDomains to HSTS (default false)",
    "GATEWAY_HSTS_PRELOAD": "true to add preload to HSTS (default false)",
    "GATEWAY_SSL_REDIRECT": "true to redirect plain http requests to https (default: true for an "
    "https public URL)",
    "GATEWAY_METRICS_NETWORKS": "comma-separated networks that may read /metrics without a token "
    "(e.g. 10.0.0.0/8 for the Prometheus scraper; default: none)",
    "GATEWAY_METRICS_SCOPE": "scope a bearer access token needs to read /metrics (default "
    "gateway.metrics)",
    "GATEWAY_DRAIN_SECONDS": "on SIGTERM, how long a worker waits for its sockets to close "
    "(1001) before it stops anyway, 0 to 1800 (default 10)",
    "GATEWAY_LOOP_LAG_PROBE": "benchmarks only: a file where each process appends its worst loop "
    "stall and collector pause once a second (default off)",
    "GATEWAY_SERVER": "ASGI server for scripts/serve: uvicorn (default) or granian (comparison only)",
    "GATEWAY_WORKERS": "worker processes for scripts/serve, 1 to 512 (default: the number of cores "
    "with GATEWAY_REDIS_URL, else 1; more than one without it is refused)",
    "GATEWAY_BIND": "host:port scripts/serve listens on (default 127.0.0.1:8000)",
    "GATEWAY_HANDSHAKE_TIMEOUT_SECONDS": "a request head not complete within this gets 408 and a "
    "close, 0.1 to 60 (default 5)",
    "GATEWAY_MAX_HEADER_BYTES": "largest request line plus headers; more gets 431 and a close, "
    "8192 to 1048576 (default 32768: a 16 KiB token and room)",
    "GATEWAY_WS_COMPRESSION": "true to accept permessage-deflate from clients that offer it "
    "(default false: every frame is written once, uncompressed; see docs/deploy.md)",
    "GATEWAY_WS_PING_SECONDS": "scripts/serve: seconds between the server's websocket pings, "
    "which find dead peers; 1 to 3600 (default 20, uvicorn's own; about 125 µs of server CPU "
    "per ping and pong, docs/scaling.md)",
    "GATEWAY_MAX_BODY_BYTES": "largest HTTP request body; a larger one gets 413 before it is "
    "read, 65536 to 104857600 (default 1048576)",
    "GATEWAY_BODY_TIMEOUT_SECONDS": "an HTTP request body not complete within this gets 408, "
    "1 to 600 (default 30)",
}


@dataclass(frozen=True)
class Deployment:
    trusted_proxies: tuple[IpNetwork, ...] = ()
    hsts_seconds: int = 0
    hsts_include_subdomains: bool = False
    hsts_preload: bool = False
    ssl_redirect: bool = False
    metrics_networks: tuple[IpNetwork, ...] = ()
    metrics_scope: str = "gateway.metrics"
    drain_seconds: float = 10.0
    loop_lag_probe: Path | None = None
    max_body_bytes: int = 1024 * 1024
    body_timeout: float = 30.0


def networks(env: Mapping[str, str], name: str) -> tuple[IpNetwork, ...]:
    found: list[IpNetwork] = []
    for item in (part.strip() for part in env.get(name, "").split(",")):
        if not item:
            continue
        if item in {"*", "0.0.0.0/0", "::/0"}:
            raise ConfigError(f"{name}={item!r}: list the exact addresses or networks; "
                                  "a wildcard would trust every peer.")
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name} has {item!r}: use an IP address or a network "
                                  "like 10.0.0.0/8.") from None
    return tuple(found)


def _hsts_seconds(env: Mapping[str, str], https: bool) -> int:
    raw = env.get("GATEWAY_HSTS_SECONDS", "").strip()
    if not raw:
        return YEAR if https else 0
    if not raw.isdigit() or int(raw) > 2 * YEAR:
        raise ConfigError(f"GATEWAY_HSTS_SECONDS={raw!r}: use a whole number of seconds "
                              f"from 0 to {2 * YEAR} (one year is {YEAR}).")
    return int(raw)


def _scope(env: Mapping[str, str]) -> str:
    scope = env.get("GATEWAY_METRICS_SCOPE", "").strip() or Deployment.metrics_scope
    if " " in scope:
        raise ConfigError(f"GATEWAY_METRICS_SCOPE={scope!r}: name one scope, without spaces.")
    return scope


def load_deployment(env: Mapping[str, str], *, https: bool) -> Deployment:
    """``https``: whether the public URL is https, which sets the secure defaults."""
    return Deployment(
        trusted_proxies=networks(env, "GATEWAY_TRUSTED_PROXIES"),
        hsts_seconds=_hsts_seconds(env, https),
        hsts_include_subdomains=read_bool(env, "GATEWAY_HSTS_INCLUDE_SUBDOMAINS", False),
        hsts_preload=read_bool(env, "GATEWAY_HSTS_PRELOAD", False),
        ssl_redirect=read_bool(env, "GATEWAY_SSL_REDIRECT", https),
        metrics_networks=networks(env, "GATEWAY_METRICS_NETWORKS"),
        metrics_scope=_scope(env),
        drain_seconds=read_seconds(env, "GATEWAY_DRAIN_SECONDS", Deployment.drain_seconds, 0, 1800),
        loop_lag_probe=Path(probe) if (probe := env.get("GATEWAY_LOOP_LAG_PROBE", "").strip())
        else None,
        max_body_bytes=read_int(env, "GATEWAY_MAX_BODY_BYTES", Deployment.max_body_bytes,
                                65536, 100 * 1024 * 1024),
        body_timeout=read_seconds(env, "GATEWAY_BODY_TIMEOUT_SECONDS", Deployment.body_timeout,
                                  1, 600),
    )
