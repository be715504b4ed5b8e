"""The compose stack under test: compose.yaml, as users bring it up, on a real Docker engine.

``scripts/ensure-containers`` provides the engine, the Compose CLI and the images; this module
runs ``compose`` against the unchanged top-level ``compose.yaml``, watches the engine's events
for the project, and reads what the tests need to see. HTTP and websocket traffic goes only
through the ports compose publishes on 127.0.0.1 (the proxy on 8000, Keycloak on 8080).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
ENSURE_SCRIPT = ROOT / "scripts" / "ensure-containers"
PROJECT = "ws-gateway"  # compose.yaml's `name`
GATEWAY = "http://localhost:8000"  # the proxy, as compose publishes it
KEYCLOAK = "http://localhost:8080"
REALM = "gateway"
ISSUER = f"{KEYCLOAK}/realms/{REALM}"
REPLICAS = ("gateway-1", "gateway-2")
SERVICES = ("postgres", "redis", "keycloak", "migrate", *REPLICAS, "proxy")
# compose.yaml's demo defaults (the test runs compose with none of these overridden)
ADMIN = ("admin", "admin")
PUBLISHER_SECRET = "publisher-demo-secret-change-me"


class StackUnavailable(RuntimeError):
    """The engine, the Compose CLI, an image or the stack itself could not be had."""


@dataclass(frozen=True)
class Engine:
    docker: str
    compose: str
    env: dict[str, str]  # what the CLIs run with: the project's DOCKER_HOST, nothing inherited
    images: str  # "standin" or "upstream"


def ensure_engine() -> Engine:
    """Run scripts/ensure-containers; raise StackUnavailable with its reason on failure."""
    done = subprocess.run([str(ENSURE_SCRIPT)], cwd=ROOT, capture_output=True, text=True,
                          timeout=3600)
    if done.returncode != 0:
        raise StackUnavailable(f"scripts/ensure-containers failed (exit {done.returncode}):\n"
                               f"{done.stderr[-4000:]}")
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "DOCKER_HOST": values["DOCKER_HOST"], "DOCKER_BUILDKIT": "0",
           # keep compose's own defaults, not whatever the test's shell exported
           "COMPOSE_PROJECT_NAME": PROJECT}
    return Engine(values["DOCKER"], values["COMPOSE"], env, values["IMAGES"])


@dataclass
class EventLog:
    """The engine's events for the project's containers (``docker events``), as they come."""

    process: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, engine: Engine) -> EventLog:
        process = subprocess.Popen(
            # --since: events from this moment, even those before the stream is attached
            [engine.docker, "events", "--since", f"{time.time():.6f}", "--format", "{{json .}}",
             "--filter", "type=container", "--filter", f"label=com.docker.compose.project={PROJECT}"],
            env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        log = cls(process)
        threading.Thread(target=log._read, daemon=True).start()
        return log

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            with self.lock:
                self.events.append(event)

    def of(self, service: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events
                    if e["Actor"]["Attributes"].get("com.docker.compose.service") == service
                    and e["status"] == status]

    def first(self, service: str, status: str) -> int:
        """When ``service`` first had ``status`` (ns since the epoch); fails when it never did."""
        found = self.of(service, status)
        assert found, f"{service} never had {status!r}"
        return int(found[0]["timeNano"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Stack:
    engine: Engine
    events: EventLog
    up_seconds: float = 0.0
    _admin_token: tuple[str, float] = ("", 0.0)

    # -- the CLIs -----------------------------------------------------------------------------

    def compose(self, *args: str, timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.engine.compose, "-f", str(COMPOSE_FILE), *args], cwd=ROOT,
                              env=self.engine.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise StackUnavailable(f"compose {' '.join(args)} failed ({done.returncode}):\n"
                                   f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done

    def docker(self, *args: str, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.engine.docker, *args], env=self.engine.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done

    # -- containers ---------------------------------------------------------------------------

    def container(self, service: str) -> str:
        """The id of the service's container (a finished job's too)."""
        ids = self.compose("ps", "-a", "-q", service).stdout.split()
        assert len(ids) == 1, (service, ids)
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.docker("inspect", self.container(service)).stdout)
        return found[0]

    def health(self, service: str) -> str:
        state = self.inspect(service)["State"]
        return str(state["Health"]["Status"]) if "Health" in state else str(state["Status"])

    def wait_healthy(self, services: Sequence[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {s: self.health(s) for s in services}
            # a service without a health check (the proxy) only has to run
            if all(state in ("healthy", "running") for state in states.values()):
                return
            time.sleep(1)
        raise StackUnavailable(f"not healthy after {timeout:.0f} s: {states}\n{self.logs(*services)}")

    def logs(self, *services: str, tail: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), *services, check=False).stdout

    def hostname(self, service: str) -> str:
        return str(self.inspect(service)["Config"]["Hostname"])

    def replica_of(self, process: str) -> str:
        """Which replica a roster entry's ``host:pid`` belongs to."""
        host = process.split(":")[0]
        for replica in REPLICAS:
            if self.hostname(replica) == host:
                return replica
        raise AssertionError(f"no replica has host {host!r}")

    # -- what the gateways share ----------------------------------------------------------------

    def roster(self) -> list[dict[str, Any]]:
        """Every open socket the gateways list in Redis (gateway.ops.roster), with its replica."""
        raw = self.compose("exec", "-T", "redis", "redis-cli", "--raw", "HVALS", "gw:roster:info").stdout
        entries = [dict(json.loads(line)) for line in raw.splitlines() if line.startswith("{")]
        hosts = {self.hostname(r): r for r in REPLICAS}
        for entry in entries:
            entry["replica"] = hosts.get(entry["process"].split(":")[0], "?")
        return entries

    def replicas_of(self, subject: str) -> list[str]:
        return sorted(e["replica"] for e in self.roster() if e["subject"] == subject)

    def django(self, script: str, *args: str) -> str:
        """Run Python with the gateway's settings inside replica 1 (the image's own venv)."""
        done = self.compose("exec", "-T", "-e", "DJANGO_SETTINGS_MODULE=config.settings",
                            "gateway-1", ".venv/bin/python", "-c",
                            "import django; django.setup()\n" + script, *args)
        return done.stdout

    # -- Keycloak's admin API, through its published port ---------------------------------------

    def admin_token(self) -> str:
        token, expires = self._admin_token
        if time.time() < expires - 10:
            return token
        response = httpx.post(f"{KEYCLOAK}/realms/master/protocol/openid-connect/token",
                              data={"grant_type": "password", "client_id": "admin-cli",
                                    "username": ADMIN[0], "password": ADMIN[1]}, timeout=20)
        response.raise_for_status()
        body = response.json()
        self._admin_token = (body["access_token"], time.time() + body["expires_in"])
        return self._admin_token[0]

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{KEYCLOAK}/admin/realms/{REALM}{path}",
                             headers={"Authorization": f"Bearer {self.admin_token()}"},
                             timeout=20, **kwargs)

    def user_id(self, username: str) -> str:
        users = self.admin("GET", "/users", params={"username": username, "exact": "true"}).json()
        return str(users[0]["id"])

    def publisher_token(self) -> str:
        response = httpx.post(f"{ISSUER}/protocol/openid-connect/token",
                              data={"grant_type": "client_credentials"},
                              auth=("publisher", PUBLISHER_SECRET), timeout=20)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])
