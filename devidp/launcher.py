"""Start and control the development OpenID provider (``devidp/server.mjs``).

Pure standard library plus httpx; no Django. Used by the gateway's run command and by
end-to-end tests::

    idp = devidp.start(9000, "http://127.0.0.1:8000")
    try:
        ...  # idp.issuer == "http://127.0.0.1:9000"
    finally:
        idp.stop()

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

PACKAGE_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = PACKAGE_DIR / "server.mjs"
NODE_MODULES = PACKAGE_DIR / "node_modules"

HOST = "127.0.0.1"

#: Resource indicator (and ``aud``) of the JWT access tokens.
API_AUDIENCE = "urn:wsgateway:api"
#: Resource indicator whose access tokens are opaque (for RFC 7662 introspection).
OPAQUE_AUDIENCE = "urn:wsgateway:opaque-api"
#: Scopes of the API resource.
API_SCOPES = ("ws", "publish", "ops")

#: Initial users (login -> attributes); ``set_groups`` changes the provider, not this dict.
USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "password": "alice-password",
        "groups": ["engineering", "admins"],
        "roles": ["admin", "developer"],
        "email": "alice@example.com",
    },
    "bob": {
        "password": "bob-password",
        "groups": ["engineering"],
        "roles": ["developer"],
        "email": "bob@example.com",
    },
}

#: client id -> client secret
CLIENTS: dict[str, str] = {
    "gateway": "gateway-secret",
    "svc-reader": "svc-reader-secret",
    "svc-publisher": "svc-publisher-secret",
}


def stop_process(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate a child process, killing it if it does not exit in time (idempotent)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


class DevIdpError(RuntimeError):
    """The development provider could not be started or controlled."""


@dataclass
class DevIdp:
    issuer: str
    port: int
    process: subprocess.Popen[bytes]
    keys_file: Path
    log_file: Path | None = None
    _log_handle: IO[bytes] | None = field(default=None, repr=False)
    _tmpdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def _post(self, path: str, json: object | None = None) -> dict[str, Any]:
        try:
            response = httpx.post(f"{self.issuer}{path}", json=json, timeout=10.0)
        except httpx.HTTPError as exc:
            raise DevIdpError(f"devidp {path} failed: {exc}") from exc
        if response.status_code != 200:
            raise DevIdpError(f"devidp {path} answered {response.status_code}: {response.text}")
        answer: dict[str, Any] = response.json()
        return answer

    def rotate_keys(self) -> str:
        """Add a new RS256 signing key (old keys stay in the JWKS); returns the new kid."""
        return str(self._post("/__dev/rotate-keys")["kid"])

    def set_groups(self, login: str, groups: list[str], roles: list[str]) -> None:
        """Change a user's groups and roles at the running provider."""
        self._post(f"/__dev/users/{login}/groups", {"groups": list(groups), "roles": list(roles)})

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_file, lines)

    def stop(self) -> None:
        """Terminate the provider process (idempotent)."""
        stop_process(self.process)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> DevIdp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _tail(path: Path | None, lines: int) -> str:
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise DevIdpError("node not found on PATH; the dev provider needs Node.js (20 or later)")
    return node


def check_installed() -> None:
    """Raise DevIdpError naming the fix if the npm dependencies are missing."""
    if not (NODE_MODULES / "oidc-provider").is_dir():
        raise DevIdpError(f"{NODE_MODULES} is missing oidc-provider; run: npm ci --prefix devidp")


def build_env(
    port: int,
    gateway_url: str,
    *,
    extra_gateway_urls: Sequence[str] = (),
    access_token_ttl: int = 300,
    id_token_ttl: int = 300,
    keys_file: Path,
    end_session: bool = True,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DEVIDP_PORT": str(port),
            "DEVIDP_GATEWAY_URL": gateway_url,
            "DEVIDP_EXTRA_GATEWAY_URLS": ",".join(extra_gateway_urls),
            "DEVIDP_KEYS_FILE": str(keys_file),
            "DEVIDP_ACCESS_TOKEN_TTL": str(access_token_ttl),
            "DEVIDP_ID_TOKEN_TTL": str(id_token_ttl),
            "DEVIDP_API_AUDIENCE": API_AUDIENCE,
            "DEVIDP_OPAQUE_AUDIENCE": OPAQUE_AUDIENCE,
            "DEVIDP_PARENT_PID": str(os.getpid()),
            "DEVIDP_END_SESSION": "on" if end_session else "off",
        }
    )
    return env


