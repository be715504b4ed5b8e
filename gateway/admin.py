"""Admin for channels and grants. The admin edits rows; oidc.grants decides.

Grant changes made here are attributed to the admin user (``acting_as``); the
signal handlers in gateway.grants.store record them and tell every gateway process.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import mark_safe

import gateway.oversight.generic_admin  # noqa: F401  # first: ModelAdmin[...] at runtime
from gateway.grants.store import to_value
from gateway.models import Channel, Grant, GrantChange
from gateway.oversight.grant_review import PreviewedGrantAdmin
from gateway.oversight.preview import recorded_outcomes
from oidc.channels import normalise_channel
from oidc.grants import grants_for_channel

# The oversight pages' links live in the service's index (config/urls.py); a host's admin
# index is left alone.


def _breakable(text: str) -> str:
    """``text``, escaped, with a line-break opportunity after each slash (long issuer URLs
    and group paths wrap there instead of widening the table)."""
    return mark_safe("/<wbr>".join(conditional_escape(part) for part in text.split("/")))  # noqa: S308


@admin.register(Grant)
class GrantAdmin(PreviewedGrantAdmin):
    """Every add, edit and delete shows its preview first (gateway/oversight/grant_review.py).

    Four columns, so the list is read to its last one (the note) beside the admin's
    navigation and the filters at 1280 px: who holds the grant (claim, value and, below
    them, the issuer) in one, the three operations in one; URLs and claim paths may wrap
    after each slash."""

    list_display = ("target", "holders", "operations", "note")
    list_filter = ("subscribe", "publish", "presence", "claim", "issuer")
    search_fields = ("target", "value", "claim", "issuer", "note")
    ordering = ("target", "claim", "value")
    readonly_fields = ("changes",)

    @admin.display(description="holders (claim = value, issuer)", ordering="value")
    def holders(self, obj: Grant) -> str:
        return format_html('{} = {}<br><span class="quiet">{}</span>', _breakable(obj.claim),
                           _breakable(obj.value), _breakable(obj.issuer))

    @admin.display(description="operations")
    def operations(self, obj: Grant) -> str:
        return ", ".join(op for op in ("subscribe", "publish", "presence") if getattr(obj, op)) or "none"

    @admin.display(description="Changes")
    def changes(self, obj: Grant) -> str:
        if not obj.pk:
            return "-"
        count = GrantChange.objects.filter(grant_id=obj.pk).count()
        url = reverse("admin:gateway_grantchange_changelist") + f"?grant_id={obj.pk}"
        return format_html('<a href="{}" id="grant-changes">{} change{} of this grant, with what '
                           'each preview predicted and what each process revoked</a>',
                           url, count, pluralize(count))


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
    list_display = ("at", "username", "action", "grant_id", "what", "version", "predicted",
                    "revoked")
    list_filter = ("action", "username")
    search_fields = ("username", "grant_id")
    readonly_fields = ("at", "user", "username", "action", "grant_id", "before", "after",
                       "version", "batch", "preview", "predicted", "revoked")

    @admin.display(description="grant")
    def what(self, obj: GrantChange) -> str:
        after, before = obj.after or {}, obj.before or {}
        shown = after or before
        text = f"{shown.get('claim')}={shown.get('value')} -> {shown.get('target')}"
        if before and after and before.get("target") != after.get("target"):
            text = f"{before.get('claim')}={before.get('value')} -> {before.get('target')} => " \
                   f"{after.get('target')}"
        return text

    @admin.display(description="preview: sockets to revoke (per process)")
    def predicted(self, obj: GrantChange) -> str:
        if not obj.preview:
            return "no preview (changed outside the admin)"
        p = obj.preview
        per = ", ".join(f"{k}: {v}" for k, v in (p.get("by_process") or {}).items())
        return (f"{p.get('sockets_revoked', 0)}{f' ({per})' if per else ''}; "
                f"{p.get('losing', 0)} lose, {p.get('gaining', 0)} gain, "
                f"{p.get('not_connected', 0)} not connected")

    @admin.display(description="revoked (per process)")
    def revoked(self, obj: GrantChange) -> str:
        versions = [obj.version]
        if obj.batch:
            versions = list(GrantChange.objects.filter(batch=obj.batch)
                            .values_list("version", flat=True))
        rows = [r for v in versions for r in recorded_outcomes(versions).get(v, [])]
        if not rows:
            return "no process has reported (none had a pub/sub socket, or not yet)"
        totals: dict[str, int] = {}
        for process, _, sockets, _ in rows:
            totals[process] = totals.get(process, 0) + sockets
        label = " (whole batch)" if obj.batch and len(versions) > 1 else ""
        return f"{sum(totals.values())}{label}: " + ", ".join(
            f"{p}: {n}" for p, n in sorted(totals.items()))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
