"""``ModelAdmin[...]`` at runtime without django_stubs_ext, which a host project need not call:
the same no-op subscription it installs. Imported first by every module that subclasses it."""

from __future__ import annotations

from django.contrib import admin

if not hasattr(admin.ModelAdmin, "__class_getitem__"):
    admin.ModelAdmin.__class_getitem__ = classmethod(lambda cls, *args: cls)  # type: ignore[attr-defined]
