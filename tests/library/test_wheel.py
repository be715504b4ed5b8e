"""What the wheel ships: gateway and oidc with their files, library dependencies, service extras."""

from __future__ import annotations

import zipfile
from email.parser import Parser
from pathlib import Path

SERVICE_ONLY = {"uvicorn", "servestatic", "psycopg", "channels-redis", "django-stubs-ext"}
BENCH_ONLY = {"granian"}  # GATEWAY_SERVER=granian, for comparison
DEVELOPMENT = {"pytest", "mypy", "ruff", "playwright", "hypothesis", "import-linter", "daphne"}


def _name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip()


def test_the_wheel_ships_gateway_and_oidc_with_templates_static_and_migrations(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {
        "gateway", "oidc"}, "config and consumers are names host projects use for their own code"
    for needed in ("gateway/templates/gateway/oversight/live.html", "gateway/static/gateway/client.js",
                   "gateway/migrations/0001_initial.py", "gateway/api/__init__.py",
                   "gateway/api/server.py", "gateway/api/consumers.py", "gateway/py.typed"):
        assert needed in names


def test_dependencies_are_the_library_s_and_the_service_adds_extras(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(archive.read(meta).decode())
    requires = metadata.get_all("Requires-Dist") or []
    library = {_name(r) for r in requires if "extra ==" not in r}
    service = {_name(r) for r in requires if 'extra == "service"' in r}
    bench = {_name(r) for r in requires if 'extra == "bench"' in r}
    assert {"django", "channels", "joserfc", "mozilla-django-oidc"} <= library
    assert not library & (SERVICE_ONLY | BENCH_ONLY | DEVELOPMENT)
    assert (service, bench) == (SERVICE_ONLY, BENCH_ONLY)
    assert set(metadata.get_all("Provides-Extra") or []) == {"service", "bench"}, "no dev extra"
    assert not any("==" in r for r in requires if "extra ==" not in r), "ranges, not pins"
