"""Issue 19: every service healthy in depends_on order, the migrate job done, the image lean."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import httpx
import yaml

from tests.compose.stack import (
    COMPOSE_FILE,
    ENSURE_SCRIPT,
    GATEWAY,
    ISSUER,
    REPLICAS,
    SERVICES,
    Stack,
)

DEV_TOOLS = ("pytest", "mypy", "ruff", "playwright", "daphne", "hypothesis", "granian")


def _conditions() -> dict[str, dict[str, str]]:
    """service -> {dependency: condition}, read from the compose file itself."""
    services: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return {name: {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
            for name, service in services.items()}


def test_every_service_started_only_once_its_dependencies_were_ready(stack: Stack) -> None:
    conditions = _conditions()
    assert set(conditions) == set(SERVICES)
    checked = 0
    for service, deps in conditions.items():
        started = stack.events.first(service, "start")
        for dep, condition in deps.items():
            if condition == "service_healthy":
                ready = stack.events.first(dep, "health_status: healthy")
            else:
                assert condition == "service_completed_successfully", condition
                died = stack.events.of(dep, "die")
                assert died and died[0]["Actor"]["Attributes"]["exitCode"] == "0", died
                ready = int(died[0]["timeNano"])
            assert ready <= started, f"{service} started before {dep} was {condition}"
            checked += 1
    assert checked >= 12  # the gateways wait for four services each, the proxy for both


def test_every_long_running_service_is_healthy_and_the_migrate_job_finished(stack: Stack) -> None:
    for service in ("postgres", "redis", "keycloak", *REPLICAS):
        assert stack.health(service) == "healthy", service
    assert stack.inspect("proxy")["State"]["Status"] == "running"
    migrate = stack.inspect("migrate")["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    applied = stack.django("from django.db.migrations.recorder import MigrationRecorder as R\n"
                           "print(R.Migration.objects.filter(app='gateway').count())")
    assert int(applied) >= 6  # gateway/migrations, on the compose PostgreSQL


def test_published_ports_are_on_loopback_only_and_answer(stack: Stack) -> None:
    published = stack.compose("ps", "--format", "{{.Service}} {{.Ports}}").stdout
    bound = [line for line in published.splitlines() if "->" in line]
    assert sorted(line.split()[0] for line in bound) == ["keycloak", "proxy"], published
    for line in bound:
        for port in line.split(" ", 1)[1].split(", "):
            assert "->" not in port or port.startswith("127.0.0.1:"), line  # 9000/tcp: exposed only
    assert httpx.get(f"{GATEWAY}/readyz", timeout=10).status_code == 200
    meta = httpx.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == ISSUER  # the public issuer, as the gateways are configured


def test_gateway_image_runs_as_non_root_without_development_tools(stack: Stack) -> None:
    image = stack.inspect("gateway-1")["Config"]["Image"]
    assert image == "ws-gateway:local"
    config = yaml.safe_load(stack.docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] not in ("", "root", "0")
    uid = stack.compose("exec", "-T", "gateway-1", "id", "-u").stdout.strip()
    assert uid != "0"
    probe = ("import importlib.util, sys\n"
             f"print(','.join(m for m in {DEV_TOOLS!r} if importlib.util.find_spec(m)))")
    found = stack.compose("exec", "-T", "gateway-1", ".venv/bin/python", "-c", probe).stdout.strip()
    assert found == "", f"development tools in the image: {found}"
    scripts = stack.compose("exec", "-T", "gateway-1", "ls", ".venv/bin").stdout.split()
    assert not set(scripts) & {"pytest", "mypy", "ruff", "playwright", "daphne", "granian"}
    size = int(stack.docker("image", "inspect", "--format", "{{.Size}}", image).stdout)
    print(f"\ncompose: {image} is {size / 2**20:.0f} MiB", file=sys.stderr)
    assert size < 600 * 2**20


def test_ensure_containers_again_reuses_everything_quickly(stack: Stack) -> None:
    """A second run (scripts/test runs it, then this tier's fixture) reuses the engine and
    every image. Found here: dockerd inherited the script's lock, and the next run waited
    for it forever."""
    started = time.monotonic()
    done = subprocess.run([str(ENSURE_SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "building" not in done.stderr and "starting dockerd" not in done.stderr, done.stderr
    assert time.monotonic() - started < 30
