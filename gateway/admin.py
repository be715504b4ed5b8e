"""Admin for channels and grants. The admin edits rows; oidc.grants decides.

Grant changes made here are attributed to the admin user (``acting_as``); the
signal handlers in gateway.grants.store record them and tell every gateway process.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe

from gateway.grants.store import acting_as, to_value
from gateway.models import Channel, Grant, GrantChange
from oidc.channels import normalise_channel
from oidc.grants import grants_for_channel

GATEWAY_NAME = "Websocket gateway"

# The gateway's name instead of "Django administration", through the AdminSite's own
# attributes (no template of the host's admin is replaced for it). The index links the
# oversight pages (gateway/oversight/: live connections, check access).
admin.site.site_header = f"{GATEWAY_NAME} administration"
admin.site.site_title = GATEWAY_NAME
admin.site.index_template = "gateway/oversight/admin_index.html"


def _breakable(text: str) -> str:
    """``text``, escaped, with a line-break opportunity after each slash (long issuer URLs
    and group paths wrap there instead of widening the table)."""
    return mark_safe("/<wbr>".join(conditional_escape(part) for part in text.split("/")))  # noqa: S308


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin[Grant]):
    # Four columns, so the list is read to its last one (the note) beside the admin's
    # navigation and the filters at 1280 px: who holds the grant (claim, value and, below
    # them, the issuer) in one, the three operations in one; URLs and claim paths may
    # wrap after each slash.
    list_display = ("target", "holders", "operations", "note")
    list_filter = ("subscribe", "publish", "presence", "claim", "issuer")
    search_fields = ("target", "value", "claim", "issuer", "note")

    @admin.display(description="holders (claim = value, issuer)", ordering="value")
    def holders(self, obj: Grant) -> str:
        return format_html('{} = {}<br><span class="quiet">{}</span>', _breakable(obj.claim),
                           _breakable(obj.value), _breakable(obj.issuer))

    @admin.display(description="operations")
    def operations(self, obj: Grant) -> str:
        return ", ".join(op for op in ("subscribe", "publish", "presence") if getattr(obj, op)) or "none"

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
