"""``manage.py check --deploy`` is clean in the production environment of docs/deploy.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {  # the example environment in docs/deploy.md
    "GATEWAY_OIDC_ISSUER": "https://login.example.com/realms/gateway",
    "GATEWAY_OIDC_CLIENT_ID": "gateway",
    "GATEWAY_OIDC_CLIENT_SECRET": "from-your-secret-store",
    "GATEWAY_OIDC_PROFILE": "keycloak",
    "GATEWAY_OIDC_AUDIENCES": "gateway-api",
    "GATEWAY_PUBLIC_URL": "https://gw.example.com",
    "GATEWAY_SECRET_KEY": "q5Zt0n3v8yJc2Wm9Lr4Hx7Kd1Pb6Fs0Ga3Ue8Ni5Yo2Tw7Rj4Xe",
    "GATEWAY_DATABASE_URL": "postgres://gateway:secret@db.internal:5432/gateway",
    "GATEWAY_REDIS_URL": "redis://redis.internal:6379/0",
    "GATEWAY_TRUSTED_PROXIES": "10.0.0.0/24",
    "GATEWAY_HSTS_INCLUDE_SUBDOMAINS": "true",
    "GATEWAY_HSTS_PRELOAD": "true",
}


def check_deploy(**changes: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="config.settings", **changes)
    return subprocess.run([sys.executable, "-m", "django", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_check_deploy_is_clean_in_the_documented_environment() -> None:
    result = check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_when_hsts_is_turned_off() -> None:
    result = check_deploy(GATEWAY_HSTS_SECONDS="0")
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr


@pytest.mark.parametrize(("name", "value"), [
    ("GATEWAY_PUBLIC_URL", "https://*"),
    ("GATEWAY_PUBLIC_URL", "https://*.example.com"),
    ("GATEWAY_ALLOWED_ORIGINS", "*"),
    ("GATEWAY_ALLOWED_ORIGINS", "https://app.example.com,https://*.example.com"),
    ("GATEWAY_TRUSTED_PROXIES", "*"),
    ("GATEWAY_METRICS_NETWORKS", "0.0.0.0/0"),
])
def test_wildcards_are_refused_at_startup_naming_the_fix(name: str, value: str) -> None:
    result = check_deploy(**{name: value})
    assert result.returncode != 0
    assert name in result.stderr
    assert "wildcard" in result.stderr
