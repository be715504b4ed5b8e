#!/usr/bin/env python3
"""Django's command-line utility, with the gateway's environment.

    ./manage.py createsuperuser
    ./manage.py explain --route /ws/ < token.txt
    ./manage.py check --deploy

Variables come from the environment, then from ``.env`` beside this file (or the file
named by ``GATEWAY_ENV_FILE``) for those not set (``config/dotenv.py``; ``scripts/dev``
writes one for the development stack). When the project's ``.venv`` exists, the command
runs with its Python.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _use_venv() -> None:
    """Re-run under .venv/bin/python when started by another interpreter."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        os.execv(venv_python, [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])  # noqa: S606


def main() -> None:
    _use_venv()
    sys.path.insert(0, str(ROOT))
    from config.dotenv import EnvFileError, load_env_file

    env_file = Path(os.environ.get("GATEWAY_ENV_FILE") or ROOT / ".env")
    try:
        load_env_file(env_file)
    except EnvFileError as exc:
        sys.exit(f"manage.py: {exc}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from gateway.conf.env import ConfigError

    try:
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        sys.exit(f"manage.py: {exc}\n(set it in the environment or in {env_file})")


if __name__ == "__main__":
    main()
