"""A host project's settings, as ``django-admin startproject`` makes them (cookiecutter's
``config`` package), plus the block of docs/library.md (config/settings_gateway.py)."""

import json
import os
from pathlib import Path

import consumers  # the host's own top-level module, not the gateway's
from config import settings_gateway

assert consumers.HOST_MARKER

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "host-project-secret-key-for-the-library-tier-0123456789"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    *(["daphne"] if os.environ.get("HOST_DAPHNE") else []),
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "chat",
    *settings_gateway.INSTALLED_APPS,
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "config.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
ASGI_APPLICATION = "config.asgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.environ.get("HOST_DB", str(BASE_DIR / "db.sqlite3")),
                         "OPTIONS": {"timeout": 20}}}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
AUTHENTICATION_BACKENDS = settings_gateway.AUTHENTICATION_BACKENDS
GATEWAY = {**settings_gateway.GATEWAY, **json.loads(os.environ.get("HOST_GATEWAY_EXTRA", "{}"))}
LOGIN_REDIRECT_URL = "/admin/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
