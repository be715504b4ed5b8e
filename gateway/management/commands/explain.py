"""Explain an access-token decision for a route: what was checked, what failed and why.

    python -m django explain --route /ws/ < token.txt

The token is read from standard input (never from arguments, which leak into
shell history and process lists) and is never printed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gateway.handshake.routes import load_route_policies
from gateway.issuers.registry import registry
from oidc.errors import OidcError
from oidc.jws import peek
from oidc.policy import evaluate, find_policy
from oidc.types import CredentialKind
from oidc.verify import verify_access_token


class Command(BaseCommand):
    help = "Explain whether an access token (on stdin) may open a websocket route."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--route", required=True, help="websocket path, e.g. /ws/")

    def handle(self, *args: Any, route: str, **options: Any) -> None:
        policy = find_policy(load_route_policies(settings.GATEWAY.routes_file), route)
        if policy is None:
            raise CommandError(f"no route is declared at {route} (reason no_route)")
        token = sys.stdin.read().strip()
        self.step("route", f"{policy.name}: scopes {sorted(policy.scopes) or 'none'}, "
                  f"credentials {sorted(c.value for c in policy.credentials)}")
        try:
            unverified = peek(token, max_bytes=65536)
        except OidcError as exc:
            self.fail("parse", exc)
        header, claims = unverified.header, unverified.claims
        self.step("header", f"alg={header.get('alg')} kid={header.get('kid')} typ={header.get('typ')}")
        self.step("issuer", f"{claims.get('iss')} (trusted: {claims.get('iss') in registry.issuers})")
        try:
            principal = async_to_sync(self._verify)(token)
        except OidcError as exc:
            self.fail("verify", exc)
        self.step("verify", f"signature and claims valid; subject={principal.subject} "
                  f"scopes={sorted(principal.scopes)} groups={sorted(principal.groups)}")
        decision = evaluate(principal, policy, now=time.time())
        if not decision.allowed:
            raise CommandError(f"policy: DENY {decision.reason} {decision.detail}".rstrip())
        self.step("policy", "ALLOW")

    async def _verify(self, token: str) -> Any:
        issuer = peek(token, max_bytes=65536).claims.get("iss")
        if isinstance(issuer, str) and issuer in registry.issuers and issuer not in registry.keys:
            await registry.load(issuer)
        return await verify_access_token(token, registry.issuers, registry.keys, now=time.time(),
                                         credential=CredentialKind.BEARER)

    def step(self, name: str, text: str) -> None:
        self.stdout.write(f"ok    {name:8} {text}")

    def fail(self, name: str, exc: OidcError) -> None:
        raise CommandError(f"{name}: DENY {exc.error}: {exc}")
