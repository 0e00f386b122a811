"""Jobs in the admin: read-only (they are changed by the worker only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from jobs.models import Job, JobItem


class ReadOnlyMixin:
    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


class JobItemInline(ReadOnlyMixin, admin.TabularInline):
    model = JobItem
    fields = ["index", "key", "status", "attempts", "result", "error", "finished_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = False

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).order_by("index")


@admin.register(Job)
class JobAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "owner",
        "status",
        "processed",
        "failed",
        "total",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["id", "owner__email"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    readonly_fields = [f.name for f in Job._meta.fields] + ["percentage"]
    inlines = [JobItemInline]
