"""Prometheus metrics, one registry per process (scrape each process; served by ``ops.scrape``)."""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge, Histogram

OPEN_CONNECTIONS = Gauge("gateway_open_connections", "Open websocket connections")
HANDSHAKES = Counter("gateway_handshakes_total", "Websocket handshakes by outcome and reason",
                     ["outcome", "reason"])
AUTH_SECONDS = Histogram("gateway_auth_seconds", "Time spent authenticating a handshake",
                         buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05,
                                  0.1, 0.5, 1.0))
JWKS_FETCHES = Counter("gateway_jwks_fetches_total", "JWKS fetches by outcome", ["outcome"])
HANDSHAKE_WORK_DEFERRED = Counter(
    "gateway_handshake_work_deferred_total",
    "Request heads parsed in a later loop turn during a connection burst "
    "(gateway.handshake.pacing)")
CLOSE_WORK_DEFERRED = Counter(
    "gateway_close_work_deferred_total",
    "Work of closing sockets started in a later loop turn, when many closed together "
    "(gateway.ops.closegate), by stage: connection_lost or cleanup", ["stage"])
BUS_BREAKS = Counter(
    "gateway_bus_breaks_total",
    "Breaks in the message bus after which this process closed its sockets with 1011 "
    "bus_lost: Redis lost, restarted or failed over, or the layer's subscriber reconnected "
    "(gateway.ops.buswatch)")
DEPENDENCY_RETRIES = Counter(
    "gateway_dependency_retries_total",
    "Failed attempts of a component of this process while a dependency (redis) was lost; the "
    "log has one line when it is lost and one when it is back (gateway.observe.outage)",
    ["dependency", "component"])
DEPENDENCY_DOWN = Gauge(
    "gateway_dependency_down",
    "1 while a component of this process finds the dependency failing (gateway.observe.outage)",
    ["dependency"])
SESSION_REFRESHES = Counter(
    "gateway_session_refreshes_total",
    "Refresh-token exchanges at the provider for browser sessions, by outcome: refreshed, "
    "refused or unreachable (at most one per session and access-token lifetime)", ["outcome"])
LOOP_TASKS = Gauge("gateway_event_loop_tasks", "Tasks not yet done on the serving event loop")


def _loop_tasks() -> float:
    try:
        return float(len(asyncio.all_tasks()))
    except RuntimeError:  # scraped outside the loop
        return 0.0


LOOP_TASKS.set_function(_loop_tasks)
