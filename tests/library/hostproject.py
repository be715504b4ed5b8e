"""A throwaway host project with the gateway installed from its wheel, as docs/library.md says.

The wheel is built from a copy of the checkout (no build files left in it) and installed into
a fresh virtualenv with only its own dependencies and the two servers. The project is
``tests/library/host`` (a ``startproject`` layout with its own ``config`` package and a
top-level ``consumers`` module) plus every block of docs/library.md marked
``<!-- host: <path> -->``, written verbatim.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HOST_TEMPLATE = Path(__file__).resolve().parent / "host"
DOC = ROOT / "docs" / "library.md"
BLOCK = re.compile(r"<!-- host: (?P<path>[\w/.]+) -->\n```python\n(?P<code>.*?)```", re.S)


def doc_blocks() -> dict[str, str]:
    blocks = {m["path"]: m["code"] for m in BLOCK.finditer(DOC.read_text())}
    assert {"config/asgi.py", "config/urls.py", "chat/consumers.py",
            "config/settings_gateway.py"} <= set(blocks), sorted(blocks)
    return blocks


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    for name in ("gateway", "oidc"):
        shutil.copytree(ROOT / name, source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
        "-w", tmp / "dist", source)
    (wheel,) = (tmp / "dist").glob("*.whl")
    return wheel


def make_venv(tmp: Path, wheel: Path, *pins: str) -> Path:
    """A fresh virtualenv with the wheel, its dependencies and the two servers."""
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel,
        "daphne>=4.2", "uvicorn>=0.30", "websockets>=13", *pins)
    return python


def make_project(tmp: Path) -> Path:
    project = tmp / "mysite"
    shutil.copytree(HOST_TEMPLATE, project, ignore=shutil.ignore_patterns("__pycache__"))
    for path, code in doc_blocks().items():
        (project / path).write_text(code)
    return project


@dataclass
class HostServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(python: Path, project: Path, server: str, port: int, env: dict[str, str],
                 log: Path) -> HostServer:
    """``manage.py runserver`` (daphne, no lifespan) or uvicorn, then wait for HTTP."""
    if server == "daphne":
        args = [str(python), "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
        env = {**env, "HOST_DAPHNE": "1"}
    else:
        args = [str(python), "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--ws", "websockets"]
    handle = log.open("wb")
    process = subprocess.Popen(args, cwd=project, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    hosted = HostServer(url, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{server} exited: {hosted.output()[-3000:]}")
        try:
            if httpx.get(f"{url}/admin/login/", timeout=2).status_code == 200:
                return hosted
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    hosted.stop()
    raise AssertionError(f"{server} did not answer: {hosted.output()[-3000:]}")


def host_env(project: Path, issuer: str, url: str, extra_json: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "DJANGO_", "VIRTUAL_ENV", "PYTHON"))}
    env.update({"OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": "gateway",
                "OIDC_CLIENT_SECRET": "gateway-secret", "HOST_GATEWAY_EXTRA": extra_json,
                "HOST_DB": str(project / "db.sqlite3"), "DJANGO_SETTINGS_MODULE": "config.settings"})
    return env
