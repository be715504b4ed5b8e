"""Runtime and development dependencies are locked apart (issue 19).

``requirements.lock`` is what the image installs (the Dockerfile); ``requirements-dev.lock``
is what ``scripts/setup`` installs into ``.venv``: the same pins plus test, lint and
benchmark tools.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = {"pytest", "mypy", "ruff", "playwright", "daphne", "hypothesis", "granian",
            "import-linter", "django-stubs", "pytest-django", "pytest-asyncio"}


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    return dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)$", text, re.M))


def test_runtime_lock_has_no_development_tools() -> None:
    runtime = pins("requirements.lock")
    assert {"django", "channels", "uvicorn", "psycopg"} <= set(runtime)
    assert not DEV_ONLY & set(runtime)


def test_dev_lock_is_the_runtime_lock_plus_tools_at_the_same_versions() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {k: dev.get(k) for k in runtime} == runtime
    assert set(dev) >= DEV_ONLY


def test_the_image_installs_the_runtime_lock_and_setup_the_dev_lock() -> None:
    dockerfile = "\n".join(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                           if not line.startswith("#"))
    assert "-r requirements.lock" in dockerfile and "requirements-dev.lock" not in dockerfile
    assert "-r requirements-dev.lock" in (ROOT / "scripts" / "setup").read_text()
