"""Sign-out: end the gateway session, then RP-Initiated Logout 1.0 at the provider.

The browser leaves with an :class:`oidc.end_session.EndSessionRequest` built for the login
issuer's ``end_session_method`` (GET by default, no token in any URL). What the browser
should hear when it is back on the home page is kept in its new, anonymous session
(``SIGNOUT_KEY``): the ``state`` sent to the provider, checked on return (§3), or that the
provider offers no ``end_session_endpoint``. Either way the next sign-in from this browser
asks the provider for ``prompt=login`` (``REAUTHENTICATE_KEY``), so a provider session that
survived (no endpoint, or the user answered "stay signed in" there) does not sign the same
person in again silently.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from gateway.issuers.registry import registry
from gateway.login.sessions import AUTH_KEY
from gateway.observe.audit import audit
from oidc.end_session import EndSessionRequest, end_session_request

SIGNOUT_KEY = "gateway_signout"
REAUTHENTICATE_KEY = "gateway_reauthenticate"

NOTICES = {
    "signed_out": "You are signed out of the gateway, and your identity provider has handled "
                  "the sign-out.",
    "signed_out_locally": "You are signed out of the gateway. Your identity provider offers no "
                          "sign-out, so your session there may still be open: close the browser "
                          "to end it. Signing in here again asks for your password.",
    "unverified_return": "You are signed out of the gateway. The identity provider's answer "
                         "could not be verified, so your session there may still be open. "
                         "Signing in here again asks for your password.",
}


def provider_end_session(request: HttpRequest) -> EndSessionRequest | None:
    """The end-session request for the signed-in user, or None if the provider has none."""
    issuer = settings.GATEWAY.issuer
    metadata = registry.metadata.get(issuer)
    if metadata is None or not metadata.end_session_endpoint:
        return None
    stored = request.session.get(AUTH_KEY) or {}
    return end_session_request(
        metadata.end_session_endpoint, registry.issuers[issuer].end_session_method,
        client_id=settings.GATEWAY.client_id,
        post_logout_redirect_uri=settings.GATEWAY.public_url + "/",
        state=secrets.token_urlsafe(16), id_token=stored.get("id_token"))


@require_POST
@never_cache  # a POST page carries the ID token hint
def logout_view(request: HttpRequest) -> HttpResponse:
    """Ends the Django session (closing its sockets), then logs out at the provider."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/")
    claims = (request.session.get(AUTH_KEY) or {}).get("claims") or {}
    leave = provider_end_session(request)
    auth.logout(request)  # a new, empty session from here on
    request.session[REAUTHENTICATE_KEY] = True
    request.session[SIGNOUT_KEY] = {"state": leave.state if leave else None}
    audit("logout", "allow", f"end_session_{leave.method.lower()}" if leave else "no_end_session",
          issuer=claims.get("issuer"), subject=claims.get("subject"),
          remote=request.META.get("REMOTE_ADDR"))
    if leave is None:
        return HttpResponseRedirect("/")
    if leave.method == "GET":
        response = HttpResponseRedirect(leave.url)
        response.status_code = 303
        return response
    return render(request, "gateway/provider_logout.html",
                  {"action": leave.url, "fields": leave.form})


def signout_notice(request: HttpRequest) -> str | None:
    """What to tell a browser back from signing out (once), checking the returned state."""
    pending: Any = request.session.pop(SIGNOUT_KEY, None)
    returned = request.GET.get("state")
    if not isinstance(pending, dict):
        if returned is not None:
            audit("logout", "deny", "unsolicited_logout_state", remote=request.META.get("REMOTE_ADDR"))
        return None
    expected = pending.get("state")
    if expected is None:
        return "signed_out_locally"
    if returned is not None and secrets.compare_digest(returned, expected):
        return "signed_out"
    audit("logout", "deny", "invalid_logout_state" if returned else "missing_logout_state",
          issuer=settings.GATEWAY.issuer, remote=request.META.get("REMOTE_ADDR"))
    return "unverified_return"
