"""Settings for the in-process test tiers: fixed dev values, then the real settings."""

import os

os.environ.setdefault("GATEWAY_DEV", "true")
os.environ.setdefault("GATEWAY_OIDC_ISSUER", "http://127.0.0.1:9/test-issuer")
os.environ.setdefault("GATEWAY_OIDC_CLIENT_ID", "gateway")
os.environ.setdefault("GATEWAY_OIDC_CLIENT_SECRET", "gateway-secret")
os.environ.setdefault("GATEWAY_OIDC_AUDIENCES", "urn:wsgateway:api")
os.environ.setdefault("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8000")
os.environ.setdefault("GATEWAY_ALLOWED_ORIGINS", "http://127.0.0.1:8000")

from config.settings import *  # noqa: F403
