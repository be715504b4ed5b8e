"""Django settings. All values come from ``gateway.api.load_config`` (read once)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext

from gateway.api import load_config
from gateway.api.consumers import CHANNEL_CAPACITY, CHANNEL_PREFIX
from gateway.api.server import layer_host

django_stubs_ext.monkeypatch()  # generic admin and manager classes, for the type checker

BASE_DIR = Path(__file__).resolve().parent.parent

GATEWAY = load_config()

SECRET_KEY = GATEWAY.secret_key
DEBUG = GATEWAY.dev
ALLOWED_HOSTS = sorted({urlsplit(GATEWAY.public_url).hostname or "127.0.0.1", "127.0.0.1"})
CSRF_TRUSTED_ORIGINS = sorted(GATEWAY.allowed_origins | {GATEWAY.public_url})

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "mozilla_django_oidc",
    "servestatic",  # its system checks
    "gateway",
]

MIDDLEWARE = [
    "gateway.api.release_request",  # outermost: undoes per-request reference cycles
    "gateway.api.server.host_check",  # 400 disallowed_host, audited
    "django.middleware.security.SecurityMiddleware",
    # static files, served asynchronously (WhiteNoise's sync file iterator made Django warn
    # "StreamingHttpResponse must consume synchronous iterators" under ASGI)
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "gateway.api.server.admin_follows_provider",  # expired staff sessions: refresh first
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_db = GATEWAY.database
DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": _db.engine,
        "NAME": _db.name,
        "USER": _db.user,
        "PASSWORD": _db.password,
        "HOST": _db.host,
        "PORT": _db.port,
    }
}
if _db.engine.endswith("sqlite3"):
    Path(_db.name).parent.mkdir(parents=True, exist_ok=True)
    # WAL: one fsync per commit instead of three or four (on a busy disk each took 7-46 ms,
    # and a back-channel logout waited for them before closing any socket: bench/README.md),
    # and a handshake reading its session never waits for a writer. synchronous=FULL keeps
    # every commit durable, so a logged-out session cannot come back after a power loss.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"}

# GATEWAY_CHANNEL_LAYER picks the Redis backend; pubsub won the fan-out benchmark
# (bench/README.md, "fanout.py").
_REDIS_LAYERS = {
    "pubsub": "gateway.api.server.PubSubChannelLayer",  # reports a resubscribed subscriber
    "core": "channels_redis.core.RedisChannelLayer",
}
# Each process reads every socket's group events from one channel (its switchboard):
# the capacity-bounded layers give that channel room for a burst.
SWITCHBOARD_CAPACITY = {f"{CHANNEL_PREFIX}.*": CHANNEL_CAPACITY}
if GATEWAY.redis_url:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _REDIS_LAYERS[GATEWAY.channel_layer],
            "CONFIG": {"hosts": [layer_host(url) for url in GATEWAY.layer_urls]}
            | ({"channel_capacity": SWITCHBOARD_CAPACITY} if GATEWAY.channel_layer == "core" else {}),
        }
    }
else:
    # Channels' own in-memory layer scans every channel on each receive (bench/README.md).
    CHANNEL_LAYERS = {"default": {"BACKEND": "gateway.api.server.FlatInMemoryChannelLayer",
                                  "CONFIG": {"channel_capacity": SWITCHBOARD_CAPACITY}}}

AUTH_USER_MODEL = "auth.User"
AUTHENTICATION_BACKENDS = [
    "gateway.login.backend.GatewayOIDCBackend",  # stored in every session: the path stays
    "django.contrib.auth.backends.ModelBackend",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_ENGINE = "gateway.login.session_store"  # database sessions, lean async read
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = GATEWAY.cookie_secure
CSRF_COOKIE_SECURE = GATEWAY.cookie_secure
SESSION_COOKIE_AGE = 8 * 3600

# mozilla-django-oidc: endpoints come from discovery (gateway.issuers.registry), not from here.
OIDC_RP_CLIENT_ID = GATEWAY.client_id
OIDC_RP_CLIENT_SECRET = GATEWAY.client_secret  # "" with private_key_jwt
OIDC_RP_SCOPES = GATEWAY.scopes
OIDC_RP_SIGN_ALGO = GATEWAY.algorithms[0]
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
# No OIDC_TOKEN_USE_BASIC_AUTH: the backend's get_token authenticates the code exchange with
# GATEWAY_OIDC_CLIENT_AUTH (gateway.issuers.tokenclient), as refresh and introspection do.
OIDC_TIMEOUT = 10
OIDC_CREATE_USER = True
LOGIN_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"  # filled by collectstatic (scripts/serve does it)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # ServeStatic warns about a missing one
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"
                    if not DEBUG else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = DEBUG  # dev: serve straight from the apps, no collectstatic needed

# TLS and proxies (docs/deploy.md). X-Forwarded-* are honoured only from
# GATEWAY_TRUSTED_PROXIES, in config/asgi.py, which sets the request's scheme and client.
_deploy = GATEWAY.deployment
SECURE_HSTS_SECONDS = _deploy.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = _deploy.hsts_include_subdomains
SECURE_HSTS_PRELOAD = _deploy.hsts_preload
SECURE_SSL_REDIRECT = _deploy.ssl_redirect
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain http inside the network
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "gateway.audit": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gateway": {"handlers": ["stdout"], "level": "INFO"},
    },
}
