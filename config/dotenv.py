"""The ``.env`` file: the server's environment, written down for ``manage.py``.

Format, one variable a line (a subset of what docker compose and python-dotenv read)::

    # comment
    GATEWAY_OIDC_ISSUER=https://idp.example.com/realms/acme
    export GATEWAY_DEV=true
    GATEWAY_OIDC_SCOPES="openid profile email"

Blank lines and ``#`` comments are skipped; ``export`` is allowed and ignored; a value may
be wrapped in one pair of matching single or double quotes, which are removed. There is
no escaping, no interpolation and no multi-line value. A variable already set in the
environment is never overridden, so the real environment always wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class EnvFileError(ValueError):
    """A line of the file is not ``KEY=VALUE``; the message names the file and line."""


def parse_env_file(text: str, origin: str = ".env") -> dict[str, str]:
    """The variables of an env file, in order; raises EnvFileError naming a bad line."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _NAME.fullmatch(name):
            raise EnvFileError(f"{origin}, line {number}: expected KEY=VALUE, "
                               f"with KEY made of letters, digits and _")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def load_env_file(path: Path, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Add the file's variables to ``environ`` (default os.environ) where not already set.

    Returns the names it set. A missing file sets nothing.
    """
    target = os.environ if environ is None else environ
    if not path.is_file():
        return []
    added = []
    for name, value in parse_env_file(path.read_text(encoding="utf-8"), str(path)).items():
        if name not in target:
            target[name] = value
            added.append(name)
    return added


def write_env_file(path: Path, values: Mapping[str, str], header: str) -> None:
    """Write ``values`` as an env file readable by ``parse_env_file`` (mode 0600: it
    may hold a client secret)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, value in values.items():
        if not _NAME.fullmatch(name) or "\n" in value:
            raise EnvFileError(f"cannot write {name!r} to an env file")
        lines.append(f"{name}={value}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
