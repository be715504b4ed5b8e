"""./manage.py as a Django user runs it: the server's environment from an env file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config.dotenv import write_env_file
from devidp.stack import ROOT, gateway_env

MANAGE = str(ROOT / "manage.py")


def run(env_file: Path, *args: str, extra: dict[str, str] | None = None,
        stdin: str = "") -> subprocess.CompletedProcess[str]:
    """manage.py with no GATEWAY_* variable in its environment except ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "DJANGO_"))}
    env.update({"GATEWAY_ENV_FILE": str(env_file), **(extra or {})})
    return subprocess.run([sys.executable, MANAGE, *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def dev_env_file(tmp_path: Path) -> Path:
    env = gateway_env("http://127.0.0.1:9/unused-issuer", 8000,
                      database_file=tmp_path / "gateway.sqlite3")
    ours = {k: v for k, v in env.items() if k.startswith("GATEWAY_")}
    path = tmp_path / "dev.env"
    write_env_file(path, ours, "test")
    return path


def test_check_createsuperuser_and_explain_read_the_env_file(tmp_path: Path) -> None:
    env_file = dev_env_file(tmp_path)
    assert run(env_file, "check").returncode == 0
    assert run(env_file, "migrate", "--noinput", "-v", "0").returncode == 0
    created = run(env_file, "createsuperuser", "--noinput", "--username", "root",
                  "--email", "root@example.com",
                  extra={"DJANGO_SUPERUSER_PASSWORD": "a-long-test-password-1"})
    assert created.returncode == 0, created.stderr
    listed = run(env_file, "shell", "-c",
                 "from django.contrib.auth.models import User; "
                 "print([u.username for u in User.objects.filter(is_superuser=True)])")
    assert listed.stdout.strip().splitlines()[-1] == "['root']", listed.stderr
    explained = run(env_file, "explain", "--route", "/no/such/route/", stdin="x")
    assert explained.returncode == 1
    assert "no route is declared at /no/such/route/" in explained.stderr


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    env_file = dev_env_file(tmp_path)
    with env_file.open("a") as handle:
        handle.write("GATEWAY_LEEWAY_SECONDS=999\n")  # invalid: refused at startup
    refused = run(env_file, "check")
    assert refused.returncode != 0
    assert "GATEWAY_LEEWAY_SECONDS='999'" in refused.stderr
    assert run(env_file, "check", extra={"GATEWAY_LEEWAY_SECONDS": "5"}).returncode == 0


def test_a_missing_required_variable_names_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("# nothing\n")
    refused = run(empty, "check")
    assert refused.returncode != 0
    assert "GATEWAY_OIDC_CLIENT_ID is not set" in refused.stderr
    assert str(empty) in refused.stderr
