"""Admin for channels and grants. The admin edits rows; oidc.grants decides.

Grant changes made here are attributed to the admin user (``acting_as``); the
signal handlers in gateway.grants.store record them and tell every gateway process.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from gateway.grants.store import acting_as, to_value
from gateway.models import Channel, Grant, GrantChange
from oidc.channels import normalise_channel
from oidc.grants import grants_for_channel

# ModelAdmin[...] at runtime without django_stubs_ext (a host project need not call it): the
# same no-op subscription it installs. The oversight pages' links live in the service's index
# (config/urls.py); a host's admin index is left alone.
if not hasattr(admin.ModelAdmin, "__class_getitem__"):
    admin.ModelAdmin.__class_getitem__ = classmethod(lambda cls, *args: cls)  # type: ignore[attr-defined]


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin[Grant]):
    list_display = ("target", "claim", "value", "issuer", "subscribe", "publish", "presence", "note")
    list_filter = ("subscribe", "publish", "presence", "claim", "issuer")
    search_fields = ("target", "value", "claim", "issuer", "note")
    ordering = ("target", "claim", "value")

    def save_model(self, request: HttpRequest, obj: Grant, form: Any, change: bool) -> None:
        with acting_as(request.user):
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Grant) -> None:
        with acting_as(request.user):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        with acting_as(request.user):
            for grant in queryset:
                grant.delete()  # one change record per grant


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin[Channel]):
    list_display = ("name", "description")
    search_fields = ("name", "description")
    readonly_fields = ("who_can_do_what",)

    @admin.display(description="Who can do what here")
    def who_can_do_what(self, obj: Channel) -> str:
        if not obj.pk:
            return "Save the channel to see its grants."
        rows = []
        for grant in grants_for_channel((to_value(g) for g in Grant.objects.all()),
                                        normalise_channel(obj.name)):
            rows.append((grant.issuer, grant.claim, grant.value, grant.target,
                         ", ".join(sorted(grant.operations)) or "-"))
        if not rows:
            return "No grant covers this channel: nobody can use it."
        head = mark_safe("<tr><th>issuer</th><th>claim</th><th>value</th>"
                         "<th>grant target</th><th>operations</th></tr>")
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                "<td>{}</td></tr>", rows)
        return format_html("<table>{}{}</table>", head, body)


@admin.register(GrantChange)
class GrantChangeAdmin(admin.ModelAdmin[GrantChange]):
    list_display = ("at", "username", "action", "grant_id", "version")
    list_filter = ("action", "username")
    search_fields = ("username", "grant_id")
    readonly_fields = ("at", "user", "username", "action", "grant_id", "before", "after",
                       "version")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
