"""The "check access" page: what a user or a claim set may do on each route and channel, and why.

The principal is built the way a socket builds it: from a user's stored claims snapshot
(their newest browser session, as ``gateway.login.sessions`` rebuilds it for session
sockets), or from pasted claims as a bearer token from a trusted issuer would carry them
(``oidc.verify.principal_from_claims``, with the issuer's profile). The grants are the
current ones (``gateway.grants.store``), matched by the pure matcher in ``oidc.grants``.
Nothing is verified: pasted claims need no signature, and no token is ever asked for.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from gateway.grants.store import load_snapshot
from gateway.handshake.routes import load_route_policies
from gateway.issuers.registry import registry
from gateway.login.sessions import aload_auth, principal_from_session
from gateway.models import OidcIdentity, SessionBinding
from gateway.observe.audit import audit
from gateway.sockets.envelope import lone_surrogate
from oidc.channels import InvalidChannel, normalise_channel
from oidc.errors import OidcError
from oidc.grants import Grant, allowed_operations, grants_for_channel, operations_by_target
from oidc.policy import evaluate
from oidc.types import CredentialKind, Principal
from oidc.verify import principal_from_claims

MAX_CLAIMS_BYTES = 64 * 1024


class CannotCheck(Exception):
    """The input names no principal; the message says what to do."""


@dataclass
class Explanation:
    principal: Principal
    source: str
    routes: list[tuple[str, str, str]] = field(default_factory=list)  # path, outcome, reason
    targets: list[tuple[str, list[str], list[Grant]]] = field(default_factory=list)
    channel: str | None = None
    channel_operations: list[str] = field(default_factory=list)
    channel_grants: list[tuple[Grant, bool, str]] = field(default_factory=list)  # applies, why


def principal_of_user(user_id: str) -> tuple[Principal, str]:
    """The principal of a user's newest session that still holds a login."""
    known = user_id.isascii() and user_id.isdigit() and len(user_id) <= 18  # a BigAutoField
    user = get_user_model().objects.filter(pk=int(user_id)).first() if known else None
    if user is None:
        raise CannotCheck("No such user.")
    identities = OidcIdentity.objects.filter(user=user)
    bindings = SessionBinding.objects.filter(
        issuer__in=[i.issuer for i in identities], subject__in=[i.subject for i in identities],
    ).order_by("-created_at")
    for binding in bindings:
        loaded = async_to_sync(aload_auth)(binding.session_key)
        principal = principal_from_session(loaded[1]) if loaded else None
        if principal is not None:
            return principal, f"{user.get_username()}: session of {binding.created_at:%Y-%m-%d %H:%M} UTC"
    raise CannotCheck(f"{user.get_username()} has no live browser session, so no stored claims: "
                      "paste their token's claims instead.")


def principal_of_claims(raw: str) -> tuple[Principal, str]:
    """Pasted claims, read as a bearer token from their (trusted) issuer would be."""
    if len(raw.encode()) > MAX_CLAIMS_BYTES:
        raise CannotCheck("The claims are larger than 64 KiB.")
    try:
        claims = json.loads(raw)
    except (ValueError, RecursionError):  # nested past the interpreter's limit
        raise CannotCheck("The claims are not valid JSON.") from None
    if lone_surrogate(raw, claims):
        raise CannotCheck("The claims are not valid JSON: a lone UTF-16 surrogate escape.")
    if not isinstance(claims, dict):
        raise CannotCheck("The claims must be one JSON object, like a token's payload.")
    issuer = registry.issuers.get(str(claims.get("iss")))
    if issuer is None:
        trusted = ", ".join(sorted(registry.issuers))
        raise CannotCheck(f"iss {claims.get('iss')!r} is not a trusted issuer: the gateway would "
                          f"refuse the token (unknown_issuer). Trusted: {trusted}.")
    try:
        principal = principal_from_claims(claims, issuer, credential=CredentialKind.BEARER)
    except OidcError as exc:
        raise CannotCheck(f"The gateway would refuse these claims: {exc.error} ({exc}).") from None
    return principal, "pasted claims, as a bearer token"


def _why(grant: Grant, principal: Principal) -> str:
    if grant.issuer != principal.issuer:
        return f"issuer is {grant.issuer}"
    return f"{grant.claim} holds {grant.value}" if grant.applies_to(principal) \
        else f"{grant.claim} does not hold {grant.value}"


def explain(principal: Principal, source: str, grants: tuple[Grant, ...],
            channel: str | None) -> Explanation:
    result = Explanation(principal, source)
    now = time.time()
    for policy in load_route_policies(settings.GATEWAY.routes_file):
        decision = evaluate(principal, policy, now=now)
        result.routes.append((policy.path, "allow" if decision.allowed else "deny",
                              f"{decision.reason} {decision.detail}".strip()))
    for target, ops in operations_by_target(principal, grants).items():
        matched = [g for g in grants if g.target == target and g.applies_to(principal)]
        result.targets.append((target, sorted(str(o) for o in ops), matched))
    if channel:
        name = normalise_channel(channel)
        result.channel = name
        result.channel_operations = sorted(str(o) for o in allowed_operations(principal, grants, name))
        result.channel_grants = [(g, g.applies_to(principal), _why(g, principal))
                                 for g in grants_for_channel(grants, name)]
    return result


def _principal(request: HttpRequest) -> tuple[Principal, str] | None:
    """A user is picked by GET; claims are pasted by POST, so they stay out of URLs and logs."""
    if request.method == "POST" and request.POST.get("claims", "").strip():
        return principal_of_claims(request.POST["claims"])
    if request.GET.get("user"):
        return principal_of_user(request.GET["user"])
    return None


@require_http_methods(["GET", "POST"])
def check_access(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("gateway.check_access"):
        audit("check_access", "deny", "forbidden",
              detail=f"{request.user.get_username()} lacks check_access")
        raise PermissionDenied
    context: dict[str, Any] = {**admin.site.each_context(request), "title": "Check access",
                               "users": OidcIdentity.objects.select_related("user")
                               .order_by("user__username"),
                               "form": request.POST if request.method == "POST" else request.GET}
    try:
        found = _principal(request)
        if found is not None:
            grants = async_to_sync(load_snapshot)().grants
            form = context["form"]
            context["result"] = explain(*found, grants, form.get("channel", "").strip())
    except (CannotCheck, InvalidChannel) as exc:
        context["problem"] = getattr(exc, "detail", None) or str(exc)
    return render(request, "gateway/oversight/access.html", context)
