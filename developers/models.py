"""The developer platform: profiles, API keys, monthly quotas, usage and the audit trail.

Quotas bill, so they are exact database counters (:class:`MonthlyUsage`), never cache
throttles. :class:`AuditEvent` keeps ids and UIDs only (no patient names) and plain columns
rather than foreign keys to the archive, so that deleting a study keeps its history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from rest_framework_api_key.models import AbstractAPIKey


class DeveloperProfile(models.Model):
    """One per user; needed before API keys can be created or metered endpoints called."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="developer_profile"
    )
    purpose = models.CharField(max_length=255)
    organization = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Developer profile {self.pk} ({self.user})"


class DeveloperAPIKey(AbstractAPIKey):
    """A hashed API key (``<prefix>.<secret>``); only the prefix and the hash are stored.

    The prefix is the key's public ``id`` in the API: the primary key embeds the hash.
    """

    profile = models.ForeignKey(DeveloperProfile, on_delete=models.CASCADE, related_name="api_keys")

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "developer API key"
        verbose_name_plural = "developer API keys"


class QuotaOverride(models.Model):
    """A per-profile monthly quota replacing ``settings.LIGHTBOX_QUOTAS[endpoint]``."""

    profile = models.ForeignKey(
        DeveloperProfile, on_delete=models.CASCADE, related_name="quota_overrides"
    )
    endpoint = models.CharField(max_length=200, help_text="Route, e.g. /api/dicom/read/file/")
    monthly_limit = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "endpoint"], name="developers_quota_override_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.monthly_limit}/month"


class MonthlyUsage(models.Model):
    """Requests charged to one profile on one endpoint in one UTC month (the 1st)."""

    profile = models.ForeignKey(
        DeveloperProfile, on_delete=models.CASCADE, related_name="monthly_usage"
    )
    endpoint = models.CharField(max_length=200)
    month = models.DateField(help_text="First day of the UTC month")
    count = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0, help_text="Requests refused with 429")

    class Meta:
        ordering = ["-month", "endpoint"]
        verbose_name_plural = "monthly usage"
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "endpoint", "month"], name="developers_monthly_usage_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.month:%Y-%m}: {self.count}"


class DailyUsage(models.Model):
    """Accepted requests per profile, endpoint and UTC day (the activity summary)."""

    profile = models.ForeignKey(
        DeveloperProfile, on_delete=models.CASCADE, related_name="daily_usage"
    )
    endpoint = models.CharField(max_length=200)
    day = models.DateField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "endpoint"]
        verbose_name_plural = "daily usage"
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "endpoint", "day"], name="developers_daily_usage_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.day}: {self.count}"


class AuditAction(models.TextChoices):
    VIEW = "view"
    RENDER = "render"
    DOWNLOAD = "download"
    HEADER = "header"
    STORE = "store"
    EXPORT = "export"
    ANONYMIZE = "anonymize"
    DELETE = "delete"
    KEY_CREATE = "key_create"
    KEY_DELETE = "key_delete"
    SHARE = "share"
    UNSHARE = "unshare"


class AuditEvent(models.Model):
    """Who (user, API key prefix) did what (action on study/instance ids and UIDs), how
    (protocol and route), when, and from which address. Written by
    :func:`developers.audit.audit_record` only; read-only in the admin."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    api_key_id = models.CharField(max_length=16, blank=True, help_text="Prefix of the API key")
    action = models.CharField(max_length=16, choices=AuditAction.choices, db_index=True)
    protocol = models.CharField(max_length=16, default="http", db_index=True)
    route = models.CharField(max_length=255, blank=True)
    study_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    study_uid = models.CharField(max_length=64, blank=True)
    instance_id = models.BigIntegerField(null=True, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} by user {self.user_id}"
