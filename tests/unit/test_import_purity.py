"""``oidc`` must import neither Django nor Channels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["oidc", "oidc.errors", "oidc.types", "oidc.profiles", "oidc.config", "oidc.jws",
           "oidc.claims", "oidc.jwks", "oidc.verify", "oidc.logout", "oidc.introspection",
           "oidc.discovery", "oidc.policy"]
CHECK = (
    f"import {', '.join(MODULES)}; import sys; "
    "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.') "
    "or m == 'channels' or m.startswith('channels.') or m.startswith('httpx')]; "
    "assert not bad, bad"
)


def test_oidc_imports_no_django_or_channels():
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
