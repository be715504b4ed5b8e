from django.contrib import admin
from django.urls import include, path

from gateway.console import views as console
from gateway.grants import publish
from gateway.handshake import ticket_view
from gateway.login import backchannel, signout, views
from gateway.ops import health, scrape

urlpatterns = [
    path("", views.home, name="home"),
    path("console/", console.console, name="console"),
    path("oidc/authenticate/", views.LoginView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", views.CallbackView.as_view(), name="oidc_authentication_callback"),
    path("oidc/logout/", signout.logout_view, name="oidc_logout"),
    path("oidc/backchannel-logout/", backchannel.backchannel_logout, name="backchannel_logout"),
    path("ws/ticket", ticket_view.mint_ticket, name="ws_ticket"),
    path("api/publish", publish.publish, name="publish"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", scrape.metrics_view, name="metrics"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", include("gateway.oversight.urls")),  # live connections, check access
    path("admin/", admin.site.urls),
]
