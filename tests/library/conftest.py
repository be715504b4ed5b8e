"""The library tier: the wheel in a fresh virtualenv, a host project, devidp, two servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import devidp
from devidp.stack import free_port
from tests.library.hostproject import (
    HostServer,
    build_wheel,
    host_env,
    make_project,
    make_venv,
    run,
    start_server,
)


@dataclass
class Host:
    server: str
    url: str
    idp: devidp.DevIdp
    hosted: HostServer

    @property
    def gateway(self) -> str:
        """Where the host mounted ``include("gateway.urls")``."""
        return f"{self.url}/gateway"


# Both ends of the supported range (pyproject.toml): the oldest Django and Channels allowed,
# and the newest the installer picks for this Python.
ADMIN_PASSWORD = "owner-password-for-the-host-admin"
VERSIONS = {"oldest": ("django==5.2", "channels==4.2.0"), "newest": ()}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session", params=sorted(VERSIONS))
def host_python(request: pytest.FixtureRequest, wheel: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = make_venv(tmp_path_factory.mktemp(f"venv-{request.param}"), wheel,
                       *VERSIONS[request.param])
    installed = run(python, "-c", "import channels, django; print(f'django=={django.__version__} '"
                    "f'channels=={channels.__version__}')").split()
    for pin in VERSIONS[request.param]:
        assert pin in installed, (pin, installed)
    return python


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def host(request: pytest.FixtureRequest, host_python: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    server: str = request.param
    tmp = tmp_path_factory.mktemp(f"host-{server}")
    project = make_project(tmp)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    idp = devidp.start(free_port(), f"{url}/gateway", log_file=tmp / "idp.log",
                       keys_file=tmp / "keys.json")
    hosted = None
    try:
        extra = json.dumps({"OIDC_AUDIENCES": [devidp.API_AUDIENCE],
                            "OIDC_SCOPES": "openid profile email offline_access ws",
                            "PUBLIC_URL": url, "ALLOWED_ORIGINS": [url]})
        env = host_env(project, idp.issuer, url, extra)
        run(host_python, "manage.py", "check", cwd=project, env=env)
        run(host_python, "manage.py", "migrate", "-v0", cwd=project, env=env)
        run(host_python, "manage.py", "shell", "-c",
            "from gateway.models import Grant; "
            f"Grant.objects.create(issuer={idp.issuer!r}, claim='groups', value='engineering', "
            "target='rooms.lobby', subscribe=True)", cwd=project, env=env)
        run(host_python, "manage.py", "createsuperuser", "--noinput", "--username", "owner",
            "--email", "owner@example.com", cwd=project,
            env={**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD})
        hosted = start_server(host_python, project, server, port, env, tmp / f"{server}.log")
        yield Host(server, url, idp, hosted)
    finally:
        if hosted is not None:
            hosted.stop()
        idp.stop()
