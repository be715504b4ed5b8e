"""Run the real Keycloak server natively for the Keycloak test tier.

``scripts/ensure-keycloak`` fetches and pre-builds the pinned distribution once (into
``.cache/keycloak/``); here each run gets its own throwaway Keycloak home: ``bin/`` and
``conf/`` copied, ``lib/``, ``providers/`` and ``themes/`` linked, and a fresh ``data/``
holding a copy of the primed H2 database (schema and master realm only, made once by the
script) and ``data/import/gateway-realm.json`` (a copy of ``deploy/keycloak/realm.json``,
the realm file compose mounts). The server runs ``kc.sh start --optimized`` (no augmentation
at start) on 127.0.0.1 with a pinned ``--hostname``, so every token's ``iss`` is the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devidp.launcher import stop_process

ROOT = Path(__file__).resolve().parents[2]
REALM = "gateway"
REALM_FILE = ROOT / "deploy" / "keycloak" / "realm.json"
ENSURE_SCRIPT = ROOT / "scripts" / "ensure-keycloak"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin-password-for-tests"  # as in ensure-keycloak
HOST = "127.0.0.1"


class KeycloakUnavailable(RuntimeError):
    """Keycloak could not be fetched, built or started; the message names the reason."""


@dataclass(frozen=True)
class Distribution:
    home: Path
    java_home: Path
    h2_template: Path


def ensure_distribution() -> Distribution:
    """Run scripts/ensure-keycloak; return where it put the server, the JDK and the template."""
    done = subprocess.run([str(ENSURE_SCRIPT)], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        raise KeycloakUnavailable(
            f"scripts/ensure-keycloak failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return Distribution(Path(values["KC_HOME"]), Path(values["JAVA_HOME"]),
                        Path(values["H2_TEMPLATE"]))


def make_home(dist: Distribution, home: Path, realm_file: Path = REALM_FILE) -> Path:
    """A private Keycloak home sharing the pre-built lib/ with the cached distribution."""
    home.mkdir(parents=True)
    for name in ("bin", "conf"):
        shutil.copytree(dist.home / name, home / name)
    for name in ("lib", "providers", "themes"):
        (home / name).symlink_to(dist.home / name, target_is_directory=True)
    shutil.copytree(dist.h2_template, home / "data" / "h2")
    (home / "data" / "import").mkdir(parents=True)
    shutil.copyfile(realm_file, home / "data" / "import" / f"{REALM}-realm.json")
    return home


@dataclass
class Keycloak:
    """A running Keycloak with the gateway realm, and small admin helpers."""

    port: int
    management_port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    secrets: Mapping[str, str]
    started_in: float = 0.0
    _admin_token: tuple[str, float] = field(default=("", 0.0), repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    @property
    def admin_credentials(self) -> tuple[str, str]:
        return ADMIN_USER, ADMIN_PASSWORD

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, timeout=20)

    def wait_ready(self, timeout: float) -> None:
        """Poll /health/ready on the management port; raise with the log tail on failure."""
        started = time.monotonic()
        deadline = started + timeout
        url = f"http://{HOST}:{self.management_port}/health/ready"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KeycloakUnavailable(
                    f"Keycloak exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise KeycloakUnavailable(f"Keycloak not ready after {timeout:.0f} s:\n{self.log()[-4000:]}")

    # -- tokens -----------------------------------------------------------------------------

    def endpoint(self, name: str) -> str:
        paths = {"token": "token", "certs": "certs", "logout": "logout", "auth": "auth"}
        return f"{self.issuer}/protocol/openid-connect/{paths[name]}"

    def admin_token(self) -> str:
        token, expires = self._admin_token
        if time.time() < expires - 10:
            return token
        response = httpx.post(f"{self.base_url}/realms/master/protocol/openid-connect/token",
                              data={"grant_type": "password", "client_id": "admin-cli",
                                    "username": ADMIN_USER, "password": ADMIN_PASSWORD},
                              timeout=10)
        response.raise_for_status()
        body = response.json()
        self._admin_token = (body["access_token"], time.time() + body["expires_in"])
        return self._admin_token[0]

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A call to the admin REST API under /admin/realms/gateway (path starts with /)."""
        return httpx.request(method, f"{self.base_url}/admin/realms/{REALM}{path}",
                             headers={"Authorization": f"Bearer {self.admin_token()}"},
                             timeout=20, **kwargs)

    def client_credentials(self, client_id: str, scope: str | None = None) -> dict[str, Any]:
        data = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
        response = httpx.post(self.endpoint("token"), data=data,
                              auth=(client_id, self.secrets[client_id]), timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def user_id(self, username: str) -> str:
        users = self.admin("GET", "/users", params={"username": username, "exact": "true"}).json()
        return str(users[0]["id"])

    def client_uuid(self, client_id: str) -> str:
        return str(self.admin("GET", "/clients", params={"clientId": client_id}).json()[0]["id"])


def launch(tmp: Path, port: int, management_port: int, realm_env: Mapping[str, str],
           secrets: Mapping[str, str]) -> Keycloak:
    """Start Keycloak (does not wait): ``start --optimized`` with the realm imported."""
    dist = ensure_distribution()
    home = make_home(dist, tmp / "keycloak-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KC_", "KEYCLOAK_"))}
    env.update(realm_env)
    env.update({"JAVA_HOME": str(dist.java_home),
                "KC_BOOTSTRAP_ADMIN_USERNAME": ADMIN_USER,
                "KC_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD})
    log_file = tmp / "keycloak.log"
    with log_file.open("wb") as handle:
        process = subprocess.Popen(
            [str(home / "bin" / "kc.sh"), "start", "--optimized",
             "--http-enabled=true", f"--http-host={HOST}", f"--http-port={port}",
             f"--http-management-port={management_port}",
             f"--hostname=http://{HOST}:{port}", "--hostname-backchannel-dynamic=true",
             "--cache=local", "--import-realm"],
            cwd=home, env=env, stdout=handle, stderr=subprocess.STDOUT)
    return Keycloak(port, management_port, process, log_file, secrets)
