"""The public API is named in one place, and the service's wiring stays behind it.

The import-linter contract (``scripts/test``) refuses any import from ``config`` or
``consumers`` into a module it forbids; these tests keep that list whole and the public
modules honest: each name resolves to its home's object, loads lazily, and is documented.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import gateway
from gateway.api import _lazy

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = ("gateway.api", "gateway.api.server", "gateway.api.consumers")
CONTRACT = "The service's wiring uses the library's public API (gateway.api), like any host project"


def _contract() -> dict[str, object]:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["name"] == CONTRACT]
    return dict(contract)


def test_the_contract_forbids_every_module_of_the_glue_but_the_api_without_exceptions() -> None:
    contract = _contract()
    rooms = {f"gateway.{module.name}" for module in pkgutil.iter_modules(gateway.__path__)}
    assert "gateway.api" in rooms
    assert set(contract["forbidden_modules"]) == rooms - {"gateway.api"}  # type: ignore[call-overload]
    assert set(contract["source_modules"]) == {"config", "consumers"}  # type: ignore[call-overload]
    assert "ignore_imports" not in contract, "every gap is closed; an exception reopens one"


def test_the_public_modules_are_the_api_package_and_its_two_submodules() -> None:
    package = Path(gateway.__path__[0]) / "api"
    public = {f"gateway.api.{m.name}" for m in pkgutil.iter_modules([str(package)])
              if not m.name.startswith("_")}
    assert {"gateway.api", *public} == set(PUBLIC)


def _lazy_table(module: ModuleType) -> dict[str, str]:
    return dict(getattr(module, "_HOMES", None) or getattr(module, "_AFTER_SETUP", {}))


def _typed_homes(module: ModuleType) -> dict[str, str]:
    """What mypy sees: the module's ``if TYPE_CHECKING:`` imports, in the table's notation."""
    assert module.__file__ is not None
    homes: dict[str, str] = {}
    for node in ast.parse(Path(module.__file__).read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for imported in (n for n in node.body if isinstance(n, ast.ImportFrom)):
                for alias in imported.names:
                    renamed = f":{alias.name}" if alias.asname else ""
                    homes[alias.asname or alias.name] = f"{imported.module}{renamed}"
    return homes


@pytest.mark.parametrize("module_name", PUBLIC)
def test_every_public_name_is_the_object_mypy_checks_it_as(module_name: str) -> None:
    module = importlib.import_module(module_name)
    table = _lazy_table(module)
    assert table == _typed_homes(module), "the lazy table and the TYPE_CHECKING imports differ"
    assert set(table) <= set(module.__all__), "a lazy name missing from __all__"
    for name in module.__all__:
        if name not in table:
            assert name in vars(module), f"{name} is neither imported nor in the lazy table"
            continue
        home, _, attribute = table[name].partition(":")
        assert getattr(module, name) is getattr(importlib.import_module(home), attribute or name)
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        module.nothing_here  # noqa: B018


def test_the_lazy_loader_refuses_names_outside_its_table() -> None:
    with pytest.raises(AttributeError, match=re.escape("'gateway.api.server' has no attribute 'Handshake'")):
        _lazy.load("gateway.api.server", {}, "Handshake")
    assert _lazy.load("m", {"EXT": "gateway.sockets.writenow:EXTENSION"}, "EXT") == "gateway.write_now"


def test_settings_and_a_launcher_may_import_the_public_modules_before_django_setup() -> None:
    """config/settings.py and config/hardening.py import them before the app registry exists;
    importing a model there would raise AppRegistryNotReady."""
    script = (
        "import os, sys\n"
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings_test'\n"
        "from gateway.api import load_config\n"
        "from gateway.api.server import turns, ended_streams, read_int, layer_host\n"
        "from gateway.api.consumers import CHANNEL_CAPACITY, CHANNEL_PREFIX\n"
        "import gateway.api.server, gateway.api.consumers\n"
        "assert 'gateway.models' not in sys.modules\n"
        "assert 'gateway.handshake.middleware' not in sys.modules, 'loaded on first use only'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_service_s_settings_name_public_paths_but_the_two_django_ties_to_a_place() -> None:
    from config import settings as service

    paths = [*service.MIDDLEWARE, *service.AUTHENTICATION_BACKENDS, service.SESSION_ENGINE,
             str(service.CHANNEL_LAYERS["default"]["BACKEND"]), *service._REDIS_LAYERS.values()]
    ours = {path for path in paths if path.startswith("gateway.")}
    assert "gateway.api.server.host_check" in ours
    assert {path for path in ours if not path.startswith("gateway.api.")} == {
        "gateway.login.backend.GatewayOIDCBackend", "gateway.login.session_store"}


def _reference() -> str:
    text = (ROOT / "docs" / "library.md").read_text()
    return text[text.index("## Reference"):text.index("## Why it is built this way")]


@pytest.mark.parametrize("module_name", PUBLIC)
def test_every_public_name_is_documented_in_the_reference(module_name: str) -> None:
    module = importlib.import_module(module_name)
    reference = _reference()
    assert f"`{module_name}`" in reference
    missing = [name for name in module.__all__
               if not re.search(rf"`[^`\n]*\b{re.escape(name)}\b[^`\n]*`", reference)]
    assert not missing, f"document these in docs/library.md's reference: {missing}"