def start(
    port: int,
    gateway_url: str,
    *,
    extra_gateway_urls: Sequence[str] = (),
    access_token_ttl: int = 300,
    id_token_ttl: int = 300,
    keys_file: Path | None = None,
    log_file: Path | None = None,
    ready_timeout: float = 30.0,
    attempts: int = 2,
    end_session: bool = True,
) -> DevIdp:
    """Start ``node devidp/server.mjs`` on 127.0.0.1:``port`` and wait for discovery.

    ``keys_file`` defaults to a file in a temporary directory removed by ``stop()``;
    ``log_file`` defaults to a file beside it (stdout and stderr of the provider).
    A process that is alive but silent after ``ready_timeout`` is replaced, up to
    ``attempts`` processes in all. ``end_session=False`` runs it without RP-initiated
    logout (no ``end_session_endpoint``), like a provider that offers none.
    """
    check_installed()
    node = _node()
    tmpdir: tempfile.TemporaryDirectory[str] | None = None
    if keys_file is None or log_file is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="devidp-")
    if keys_file is None:
        assert tmpdir is not None
        keys_file = Path(tmpdir.name) / "keys.json"
    if log_file is None:
        assert tmpdir is not None
        log_file = Path(tmpdir.name) / "devidp.log"
    keys_file = Path(keys_file).resolve()
    log_file = Path(log_file).resolve()
    log_file.parent.mkdir(parents=True, exist_ok=True)

    env = build_env(
        port,
        gateway_url,
        extra_gateway_urls=extra_gateway_urls,
        access_token_ttl=access_token_ttl,
        id_token_ttl=id_token_ttl,
        keys_file=keys_file,
        end_session=end_session,
    )
    log_handle = log_file.open("ab")

    def launch() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [node, str(SERVER_SCRIPT)],
            cwd=PACKAGE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )

    idp = DevIdp(
        issuer=f"http://{HOST}:{port}",
        port=port,
        process=launch(),
        keys_file=keys_file,
        log_file=log_file,
        _log_handle=log_handle,
        _tmpdir=tmpdir,
    )
    try:
        wait_ready_relaunching(idp, launch, ready_timeout, attempts)
    except BaseException:
        idp.stop()
        raise
    return idp


class DevIdpStalled(DevIdpError):
    """The provider process is alive but did not answer discovery in time."""


def wait_ready_relaunching(
    idp: DevIdp, launch: Callable[[], subprocess.Popen[bytes]], timeout: float, attempts: int
) -> None:
    """Wait for discovery; a process that stalls is replaced, up to ``attempts`` in all.

    A stall has been seen once on a fresh CI machine (alive, silent, not listening after
    20 s) and never reproduced; the log keeps what the stalled process was doing.
    """
    for attempt in range(1, attempts + 1):
        try:
            _wait_ready(idp, timeout)
            return
        except DevIdpStalled as exc:
            if attempt == attempts:
                raise
            _note(idp, f"launcher: attempt {attempt} stalled ({exc.args[0]}); starting again")
            stop_process(idp.process)
            idp.process = launch()


def _note(idp: DevIdp, line: str) -> None:
    if idp._log_handle is not None:
        idp._log_handle.write(f"{line}\n".encode())
        idp._log_handle.flush()


def process_state(pid: int) -> str:
    """What a stalled process is doing: its state, CPU seconds and kernel wait channel."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text() or "-"
    except OSError as exc:
        return f"state unknown: {exc}"
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return f"state {fields[0]}, {cpu:.2f} s CPU, wchan {wchan}"


def _wait_ready(idp: DevIdp, timeout: float) -> None:
    url = f"{idp.issuer}/.well-known/openid-configuration"
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if idp.process.poll() is not None:
            raise DevIdpError(
                f"devidp exited with code {idp.process.returncode} before it was ready;"
                f" log tail:\n{idp.log_tail()}"
            )
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200 and response.json().get("issuer") == idp.issuer:
                return
            last_error = f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            last_error = str(exc) or type(exc).__name__
        time.sleep(0.1)
    raise DevIdpStalled(
        f"devidp did not answer {url} within {timeout:.0f}s ({last_error};"
        f" {process_state(idp.process.pid)}); log tail:\n{idp.log_tail()}"
    )


def run_foreground(
    port: int,
    gateway_url: str,
    *,
    extra_gateway_urls: Sequence[str] = (),
    access_token_ttl: int = 300,
    id_token_ttl: int = 300,
    keys_file: Path | None = None,
) -> int:
    """Run the provider in the foreground with its output on this terminal."""
    check_installed()
    if keys_file is None:
        keys_file = Path.cwd() / "var" / "devidp" / f"keys-{port}.json"
    env = build_env(
        port,
        gateway_url,
        extra_gateway_urls=extra_gateway_urls,
        access_token_ttl=access_token_ttl,
        id_token_ttl=id_token_ttl,
        keys_file=Path(keys_file).resolve(),
    )
    argv = [_node(), str(SERVER_SCRIPT)]
    process = subprocess.Popen(argv, cwd=PACKAGE_DIR, env=env)

    def _forward(signum: int, _frame: object) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, _forward)
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                # node got the SIGINT from the terminal too; wait for it to finish
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
