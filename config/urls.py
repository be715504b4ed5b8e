from django.contrib import admin
from django.urls import include, path

from gateway.api.server import console, healthz, home, metrics_view, readyz

# The service's admin: the gateway's name instead of "Django administration" (the AdminSite's
# own attributes; no template replaced), and an index that links the oversight pages (live
# connections, check access). A host project's admin is left as the host has it.
GATEWAY_NAME = "Websocket gateway"
admin.site.site_header = f"{GATEWAY_NAME} administration"
admin.site.site_title = GATEWAY_NAME
admin.site.index_template = "gateway/oversight/admin_index.html"

urlpatterns = [
    path("", home, name="home"),
    path("console/", console, name="console"),
    path("", include("gateway.urls")),  # sign-in, logout, tickets, publish, oversight pages
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
]
