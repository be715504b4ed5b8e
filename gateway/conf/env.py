"""Gateway configuration: read once from the environment, validated, frozen.

Every variable is listed in ``VARIABLES`` with its meaning; ``load_config`` is
the only reader of ``os.environ`` in the project. A bad value fails here, at
startup, with a message that names the variable and the fix.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast
from urllib.parse import unquote, urlsplit

from gateway.bus.target import RedisUrlError, parse_sentinel
from gateway.conf.clientauth import VARIABLES as CLIENT_AUTH_VARIABLES
from gateway.conf.clientauth import ClientAuth, load_client_auth
from gateway.conf.deployment import VARIABLES as DEPLOYMENT_VARIABLES
from gateway.conf.deployment import Deployment, load_deployment
from gateway.conf.staffing import VARIABLES as STAFFING_VARIABLES
from gateway.conf.staffing import AdminMapping, load_admin_mapping
from gateway.conf.values import ConfigError, csv, read_bool, read_choice, read_int, read_seconds
from oidc.config import (
    END_SESSION_METHODS,
    GROUP_OVERAGE_CHOICES,
    EndSessionMethod,
    GroupOverage,
    check_typless_audiences,
)
from oidc.profiles import PROFILES, IssuerProfile, customised

BASE_DIR = Path(__file__).resolve().parents[2]  # the checkout: the service's defaults live there

VARIABLES: dict[str, str] = {
    "GATEWAY_OIDC_ISSUER": "the issuer URL of the identity provider used for browser login, "
    "exactly as its tokens' iss (required)",
    "GATEWAY_OIDC_CLIENT_ID": "the gateway's client id at that provider (required)",
    "GATEWAY_OIDC_CLIENT_SECRET": "the gateway's client secret at that provider (required unless "
    "GATEWAY_OIDC_CLIENT_AUTH is private_key_jwt)",
    "GATEWAY_OIDC_SCOPES": "scopes asked for at login (default: openid profile email offline_access)",
    "GATEWAY_OIDC_PROFILE": "claim layout of the provider: generic, keycloak, entra, okta or auth0 "
    "(default generic)",
    "GATEWAY_OIDC_GROUPS_CLAIMS": "comma-separated claim paths holding groups, instead of the "
    "profile's (e.g. https://example.com/groups for an Auth0 namespaced claim)",
    "GATEWAY_OIDC_ROLES_CLAIMS": "comma-separated claim paths holding roles, instead of the profile's",
    "GATEWAY_OIDC_SCOPE_CLAIMS": "comma-separated claim paths holding scopes, instead of the profile's",
    "GATEWAY_OIDC_ALGORITHMS": "comma-separated signing algorithms accepted (default RS256,PS256,ES256)",
    "GATEWAY_OIDC_AUDIENCES": "comma-separated access-token audiences accepted (default: client id)",
    "GATEWAY_OIDC_GROUP_OVERAGE": "a token whose groups did not fit (Entra's _claim_names or "
    "hasgroups): refuse (default, 4403 groups_overage) or admit with no group grants",
    "GATEWAY_OIDC_INTERNAL_URL": "base URL where the gateway itself reaches the provider, when it "
    "differs from the issuer's public one (e.g. http://keycloak:8080 in a compose network); "
    "discovery, keys, token, userinfo and introspection calls go there, the browser keeps the "
    "public URLs, and iss is still checked against GATEWAY_OIDC_ISSUER",
    "GATEWAY_OIDC_END_SESSION_METHOD": "how sign-out sends the browser to the provider's "
    "end_session_endpoint: GET (default; works with every provider; client_id, "
    "post_logout_redirect_uri and state only, never the ID token) or POST (a form that also "
    "carries id_token_hint; the provider must accept POST there, as Keycloak does)",
    "GATEWAY_OIDC_CALL_USERINFO": "true to call the userinfo endpoint at login (default false)",
    "GATEWAY_OIDC_INTROSPECTION": "true to accept opaque tokens through RFC 7662 introspection",
    "GATEWAY_ISSUERS_FILE": "TOML file with further issuers for bearer tokens (optional)",
    "GATEWAY_ROUTES_FILE": "TOML route policy file (default config/routes.toml)",
    "GATEWAY_LEEWAY_SECONDS": "clock leeway for exp/nbf/iat, 0 to 60 (default 30)",
    "GATEWAY_EXPIRY_NOTICE_SECONDS": "send auth.expiring this long before a credential expires (default 60)",
    "GATEWAY_JWKS_MIN_REFETCH_SECONDS": ("JWKS refetches for unknown kids: 3 at once, then one per "
                                         "this many seconds (default 10)"),
    "GATEWAY_PUBLIC_URL": "external base URL of the gateway (default http://127.0.0.1:8000)",
    "GATEWAY_ALLOWED_ORIGINS": "comma-separated exact websocket origins (default: the public URL)",
    "GATEWAY_SECRET_KEY": "Django secret key (required unless GATEWAY_DEV=true)",
    "GATEWAY_DEV": "true for local development: generated secret key, DEBUG on",
    "GATEWAY_DATABASE_URL": "postgres://user:pass@host:port/db (default: SQLite under var/)",
    "GATEWAY_SQLITE_PATH": "SQLite file used when no database URL is set (default var/gateway.sqlite3);"
    " WAL mode, every commit synced: its -wal and -shm files sit beside it, so the directory must be"
    " writable and every process using it must run on the same host",
    "GATEWAY_REDIS_URL": "redis://host:port/db, or redis+sentinel://host:26379,host:26379/service/db:"
    " switches the channel layer to Redis (default in-memory)",
    "GATEWAY_REDIS_SHARDS": "space-separated Redis URLs (each may be redis+sentinel://) the channel"
    " layer spreads its channels and groups over, for more than one Redis can carry; needs"
    " GATEWAY_REDIS_URL, which keeps the gateway's own state (default: GATEWAY_REDIS_URL alone)",
    "GATEWAY_CHANNEL_LAYER": "Redis channel layer backend: pubsub (default) or core; see bench/README.md",
    "GATEWAY_SESSION_COOKIE_SECURE": "true to mark cookies Secure (default: true for https URLs)",
    "GATEWAY_MESSAGE_RATE": "frames per second one connection may send on average (token bucket "
    "refill rate); a connection that runs dry is closed with 4429 rate_limited (default 100)",
    "GATEWAY_MESSAGE_BURST": "frames one connection may send back to back before the rate applies "
    "(token bucket size, default 200)",
    "GATEWAY_MAX_SOCKETS_PER_SUBJECT": "open sockets per issuer and subject across every gateway "
    "process; more are refused with 4429 too_many_connections; 0 means no limit (default 0)",
    "GATEWAY_MAX_SUBSCRIPTIONS": "channels one connection may subscribe to (default 100)",
    "GATEWAY_MAX_FRAME_BYTES": "largest client frame in bytes; a larger one closes with 1009 "
    "(default 65536)",
    "GATEWAY_MAX_VIOLATIONS": "protocol errors one connection may make before it is closed "
    "with 1008 (default 10)",
    "GATEWAY_LEDGER_TTL_SECONDS": "with Redis: how long presence and socket-count entries of a "
    "crashed process survive; live processes refresh theirs every third of this (default 30)",
    **CLIENT_AUTH_VARIABLES,
    **STAFFING_VARIABLES,
    **DEPLOYMENT_VARIABLES,
    "GATEWAY_ENV_FILE": "manage.py only: the KEY=VALUE file it reads for variables not set in "
    "the environment (default .env beside manage.py; config/dotenv.py)",
    "GATEWAY_COMPOSE_IMAGES": "scripts/ensure-containers only (the test command's compose tier): "
    "'standin' builds the upstream-named images here (default), 'upstream' pulls the real ones",
    "GATEWAY_PG_DIR": "scripts/ensure-postgres only (the test command's PostgreSQL): where its "
    "throwaway cluster lives (default /var/tmp/gateway-postgres)",
}
"""Every GATEWAY_* variable any code or script reads, with its meaning and default; a test
(tests/unit/test_settings_list.py) fails when code reads one missing here, and
docs/settings.md is generated from it (``python -m gateway.conf.env --markdown``)."""

DEFAULT_SCOPES = "openid profile email offline_access"
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256")


@dataclass(frozen=True)
class DatabaseConfig:
    engine: str
    name: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: str = ""


@dataclass(frozen=True)
class Limits:
    """Per-connection and per-subject limits (docs/protocol.md, "Limits")."""

    message_rate: float = 100.0
    message_burst: int = 200
    sockets_per_subject: int = 0  # 0: no limit
    subscriptions: int = 100
    frame_bytes: int = 64 * 1024
    violations: int = 10
    ledger_ttl: float = 30.0


@dataclass(frozen=True)
class GatewayConfig:
    issuer: str
    client_id: str
    client_auth: ClientAuth
    scopes: str
    profile: IssuerProfile
    algorithms: tuple[str, ...]
    audiences: frozenset[str]
    call_userinfo: bool
    internal_url: str | None
    group_overage: GroupOverage
    end_session_method: EndSessionMethod
    introspection: bool
    issuers_file: Path | None
    routes_file: Path | None
    leeway: float
    jwks_min_refetch: float
    expiry_notice: float
    public_url: str
    allowed_origins: frozenset[str]
    secret_key: str
    dev: bool
    database: DatabaseConfig
    redis_url: str | None
    channel_layer: str
    cookie_secure: bool
    redis_shards: tuple[str, ...] = ()  # the channel layer's hosts, if not just redis_url
    limits: Limits = Limits()
    admin: AdminMapping = field(default_factory=AdminMapping)
    deployment: Deployment = field(default_factory=Deployment)

    @property
    def client_secret(self) -> str:
        """The client secret ("" with private_key_jwt)."""
        return self.client_auth.secret

    @property
    def layer_urls(self) -> tuple[str, ...]:
        """The Redis servers the channel layer spreads its channels and groups over."""
        return self.redis_shards or self._own_redis

    @property
    def bus_urls(self) -> tuple[str, ...]:
        """Every Redis the bus needs: the gateway's own state's and the layer's."""
        return tuple(dict.fromkeys(self._own_redis + self.layer_urls))

    @property
    def _own_redis(self) -> tuple[str, ...]:
        return (self.redis_url,) if self.redis_url else ()


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set: set it to {VARIABLES[name]}.")
    return value


