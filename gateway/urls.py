"""The gateway's URLs for ``include()``: sign-in, callback, logout, back-channel logout,
websocket tickets, the publish API and the oversight admin pages.

A host project mounts them anywhere (``path("gateway/", include("gateway.urls"))``); the
service mounts them at its root (config/urls.py). The names are stable and not namespaced,
because mozilla-django-oidc reverses ``oidc_authentication_callback`` by that name.
"""

from __future__ import annotations

from django.urls import include, path

from gateway.grants import publish
from gateway.handshake import ticket_view
from gateway.login import backchannel, signout, views

urlpatterns = [
    path("oidc/authenticate/", views.LoginView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", views.CallbackView.as_view(), name="oidc_authentication_callback"),
    path("oidc/logout/", signout.logout_view, name="oidc_logout"),
    path("oidc/backchannel-logout/", backchannel.backchannel_logout, name="backchannel_logout"),
    path("ws/ticket", ticket_view.mint_ticket, name="ws_ticket"),
    path("api/publish", publish.publish, name="publish"),
    path("admin/", include("gateway.oversight.urls")),  # live connections, check access
]
