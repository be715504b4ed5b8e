"""Every grant change in the admin shows its preview first: add, edit, delete, bulk delete.

A valid add or edit form, a delete and the bulk "delete selected" action do not save:
they show who would gain and lose what, which live sockets would drop subscriptions as
``revoked`` (``gateway.oversight.preview``) and a signed token naming exactly that change
at that grant version. Only a POST carrying a valid token saves, and only if, inside the
saving transaction with the version row locked, the change rebuilt from the request and the
rows as they are now is the one the token names and no grant changed meanwhile; otherwise
the administrator gets a fresh preview. "Go back" returns to the form with the values
typed, saving nothing. The confirmed change is recorded with the preview's counts
(``gateway.grants.store.previewed``).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

import gateway.oversight.generic_admin  # noqa: F401  # first: ModelAdmin[...] at runtime
from gateway.grants.store import acting_as, previewed
from gateway.models import Grant, GrantVersion
from gateway.oversight.preview import Review, Staged, review, stage_delete, stage_save

CONFIRM = "_preview_confirm"
BACK = "_preview_back"
TOKEN = "_preview_token"
SALT = "gateway.grant-preview"
MAX_AGE = 30 * 60  # seconds a preview may be confirmed in
INTERNAL = {"csrfmiddlewaretoken", CONFIRM, BACK, TOKEN}


def sign(found: Review, batch: str) -> str:
    return signing.dumps({"version": found.version, "change": found.staged.as_json(),
                          "counts": found.counts, "batch": batch}, salt=SALT, compress=True)


def confirmed(request: HttpRequest, staged: Staged) -> dict[str, Any] | None:
    """The token's content if it names exactly ``staged`` at the current grant version.
    Call inside a transaction, after ``lock_version``."""
    try:
        token = signing.loads(request.POST.get(TOKEN, ""), salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(token, dict) or token.get("change") != staged.as_json():
        return None
    if token.get("version") != lock_version():
        return None
    return token


def lock_version() -> int:
    """The grant version, with its row locked until the transaction ends (every grant save
    bumps that row, so no grant changes between this check and the save)."""
    GrantVersion.objects.get_or_create(pk=1, defaults={"version": 0})
    return int(GrantVersion.objects.select_for_update().get(pk=1).version)


class _GoingBack:
    """Mixed into the admin's form on "Go back": the bound form is shown again, never saved."""

    def is_valid(self) -> bool:
        return False


class PreviewedGrantAdmin(admin.ModelAdmin[Grant]):
    """The preview step for ``GrantAdmin`` (``gateway.admin``)."""

    delete_confirmation_template = "gateway/grant_preview/delete.html"
    actions = ["delete_selected"]

    # --- add and edit -----------------------------------------------------------------

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> type[ModelForm[Grant]]:
        form = super().get_form(request, obj, change, **kwargs)
        if request.method == "POST" and BACK in request.POST:
            return type(form.__name__, (_GoingBack, form), {})
        return form

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: dict[str, Any] | None = None,
                        ) -> HttpResponse:
        if request.method != "POST" or BACK in request.POST:
            return super().changeform_view(request, object_id, form_url, extra_context)
        staged = self._staged_form(request, object_id)
        if staged is None:  # invalid form, unknown object or no permission: the admin says so
            return super().changeform_view(request, object_id, form_url, extra_context)
        if CONFIRM in request.POST:
            with transaction.atomic():
                now = self._staged_form(request, object_id)  # the row as it is, locked
                token = confirmed(request, now) if now is not None else None
                if token is not None:
                    with previewed(token["batch"], token["counts"]):
                        return super().changeform_view(request, object_id, form_url,
                                                       extra_context)
            messages.warning(request, "The grants changed since that preview, or it expired: "
                                      "here is what the change does now.")
        return self._render_review(request, staged, "gateway/grant_preview/change.html", {
            "fields": [(k, v) for k, vs in request.POST.lists() if k not in INTERNAL for v in vs],
        })

    def _staged_form(self, request: HttpRequest, object_id: str | None) -> Staged | None:
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        if object_id and obj is None:
            return None
        if not (self.has_change_permission(request, obj) if obj else self.has_add_permission(request)):
            return None
        before = Grant.objects.get(pk=obj.pk) if obj else None
        form = self.get_form(request, obj, change=obj is not None)(
            request.POST, request.FILES, instance=obj)
        if not form.is_valid():
            return None
        return stage_save(before, form.instance)

    # --- delete -----------------------------------------------------------------------

    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_delete_permission(request, obj):
            return super().delete_view(request, object_id, extra_context)
        staged = stage_delete([obj])
        if request.method == "POST":
            with transaction.atomic():
                token = confirmed(request, staged)
                if token is not None:
                    with previewed(token["batch"], token["counts"]):
                        return super().delete_view(request, object_id, extra_context)
            messages.warning(request, "The grants changed since that preview, or it expired: "
                                      "here is what deleting does now.")
            return HttpResponseRedirect(request.get_full_path())
        found = review(staged)
        return super().delete_view(request, object_id, {
            **(extra_context or {}), "review": found, "token": sign(found, secrets.token_hex(8)),
            "token_name": TOKEN})

    @admin.action(permissions=["delete"], description="Delete selected grants (preview first)")
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Grant]) -> HttpResponse | None:
        staged = stage_delete(queryset)
        if request.POST.get("post") == "yes":
            with transaction.atomic():
                token = confirmed(request, stage_delete(queryset.all()))
                if token is not None:
                    with previewed(token["batch"], token["counts"]):
                        self.delete_queryset(request, queryset)
                    self.message_user(request, f"Deleted {len(staged.ids)} grant(s).",
                                      messages.SUCCESS)
                    return None
            messages.warning(request, "The grants changed since that preview, or it expired: "
                                      "here is what deleting does now.")
        return self._render_review(request, staged, "gateway/grant_preview/bulk_delete.html",
                                   {"objects": list(queryset), "back_url": request.get_full_path()})

    # --- shared -----------------------------------------------------------------------

    def _render_review(self, request: HttpRequest, staged: Staged, template: str,
                       extra: dict[str, Any]) -> TemplateResponse:
        found = review(staged)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": "Review the grant change", "review": found,
                   "token": sign(found, secrets.token_hex(8)), "token_name": TOKEN,
                   "confirm_name": CONFIRM, "back_name": BACK, **extra}
        return TemplateResponse(request, template, context)

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
