"""Rate limits are DRF throttles (anonymous, authenticated, uploads, token): 429 with
``Retry-After``. Monthly quotas are separate, exact database counters."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from developers.models import MonthlyUsage
from developers.tests.helpers import read_file, sample_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(monkeypatch):
    """Set throttle rates for one test (DRF binds them at import, so ``settings`` can't)."""

    def apply(**scopes: str) -> None:
        current = dict(SimpleRateThrottle.THROTTLE_RATES)
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**current, **scopes})

    return apply


def test_repeated_token_attempts_are_throttled_with_retry_after(developer, rates):
    rates(token="3/min")
    client = APIClient()
    codes = [
        client.post("/api/token/", {"email": developer.email, "password": "bad"}).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 401, 429]
    refused = client.post("/api/token/", {"email": developer.email, "password": "bad"})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["error"]


def test_authenticated_requests_are_throttled_per_user(key_client, outsider_client, rates):
    rates(user="2/min")
    url = "/api/developer/profiles/activity-summary/"
    assert [key_client.get(url).status_code for _ in range(3)] == [200, 200, 429]
    assert outsider_client.get("/viewer/api/studies/").status_code == 200  # own bucket


def test_anonymous_requests_are_throttled(rates):
    rates(anon="2/min")
    client = APIClient()
    codes = [client.get("/api/schema/").status_code for _ in range(3)]
    assert codes[-1] == 429


def test_an_upload_throttled_request_is_not_charged_to_the_quota(key_client, rates):
    rates(uploads="1/min")
    assert read_file(key_client, sample_file("CT_small.dcm")).status_code == 200
    refused = read_file(key_client, sample_file("CT_small.dcm"))
    assert refused.status_code == 429
    assert "Retry-After" in refused
    assert MonthlyUsage.objects.get().count == 1
