"""Every setting is defined in one list (``VARIABLES`` in config/env.py), and docs/settings.md
is that list: a variable read anywhere in the source tree but missing from the list, or a
list that the doc no longer matches, fails here."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from config.env import VARIABLES, load_config, settings_markdown
from config.values import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\bGATEWAY_[A-Z][A-Z0-9_]*")
SHELL_READ = re.compile(r"\$\{?(GATEWAY_[A-Z][A-Z0-9_]*)")
# The source tree: product code, the dev provider's launcher, scripts, benchmarks. Tests are
# left out: they name their own helpers GATEWAY_* (GATEWAY_READY_TIMEOUT).
PYTHON_ROOTS = ("oidc", "gateway", "consumers", "config", "devidp", "scripts", "bench")
# Keycloak's realm placeholders (deploy/keycloak/realm.json), set in compose.yaml for Keycloak;
# the gateway never reads them.
NOT_GATEWAY_SETTINGS = {"GATEWAY_CLIENT_SECRET", "GATEWAY_BACKCHANNEL_LOGOUT_URL"}


def _python_files() -> list[Path]:
    files = [ROOT / "manage.py"]
    for top in PYTHON_ROOTS:
        files += [path for path in (ROOT / top).rglob("*.py") if "node_modules" not in path.parts]
    return files


def _names_in_python(path: Path) -> set[str]:
    """GATEWAY_* names in the file's string constants: what it reads from the environment
    (env.get("GATEWAY_X"), os.environ[...], read_bool(env, "GATEWAY_X", ...)) and what its
    messages tell people to set."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.update(NAME.findall(node.value))
    return names


def _shell_scripts() -> list[Path]:
    return [path for path in (ROOT / "scripts").iterdir()
            if path.is_file() and path.suffix == "" and path.read_bytes().startswith(b"#!")]


def test_the_scan_sees_the_known_readers() -> None:
    """Guards the scanner itself: names read in three different ways are found."""
    assert "GATEWAY_WS_PING_SECONDS" in _names_in_python(ROOT / "config" / "serve.py")
    assert "GATEWAY_ENV_FILE" in _names_in_python(ROOT / "manage.py")
    assert any("GATEWAY_PG_DIR" in SHELL_READ.findall(path.read_text()) for path in _shell_scripts())


def test_every_variable_the_code_reads_is_in_the_list() -> None:
    missing: dict[str, list[str]] = {}
    for path in _python_files():
        for name in _names_in_python(path) - set(VARIABLES) - NOT_GATEWAY_SETTINGS:
            missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    for path in _shell_scripts():
        for name in set(SHELL_READ.findall(path.read_text())) - set(VARIABLES):
            missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, (f"read but not in VARIABLES (config/env.py): {missing}; add each with "
                         "its meaning and default, then run python -m config.env --markdown "
                         "> docs/settings.md")


def test_docs_settings_is_generated_from_the_list() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == settings_markdown(), (
        "docs/settings.md is stale: run python -m config.env --markdown > docs/settings.md")


def test_every_listed_variable_is_read_somewhere() -> None:
    """The list holds no variable that nothing reads any more: besides its entry in a
    VARIABLES dict, each name appears in some other string (where it is read) or script."""
    seen: Counter[str] = Counter()
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                seen.update(NAME.findall(node.value))
    for path in _shell_scripts():
        seen.update(SHELL_READ.findall(path.read_text()) * 2)
    unread = sorted(name for name in VARIABLES if seen[name] < 2)
    assert not unread, f"listed in VARIABLES but read nowhere: {unread}"


def test_a_missing_required_variable_reads_as_a_sentence() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({"GATEWAY_OIDC_ISSUER": "https://idp.example.com"})
    assert str(refused.value) == ("GATEWAY_OIDC_CLIENT_ID is not set: set it to the gateway's "
                                  "client id at that provider (required).")
