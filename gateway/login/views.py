"""Browser login and logout, built on mozilla-django-oidc's views with small overrides."""

from __future__ import annotations

import logging
from typing import cast

import requests
from django.conf import settings
from django.contrib import auth
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from gateway.issuers.registry import registry
from gateway.login.backend import oidc_setting
from gateway.login.sessions import AUTH_KEY
from gateway.login.signout import NOTICES, REAUTHENTICATE_KEY, signout_notice
from gateway.observe.audit import audit
from oidc.errors import OidcError

logger = logging.getLogger("gateway.views")


def _remote(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


class LoginView(OIDCAuthenticationRequestView):
    """Starts the authorization code flow with PKCE S256, state and nonce."""

    get_settings = staticmethod(oidc_setting)

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        """After a sign-out from this browser, the provider must ask for credentials
        (OIDC Core §3.1.2.1 ``prompt=login``) even if its session survived."""
        params = dict(super().get_extra_params(request))
        if request.session.get(REAUTHENTICATE_KEY):
            params["prompt"] = "login"
        return params

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            return cast(HttpResponse, super().get(request))
        except OidcError as exc:
            audit("login", "deny", exc.error, remote=_remote(request))
            return _refusal(request, exc.error, 503)


class CallbackView(OIDCAuthenticationCallbackView):
    """The redirect back from the provider. Every refusal is audited and explained."""

    get_settings = staticmethod(oidc_setting)

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        """Once answered, the view lets go of the request, its user and its backend: they
        refer to each other, and a cycle frozen by the collector policy is never freed
        (``gateway.ops.gcpolicy``)."""
        try:
            return cast(HttpResponse, super().dispatch(request, *args, **kwargs))
        finally:
            self.__dict__.clear()

    def get(self, request: HttpRequest) -> HttpResponse:
        issuer = settings.GATEWAY.issuer
        reason = self._check_iss_parameter(request, issuer)
        if reason:
            self._forget_state(request)
            return self._refuse(request, reason, 400)
        try:
            return cast(HttpResponse, super().get(request))
        except SuspiciousOperation:
            return self._refuse(request, "invalid_state", 400)
        except OidcError as exc:
            status = 503 if exc.status == "unavailable" else 401
            return self._refuse(request, exc.error, status)
        except requests.RequestException:
            return self._refuse(request, "token_exchange_failed", 502)

    @staticmethod
    def _check_iss_parameter(request: HttpRequest, issuer: str) -> str | None:
        """RFC 9207 §2.4: when advertised (or sent), `iss` must equal our issuer exactly."""
        received = request.GET.get("iss")
        advertised = registry.metadata_sync(issuer).iss_parameter_supported
        if received is None:
            return "missing_iss_parameter" if advertised else None
        return None if received == issuer else "invalid_iss_parameter"

    @staticmethod
    def _forget_state(request: HttpRequest) -> None:
        states = request.session.get("oidc_states")
        if isinstance(states, dict) and states.pop(request.GET.get("state", ""), None) is not None:
            request.session.modified = True

    def _refuse(self, request: HttpRequest, reason: str, status: int) -> HttpResponse:
        audit("login", "deny", reason, issuer=settings.GATEWAY.issuer, remote=_remote(request))
        return _refusal(request, reason, status)

    def login_success(self) -> HttpResponse:
        # Always log in anew: this rotates the session key and the CSRF token.
        auth.login(self.request, self.user, backend="gateway.login.backend.GatewayOIDCBackend")
        self.request.session.pop(REAUTHENTICATE_KEY, None)
        claims = self.request.session[AUTH_KEY]["claims"]
        reason = "groups_overage_admitted" if claims.get("groups_overage") else "authenticated"
        audit("login", "allow", reason, issuer=claims["issuer"],
              subject=claims["subject"], remote=_remote(self.request))
        return HttpResponseRedirect(self.success_url)

    def login_failure(self) -> HttpResponse:
        error = self.request.GET.get("error")
        reason = f"provider_error:{error[:40]}" if error else "login_failed"
        return self._refuse(self.request, reason, 401)


def _refusal(request: HttpRequest, reason: str, status: int) -> HttpResponse:
    return render(request, "gateway/refused.html", {"reason": reason}, status=status)


@never_cache
def home(request: HttpRequest) -> HttpResponse:
    stored = request.session.get(AUTH_KEY) if request.user.is_authenticated else None
    notice = signout_notice(request)
    return render(request, "gateway/home.html", {"auth": stored and stored.get("claims"),
                                                 "notice": notice,
                                                 "notice_text": NOTICES.get(notice or "")})