def _origin(name: str, url: str) -> str:
    if "*" in url:
        raise ConfigError(f"{name} has {url!r}: wildcards are refused; list each exact origin, "
                          "like https://gw.example.com.")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(f"{name} has {url!r}: use an absolute http(s) URL like https://gw.example.com.")
    return f"{parts.scheme}://{parts.netloc}"


def _issuer(env: Mapping[str, str]) -> str:
    issuer = _required(env, "GATEWAY_OIDC_ISSUER")
    parts = urlsplit(issuer)
    loopback = parts.hostname in {"127.0.0.1", "::1", "localhost"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(
            f"GATEWAY_OIDC_ISSUER={issuer!r}: the issuer must be an https URL "
            "(plain http is accepted only for 127.0.0.1 and localhost)."
        )
    if parts.query or parts.fragment:
        raise ConfigError("GATEWAY_OIDC_ISSUER must not contain a query or fragment.")
    return issuer


def _leeway(env: Mapping[str, str]) -> float:
    raw = env.get("GATEWAY_LEEWAY_SECONDS", "30").strip()
    try:
        leeway = float(raw)
    except ValueError:
        raise ConfigError(f"GATEWAY_LEEWAY_SECONDS={raw!r}: use a number of seconds.") from None
    if not 0 <= leeway <= 60:
        raise ConfigError(f"GATEWAY_LEEWAY_SECONDS={raw!r}: use a value from 0 to 60.")
    return leeway


def _limits(env: Mapping[str, str]) -> Limits:
    d = Limits()
    rate_raw = env.get("GATEWAY_MESSAGE_RATE", "").strip()
    try:
        rate = float(rate_raw) if rate_raw else d.message_rate
    except ValueError:
        raise ConfigError(f"GATEWAY_MESSAGE_RATE={rate_raw!r}: use frames per second, "
                          "a number from 0.1 to 100000.") from None
    if not 0.1 <= rate <= 100_000:
        raise ConfigError(f"GATEWAY_MESSAGE_RATE={rate_raw!r}: use a number from 0.1 to 100000.")
    return Limits(
        message_rate=rate,
        message_burst=read_int(env, "GATEWAY_MESSAGE_BURST", d.message_burst, 1, 1_000_000),
        sockets_per_subject=read_int(env, "GATEWAY_MAX_SOCKETS_PER_SUBJECT", d.sockets_per_subject,
                                 0, 1_000_000),
        subscriptions=read_int(env, "GATEWAY_MAX_SUBSCRIPTIONS", d.subscriptions, 1, 100_000),
        frame_bytes=read_int(env, "GATEWAY_MAX_FRAME_BYTES", d.frame_bytes, 1024, 16 * 1024 * 1024),
        violations=read_int(env, "GATEWAY_MAX_VIOLATIONS", d.violations, 1, 10_000),
        ledger_ttl=read_seconds(env, "GATEWAY_LEDGER_TTL_SECONDS", d.ledger_ttl, 1.0, 3600.0),
    )


def _database(env: Mapping[str, str]) -> DatabaseConfig:
    url = env.get("GATEWAY_DATABASE_URL", "").strip()
    if not url:
        path = env.get("GATEWAY_SQLITE_PATH", "").strip() or str(BASE_DIR / "var" / "gateway.sqlite3")
        return DatabaseConfig("django.db.backends.sqlite3", path)
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"} or not parts.path.strip("/"):
        raise ConfigError(
            "GATEWAY_DATABASE_URL must look like postgres://user:password@host:5432/dbname."
        )
    return DatabaseConfig(
        engine="django.db.backends.postgresql",
        name=parts.path.strip("/"),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=parts.hostname or "",
        port=str(parts.port or ""),
    )


def _redis_url(env: Mapping[str, str]) -> str | None:
    url = env.get("GATEWAY_REDIS_URL", "").strip()
    if url:
        _check_redis_url(url)
    return url or None


def _check_redis_url(url: str) -> None:
    try:
        parse_sentinel(url)
    except RedisUrlError as exc:
        raise ConfigError(str(exc)) from None


def _redis_shards(env: Mapping[str, str]) -> tuple[str, ...]:
    shards = tuple(dict.fromkeys(env.get("GATEWAY_REDIS_SHARDS", "").split()))
    if shards and not env.get("GATEWAY_REDIS_URL", "").strip():
        raise ConfigError("GATEWAY_REDIS_SHARDS needs GATEWAY_REDIS_URL as well: the gateway keeps"
                          " its own state (socket ledger, roster, refresh locks) there; it may be"
                          " one of the shards.")
    if len(shards) == 1:
        raise ConfigError("GATEWAY_REDIS_SHARDS lists one server: list two or more, separated by"
                          " spaces, or leave it unset to use GATEWAY_REDIS_URL alone.")
    for url in shards:
        _check_redis_url(url)
    return shards


CHANNEL_LAYER_KINDS = ("pubsub", "core")


def _channel_layer(env: Mapping[str, str]) -> str:
    layer = env.get("GATEWAY_CHANNEL_LAYER", "").strip().lower() or "pubsub"
    if layer not in CHANNEL_LAYER_KINDS:
        raise ConfigError(f"GATEWAY_CHANNEL_LAYER={layer!r}: use pubsub (the default) or core.")
    return layer


def _algorithms(env: Mapping[str, str]) -> tuple[str, ...]:
    algorithms = csv(env.get("GATEWAY_OIDC_ALGORITHMS", "")) or DEFAULT_ALGORITHMS
    bad = [a for a in algorithms if a.lower() == "none" or a.upper().startswith("HS")]
    if bad:
        raise ConfigError(
            f"GATEWAY_OIDC_ALGORITHMS contains {bad}: only asymmetric algorithms "
            "such as RS256, PS256, ES256 or EdDSA are accepted."
        )
    return algorithms


def _secret_key(env: Mapping[str, str], dev: bool) -> str:
    key = env.get("GATEWAY_SECRET_KEY", "").strip()
    if key:
        if len(key) < 32:
            raise ConfigError("GATEWAY_SECRET_KEY is too short: use at least 32 random characters.")
        return key
    if dev:
        return secrets.token_urlsafe(48)
    raise ConfigError(
        "GATEWAY_SECRET_KEY is not set: set it to 50 random characters, "
        "or set GATEWAY_DEV=true for local development."
    )


def _path(env: Mapping[str, str], name: str, default: Path | None) -> Path | None:
    raw = env.get(name, "").strip()
    path = Path(raw) if raw else default
    if path is not None and not path.is_file():
        raise ConfigError(f"{name} points to {str(path)!r}, which is not a file.")
    return path


def _profile(env: Mapping[str, str]) -> IssuerProfile:
    name = env.get("GATEWAY_OIDC_PROFILE", "generic").strip().lower()
    if name not in PROFILES:
        raise ConfigError(f"GATEWAY_OIDC_PROFILE={name!r}: use one of {', '.join(PROFILES)}.")
    return customised(PROFILES[name],
                      groups=csv(env.get("GATEWAY_OIDC_GROUPS_CLAIMS", "")),
                      roles=csv(env.get("GATEWAY_OIDC_ROLES_CLAIMS", "")),
                      scopes=csv(env.get("GATEWAY_OIDC_SCOPE_CLAIMS", "")))


def _internal_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("GATEWAY_OIDC_INTERNAL_URL", "").strip().rstrip("/")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path or parts.query:
        raise ConfigError(f"GATEWAY_OIDC_INTERNAL_URL={raw!r}: use a scheme, host and port only, "
                          "like http://keycloak:8080.")
    return raw


def _group_overage(env: Mapping[str, str]) -> GroupOverage:
    raw = env.get("GATEWAY_OIDC_GROUP_OVERAGE", "").strip().lower() or "refuse"
    for choice in GROUP_OVERAGE_CHOICES:
        if raw == choice:
            return choice
    raise ConfigError(f"GATEWAY_OIDC_GROUP_OVERAGE={raw!r}: use refuse (the default) or admit.")


def _end_session_method(env: Mapping[str, str]) -> EndSessionMethod:
    return cast(EndSessionMethod, read_choice(
        env, "GATEWAY_OIDC_END_SESSION_METHOD", END_SESSION_METHODS, "GET",
        "GET (the default, works with every provider) or POST (only if the provider accepts "
        "a form there)"))


def load_config(env: Mapping[str, str] | None = None, *, service: bool = True) -> GatewayConfig:
    """Read and validate every GATEWAY_* variable once. A host project (``service=False``,
    through ``gateway.conf.from_settings``) has no default route file: its routes are code."""
    env = os.environ if env is None else env
    dev = read_bool(env, "GATEWAY_DEV", False)
    client_id = _required(env, "GATEWAY_OIDC_CLIENT_ID")
    public_url = env.get("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8000").strip().rstrip("/")
    origins = csv(env.get("GATEWAY_ALLOWED_ORIGINS", "")) or (public_url,)
    audiences = frozenset(csv(env.get("GATEWAY_OIDC_AUDIENCES", "")) or (client_id,))
    profile = _profile(env)
    issuer = _issuer(env)
    try:
        check_typless_audiences(issuer, profile, client_id, audiences)
    except ValueError as exc:
        raise ConfigError(f"{exc} Set GATEWAY_OIDC_AUDIENCES to your API's audience, "
                          f"not the client id.") from exc
    routes_file = _path(env, "GATEWAY_ROUTES_FILE",
                        BASE_DIR / "config" / "routes.toml" if service else None)
    return GatewayConfig(
        issuer=issuer,
        client_id=client_id,
        client_auth=load_client_auth(env),
        scopes=env.get("GATEWAY_OIDC_SCOPES", DEFAULT_SCOPES).strip() or DEFAULT_SCOPES,
        profile=profile,
        algorithms=_algorithms(env),
        audiences=audiences,
        call_userinfo=read_bool(env, "GATEWAY_OIDC_CALL_USERINFO", False),
        group_overage=_group_overage(env),
        end_session_method=_end_session_method(env),
        internal_url=_internal_url(env),
        introspection=read_bool(env, "GATEWAY_OIDC_INTROSPECTION", False),
        issuers_file=_path(env, "GATEWAY_ISSUERS_FILE", None),
        routes_file=routes_file,
        leeway=_leeway(env),
        expiry_notice=read_seconds(env, "GATEWAY_EXPIRY_NOTICE_SECONDS", 60.0, 0.0, 3600.0),
        jwks_min_refetch=read_seconds(env, "GATEWAY_JWKS_MIN_REFETCH_SECONDS", 10.0, 1.0, 3600.0),
        public_url=_origin("GATEWAY_PUBLIC_URL", public_url) + urlsplit(public_url).path,
        allowed_origins=frozenset(_origin("GATEWAY_ALLOWED_ORIGINS", o) for o in origins),
        secret_key=_secret_key(env, dev),
        dev=dev,
        database=_database(env),
        redis_url=_redis_url(env),
        redis_shards=_redis_shards(env),
        channel_layer=_channel_layer(env),
        cookie_secure=read_bool(env, "GATEWAY_SESSION_COOKIE_SECURE", public_url.startswith("https:")),
        limits=_limits(env),
        admin=load_admin_mapping(env),
        deployment=load_deployment(env, https=public_url.startswith("https:")),
    )


SETTINGS_DOC_HEADER = """# Settings

Every environment variable the gateway and its scripts read, generated from `VARIABLES` in
`gateway/conf/env.py` (`python -m gateway.conf.env --markdown > docs/settings.md`; a test fails when this
file and the list differ, or when code reads a `GATEWAY_*` variable the list lacks). They are
read once at startup; a bad value stops the process with a message that names the variable
and the fix. `./manage.py` also reads them from `.env` (or `GATEWAY_ENV_FILE`) when they are
not set in the environment.

| variable | meaning |
|---|---|
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown() -> str:
    """docs/settings.md: one row per variable, in the order of ``VARIABLES``."""
    rows = "".join(f"| `{name}` | {_cell(meaning)} |\n" for name, meaning in VARIABLES.items())
    return SETTINGS_DOC_HEADER + rows


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m gateway.conf.env --markdown > docs/settings.md")
    sys.stdout.write(settings_markdown())
