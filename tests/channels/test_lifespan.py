"""ASGI lifespan: startup tunes the collector and loads the issuers' keys; shutdown stops tasks."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest

from config.asgi import application
from gateway.issuers import registry as registry_module
from gateway.issuers.registry import Registry
from gateway.ops import lifespan as lifespan_module
from gateway.ops import ondemand as ondemand_module
from gateway.ops.lifespan import GC_THRESHOLDS
from oidc.config import IssuerConfig
from tests.unit.factories import KEY1, jwks_of


async def test_startup_tunes_the_collector_and_shutdown_completes() -> None:
    gc.unfreeze()
    thresholds = gc.get_threshold()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(application({"type": "lifespan"}, inbox.get, send))
    while not sent:
        await asyncio.sleep(0.01)
    try:
        assert sent == ["lifespan.startup.complete"]
        assert gc.get_freeze_count() > 10_000  # Django and the apps, not a handful
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 5)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def _gated_registry(monkeypatch: pytest.MonkeyPatch, gate: asyncio.Event) -> Registry:
    """A registry for one issuer whose discovery answers only once ``gate`` is set."""
    issuer = "https://slow.example"

    async def fetch(url: str) -> dict[str, Any]:
        if url.endswith("/.well-known/openid-configuration"):
            await gate.wait()
            return {"issuer": issuer, "authorization_endpoint": f"{issuer}/auth",
                    "token_endpoint": f"{issuer}/token", "jwks_uri": f"{issuer}/certs"}
        return jwks_of(KEY1)

    monkeypatch.setattr(registry_module, "fetch_json", fetch)
    monkeypatch.setattr(registry_module, "fetch_jwks", fetch)
    slow = Registry({issuer: IssuerConfig(issuer=issuer, audiences=frozenset({"api"}))})
    monkeypatch.setattr(lifespan_module, "registry", slow)
    monkeypatch.setattr(ondemand_module, "registry", slow)  # the bounded first load
    return slow


async def _start(sent: list[str]) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message["type"])

    await inbox.put({"type": "lifespan.startup"})
    return asyncio.create_task(application({"type": "lifespan"}, inbox.get, send)), inbox


async def _stop(task: asyncio.Task[None], inbox: asyncio.Queue[dict[str, Any]]) -> None:
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 5)
    gc.unfreeze()


async def test_startup_completes_only_once_the_issuers_keys_are_loaded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A new worker must not take handshakes it would deny with keys_unavailable."""
    gate = asyncio.Event()
    slow = _gated_registry(monkeypatch, gate)
    sent: list[str] = []
    task, inbox = await _start(sent)
    try:
        await asyncio.sleep(0.3)
        assert sent == [] and slow.unloaded() == {"https://slow.example"}
        gate.set()
        for _ in range(100):
            if sent:
                break
            await asyncio.sleep(0.01)
        assert sent == ["lifespan.startup.complete"]
        assert slow.unloaded() == set()
    finally:
        gate.set()
        await _stop(task, inbox)


async def test_a_provider_that_never_answers_delays_startup_only_boundedly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    gate = asyncio.Event()
    slow = _gated_registry(monkeypatch, gate)
    monkeypatch.setattr(ondemand_module, "FIRST_LOAD_WAIT", 0.2)
    sent: list[str] = []
    task, inbox = await _start(sent)
    try:
        await asyncio.wait_for(_until(lambda: bool(sent)), 5)
        assert sent == ["lifespan.startup.complete"]
        assert slow.unloaded() == {"https://slow.example"}
        gate.set()  # the retry loop keeps trying after startup
        await asyncio.wait_for(_until(lambda: not slow.unloaded()), 5)
    finally:
        gate.set()
        await _stop(task, inbox)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)
