"""Admin: profiles (with quota overrides and keys inline), API keys (create shows the key
once; revoke), usage counters (read-only) and the audit trail (read-only, filterable)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from developers.models import (
    AuditEvent,
    DailyUsage,
    DeveloperAPIKey,
    DeveloperProfile,
    MonthlyUsage,
    QuotaOverride,
)

# Lightbox keys are DeveloperAPIKey; the library's unbound model would only confuse admins.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)


class QuotaOverrideInline(admin.TabularInline):
    model = QuotaOverride
    extra = 0


class ApiKeyInline(admin.TabularInline):
    model = DeveloperAPIKey
    extra = 0
    can_delete = False
    fields = ("prefix", "name", "created", "expiry_date", "revoked")
    readonly_fields = ("prefix", "name", "created", "expiry_date", "revoked")
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DeveloperProfile)
class DeveloperProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "purpose", "created_at")
    search_fields = ("user__email", "organization")
    raw_id_fields = ("user",)
    inlines = [QuotaOverrideInline, ApiKeyInline]


@admin.register(DeveloperAPIKey)
class DeveloperAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "profile")
    list_filter = ("revoked", "created")
    search_fields = ("name", "prefix", "profile__user__email")
    raw_id_fields = ("profile",)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MonthlyUsage)
class MonthlyUsageAdmin(ReadOnlyAdmin):
    list_display = ("profile", "endpoint", "month", "count", "rejected")
    list_filter = ("endpoint", "month")
    search_fields = ("profile__user__email",)


@admin.register(DailyUsage)
class DailyUsageAdmin(ReadOnlyAdmin):
    list_display = ("profile", "endpoint", "day", "count")
    list_filter = ("endpoint", "day")
    search_fields = ("profile__user__email",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "action",
        "user",
        "api_key_id",
        "protocol",
        "route",
        "study_id",
        "instance_id",
        "client_address",
    )
    list_filter = ("action", "protocol", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("user__email", "study_uid", "sop_instance_uid", "api_key_id", "route")
    list_select_related = ("user",)
