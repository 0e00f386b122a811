"""Monthly quotas: exact database counters, charged before the work, reset at the UTC month
boundary, atomic under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection
from freezegun import freeze_time

from developers.models import DailyUsage, DeveloperProfile, MonthlyUsage, QuotaOverride
from developers.quotas import quota_charge, seconds_to_next_month
from developers.tests.helpers import READ_URL, bearer, read_file, sample_file, token_pair
from dicom.errors import QuotaExceeded

pytestmark = pytest.mark.django_db


def small_quota(profile, limit: int) -> None:
    QuotaOverride.objects.create(profile=profile, endpoint=READ_URL, monthly_limit=limit)


def test_the_default_quota_comes_from_settings(key_client, settings):
    settings.LIGHTBOX_QUOTAS = {READ_URL: 1}
    assert read_file(key_client, sample_file("CT_small.dcm")).status_code == 200
    refused = read_file(key_client, sample_file("CT_small.dcm"))
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "Monthly API request for '/api/dicom/read/file/' limit exceeded.",
        "quota": 1,
        "requests_used": 2,
    }


def test_a_profile_override_wins_over_the_default(key_client, profile, settings):
    settings.LIGHTBOX_QUOTAS = {READ_URL: 1}
    small_quota(profile, 3)
    codes = [read_file(key_client, sample_file("CT_small.dcm")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_request_over_quota_is_refused_before_any_work(key_client, profile, isolated_storage):
    small_quota(profile, 0)
    response = read_file(key_client, data=b"not dicom at all", name="x.dcm")
    assert response.status_code == 429  # not 400: the file was never looked at
    assert response.json()["requests_used"] == 1
    staging = isolated_storage / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    usage = MonthlyUsage.objects.get()
    assert (usage.count, usage.rejected) == (0, 1)


def test_a_bad_request_within_quota_is_charged(key_client, profile):
    response = read_file(key_client, data=b"not dicom", name="x.dcm")
    assert response.status_code == 400
    assert MonthlyUsage.objects.get().count == 1


def test_usage_resets_at_the_utc_month_boundary(key_client, profile):
    small_quota(profile, 2)
    with freeze_time("2025-01-31 23:59:58+00:00"):
        assert read_file(key_client, sample_file("CT_small.dcm")).status_code == 200
        assert read_file(key_client, sample_file("CT_small.dcm")).status_code == 200
        refused = read_file(key_client, sample_file("CT_small.dcm"))
        assert refused.status_code == 429
        assert refused["Retry-After"] == "2"
    with freeze_time("2025-02-01 00:00:00+00:00"):
        assert read_file(key_client, sample_file("CT_small.dcm")).status_code == 200
    months = dict(MonthlyUsage.objects.values_list("month", "count"))
    assert {m.isoformat(): c for m, c in months.items()} == {"2025-01-01": 2, "2025-02-01": 1}


def test_the_month_is_the_utc_month_whatever_the_time_zone(profile, settings):
    settings.TIME_ZONE = "America/New_York"
    with freeze_time("2025-02-01 04:30:00+00:00"):  # still 31 January in New York
        quota_charge(profile=profile, endpoint=READ_URL)
    usage = MonthlyUsage.objects.get()
    assert usage.month.isoformat() == "2025-02-01"
    assert DailyUsage.objects.get().day.isoformat() == "2025-02-01"


def test_retry_after_counts_the_seconds_to_the_next_utc_month():
    assert seconds_to_next_month(datetime(2025, 12, 31, 23, 0, tzinfo=UTC)) == 3600
    assert seconds_to_next_month(datetime(2024, 2, 29, 0, 0, tzinfo=UTC)) == 86400


def test_the_activity_summary_counts_days_and_endpoints(key_client, profile):
    with freeze_time("2025-03-02 10:00:00+00:00"):
        quota_charge(profile=profile, endpoint=READ_URL)
    with freeze_time("2025-03-05 10:00:00+00:00"):
        quota_charge(profile=profile, endpoint=READ_URL)
        quota_charge(profile=profile, endpoint="/api/other/")
        body = key_client.get("/api/developer/profiles/activity-summary/").json()
    assert body["daily_activity"] == [
        {"day": "2025-03-02", "count": 1},
        {"day": "2025-03-05", "count": 2},
    ]
    assert body["monthly_total"] == 3
    by_endpoint = {e["endpoint"]: e for e in body["endpoints"]}
    assert by_endpoint[READ_URL]["monthly_total"] == 2
    assert by_endpoint[READ_URL]["quota"] == 1000
    assert by_endpoint[READ_URL]["remaining"] == 998
    assert by_endpoint["/api/other/"]["quota"] is None


def test_last_months_usage_is_not_in_the_summary(key_client, profile):
    with freeze_time("2025-03-31 23:00:00+00:00"):
        quota_charge(profile=profile, endpoint=READ_URL)
    with freeze_time("2025-04-01 01:00:00+00:00"):
        body = key_client.get("/api/developer/profiles/activity-summary/").json()
    assert body["daily_activity"] == []
    assert body["monthly_total"] == 0


def test_a_user_without_a_profile_gets_403_on_metered_endpoints(developer):
    from rest_framework.test import APIClient

    client = bearer(APIClient(), token_pair(APIClient(), developer.email)["access"])
    response = read_file(client, sample_file("CT_small.dcm"))
    assert response.status_code == 403
    assert response.json()["code"] == "developer_profile_required"
    assert MonthlyUsage.objects.count() == 0


def test_a_jwt_developer_is_metered_like_a_key(developer, profile):
    from rest_framework.test import APIClient

    small_quota(profile, 1)
    client = bearer(APIClient(), token_pair(APIClient(), developer.email)["access"])
    assert read_file(client, sample_file("CT_small.dcm")).status_code == 200
    assert read_file(client, sample_file("CT_small.dcm")).status_code == 429


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_requests_with_ten_left_let_exactly_ten_through(django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("row-lock concurrency needs PostgreSQL (set DATABASE_URL)")
    user = django_user_model.objects.create_user(email="race@example.com", password="x")
    profile = DeveloperProfile.objects.create(user=user, purpose="race")
    QuotaOverride.objects.create(profile=profile, endpoint=READ_URL, monthly_limit=25)
    for _ in range(15):
        quota_charge(profile=profile, endpoint=READ_URL)
    barrier = threading.Barrier(50)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt() -> None:
        from django.db import connections

        try:
            barrier.wait()
            quota_charge(profile=profile, endpoint=READ_URL)
            result = "ok"
        except QuotaExceeded:
            result = "refused"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 10
    assert outcomes.count("refused") == 40
    usage = MonthlyUsage.objects.get()
    assert (usage.count, usage.rejected) == (25, 40)
    assert DailyUsage.objects.get().count == 25
