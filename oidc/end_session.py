"""RP-Initiated Logout 1.0 (https://openid.net/specs/openid-connect-rpinitiated-1_0.html):
the request that sends the browser to the provider's ``end_session_endpoint``.

§2 asks providers to accept GET and POST; in practice GET is the method every provider
documents, and stock panva oidc-provider refuses POST unless ``enableHttpPostMethods`` (which
needs ``SameSite=None`` cookies over https). So the method is the issuer's
``end_session_method``, GET by default, and a token never goes into a URL:

- GET carries ``client_id``, ``post_logout_redirect_uri`` and ``state`` in the query, and no
  ``id_token_hint``. Without the hint a provider asks the user to confirm (oidc-provider:
  "Do you want to sign-out from ...?", Keycloak: "Do you want to log out?"), which also
  stops other sites from signing the user out;
- POST sends the same fields as a form, plus ``id_token_hint`` when the gateway holds the
  ID token, so the provider may end its session without asking.

``state`` comes back on the redirect to ``post_logout_redirect_uri`` (§3) and is checked
there against the value kept in the browser's (new, anonymous) session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from oidc.config import EndSessionMethod

__all__ = ["EndSessionRequest", "end_session_request"]


@dataclass(frozen=True)
class EndSessionRequest:
    """Where to send the browser: with GET, ``url`` holds every parameter and ``form`` is
    empty; with POST, ``url`` is the bare endpoint and ``form`` the fields to post."""

    method: EndSessionMethod
    url: str
    state: str
    form: dict[str, str] = field(default_factory=dict)


def end_session_request(endpoint: str, method: EndSessionMethod, *, client_id: str,
                        post_logout_redirect_uri: str, state: str,
                        id_token: str | None) -> EndSessionRequest:
    """The end-session request for ``method``; ``id_token`` is used as the hint by POST only."""
    params = {"client_id": client_id, "post_logout_redirect_uri": post_logout_redirect_uri,
              "state": state}
    if method == "POST":
        form = params | ({"id_token_hint": id_token} if id_token else {})
        return EndSessionRequest("POST", endpoint, state, form)
    parts = urlsplit(endpoint)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    url = urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))
    return EndSessionRequest("GET", url, state)
