"""Monthly quotas per developer and endpoint: exact database counters, charged BEFORE the
work runs.

:func:`quota_charge` makes sure the (profile, endpoint, month) row exists, then increments it
with one conditional ``UPDATE ... SET count = count + 1 WHERE ... AND count < quota``. On
PostgreSQL concurrent updaters queue on the row lock and re-check the condition against the
committed value, so N concurrent requests with K left let exactly K through; SQLite
serialises writers. Months and days are UTC.

Views opt in with :class:`MeteredMixin` (``metered_endpoint = "/api/..."``). Callers need a
developer profile (403 otherwise): requests made with an API key always have one; JWT or
session users must create theirs first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.request import Request

from developers.models import DailyUsage, DeveloperProfile, MonthlyUsage, QuotaOverride
from dicom.errors import QuotaExceeded

logger = logging.getLogger(__name__)

MSG_PROFILE_REQUIRED = "Create a developer profile first: POST /api/developer/profiles/."


class DeveloperProfileRequired(exceptions.PermissionDenied):
    default_detail = MSG_PROFILE_REQUIRED
    default_code = "developer_profile_required"


def utc_now() -> datetime:
    return timezone.now().astimezone(UTC)


def month_start(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def next_month_start(moment: datetime) -> datetime:
    first = month_start(moment)
    following = (first + timedelta(days=32)).replace(day=1)
    return datetime(following.year, following.month, 1, tzinfo=UTC)


def seconds_to_next_month(moment: datetime) -> int:
    return max(1, int((next_month_start(moment) - moment).total_seconds()))


def quota_for(*, profile: DeveloperProfile, endpoint: str) -> int | None:
    """The profile's override, else ``settings.LIGHTBOX_QUOTAS[endpoint]``, else None
    (counted but unlimited)."""
    override = (
        QuotaOverride.objects.filter(profile=profile, endpoint=endpoint)
        .values_list("monthly_limit", flat=True)
        .first()
    )
    if override is not None:
        return override
    return getattr(settings, "LIGHTBOX_QUOTAS", {}).get(endpoint)


def quota_charge(*, profile: DeveloperProfile, endpoint: str) -> int:
    """Charge one request; returns the month's count including it.

    Raises :class:`QuotaExceeded` (429, seed 003 payload, ``Retry-After`` = seconds to the
    next UTC month) without charging when the quota is used up.
    """
    now = utc_now()
    month, day = month_start(now), now.date()
    quota = quota_for(profile=profile, endpoint=endpoint)
    usage_id = _row_id(MonthlyUsage, profile=profile, endpoint=endpoint, month=month)
    with transaction.atomic():
        rows = MonthlyUsage.objects.filter(pk=usage_id)
        if quota is not None:
            rows = rows.filter(count__lt=quota)
        charged = rows.update(count=F("count") + 1) == 1
        if charged:
            daily_id = _row_id(DailyUsage, profile=profile, endpoint=endpoint, day=day)
            DailyUsage.objects.filter(pk=daily_id).update(count=F("count") + 1)
        used = MonthlyUsage.objects.values_list("count", flat=True).get(pk=usage_id)
    if charged:
        return used
    MonthlyUsage.objects.filter(pk=usage_id).update(rejected=F("rejected") + 1)
    raise QuotaExceeded(
        path=endpoint,
        quota=quota or 0,
        requests_used=used + 1,
        retry_after=seconds_to_next_month(now),
    )


def _row_id(model: Any, **lookup: Any) -> int:
    """The id of the counter row, created at zero if missing (safe under races)."""
    found = model.objects.filter(**lookup).values_list("pk", flat=True).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return model.objects.create(**lookup).pk
    except IntegrityError:
        return model.objects.values_list("pk", flat=True).get(**lookup)


@dataclass
class EndpointUsage:
    endpoint: str
    quota: int | None
    monthly_total: int
    daily_activity: list[dict[str, Any]]


def usage_summary(*, profile: DeveloperProfile) -> dict[str, Any]:
    """Seed 003's activity summary for the current UTC month, plus a per-endpoint split."""
    month = month_start(utc_now())
    daily = DailyUsage.objects.filter(profile=profile, day__gte=month)
    totals = daily.values("day").annotate(total=Sum("count")).order_by("day")
    endpoints = sorted(
        set(getattr(settings, "LIGHTBOX_QUOTAS", {}))
        | set(
            MonthlyUsage.objects.filter(profile=profile, month=month).values_list(
                "endpoint", flat=True
            )
        )
    )
    return {
        "daily_activity": [{"day": r["day"].isoformat(), "count": r["total"]} for r in totals],
        "monthly_total": sum(r["total"] for r in totals),
        "endpoints": [_endpoint_usage(profile, e, month, daily) for e in endpoints],
    }


def _endpoint_usage(
    profile: DeveloperProfile, endpoint: str, month: date, daily: Any
) -> dict[str, Any]:
    used = (
        MonthlyUsage.objects.filter(profile=profile, endpoint=endpoint, month=month)
        .values_list("count", flat=True)
        .first()
        or 0
    )
    quota = quota_for(profile=profile, endpoint=endpoint)
    rows = daily.filter(endpoint=endpoint).order_by("day")
    return {
        "endpoint": endpoint,
        "quota": quota,
        "monthly_total": used,
        "remaining": None if quota is None else max(quota - used, 0),
        "daily_activity": [{"day": r.day.isoformat(), "count": r.count} for r in rows],
    }


def profile_of(user: Any) -> DeveloperProfile | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return DeveloperProfile.objects.filter(user=user).first()


class MeteredMixin:
    """For ``APIView`` subclasses: charge the caller's monthly quota for
    ``metered_endpoint`` after authentication, permissions and throttles, before the
    handler runs. A request refused with 429 is not processed."""

    metered_endpoint: str = ""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        profile = profile_of(request.user)
        if profile is None:
            raise DeveloperProfileRequired()
        used = quota_charge(profile=profile, endpoint=self.metered_endpoint or request.path)
        logger.info(
            "metered request profile=%s endpoint=%s month_count=%s",
            profile.pk,
            self.metered_endpoint,
            used,
        )
