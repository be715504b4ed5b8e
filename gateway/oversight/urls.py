"""Admin pages of the oversight room, mounted before the admin's own URLs in config/urls.py."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from gateway.oversight import access, live

urlpatterns = [
    path("live/", admin.site.admin_view(live.live_connections), name="admin_live"),
    path("live/disconnect/", admin.site.admin_view(live.disconnect), name="admin_disconnect"),
    path("access/", admin.site.admin_view(access.check_access), name="admin_access"),
]
