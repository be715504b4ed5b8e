"""The live connections page: every open socket on every process, and disconnecting a subject.

Sockets come from the roster (``gateway.ops.roster``). A disconnect is one channel-layer
message to the subject's group (``gateway.sockets.addressing``), so it reaches the
subject's sockets on every process; each sends a ``disconnect`` notice with the reason and
closes with 4410 ``admin_disconnect``. Every disconnect, and every refused one, is audited.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from gateway.models import OidcIdentity
from gateway.observe.audit import audit
from gateway.ops.roster import SocketEntry, roster
from gateway.sockets.addressing import subject_group, to_group

MAX_REASON = 200


@dataclass(frozen=True)
class LiveRow:
    entry: SocketEntry
    username: str
    connected_since: str
    age: str


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _usernames(entries: list[SocketEntry]) -> dict[tuple[str, str], str]:
    subjects = {e.subject for e in entries}
    rows = OidcIdentity.objects.filter(subject__in=subjects).select_related("user")
    return {(r.issuer, r.subject): r.user.get_username() for r in rows}


def rows(entries: list[SocketEntry], now: float) -> list[LiveRow]:
    names = _usernames(entries)
    return [LiveRow(e, names.get((e.issuer, e.subject), ""),
                    time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(e.connected_at)),
                    _age(now - e.connected_at)) for e in entries]


def clean_reason(raw: str) -> str:
    """The administrator's reason as one short printable line."""
    text = "".join(c if unicodedata.category(c)[0] != "C" else " " for c in raw)
    return " ".join(text.split())[:MAX_REASON]


def _require(request: HttpRequest, permission: str, event: str) -> None:
    if not request.user.has_perm(f"gateway.{permission}"):
        audit(event, "deny", "forbidden", detail=f"{request.user.get_username()} lacks {permission}")
        raise PermissionDenied


@require_http_methods(["GET"])
def live_connections(request: HttpRequest) -> HttpResponse:
    _require(request, "view_live_sockets", "live_view")
    entries = async_to_sync(roster().entries)()
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Live connections",
        "rows": rows(entries, time.time()),
        "subjects": len({(e.issuer, e.subject) for e in entries}),
        "can_disconnect": request.user.has_perm("gateway.disconnect_sockets"),
    }
    return render(request, "gateway/oversight/live.html", context)


@require_POST
def disconnect(request: HttpRequest) -> HttpResponse:
    _require(request, "disconnect_sockets", "disconnect")
    issuer, subject = request.POST.get("issuer", ""), request.POST.get("subject", "")
    reason = clean_reason(request.POST.get("reason", ""))
    if not issuer or not subject or not reason:
        messages.error(request, "Give the subject and a reason to disconnect it.")
        return HttpResponseRedirect(reverse("admin_live"))
    group = subject_group(issuer, subject)
    async_to_sync(get_channel_layer().group_send)(
        group, to_group(group, {"type": "gateway.disconnect", "detail": reason}))
    audit("disconnect", "allow", "admin_disconnect", issuer=issuer, subject=subject,
          detail=f"by {request.user.get_username()}: {reason}")
    messages.success(request, f"Every socket of {subject} on every process is being "
                              f"disconnected (4410 admin_disconnect).")
    return HttpResponseRedirect(reverse("admin_live"))
