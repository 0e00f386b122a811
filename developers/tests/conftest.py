"""Fixtures for the developer platform: a developer with a password, their profile and
API key, and an API client authenticated by that key."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from developers.tests.helpers import PASSWORD


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def developer(django_user_model):
    return django_user_model.objects.create_user(email="user5@example.com", password=PASSWORD)


@pytest.fixture
def profile(developer):
    from developers.models import DeveloperProfile

    return DeveloperProfile.objects.create(user=developer, purpose="testing", organization="Org")


@pytest.fixture
def api_key(profile) -> str:
    from developers.models import DeveloperAPIKey

    _obj, key = DeveloperAPIKey.objects.create_key(profile=profile, name="test key")
    return key


@pytest.fixture
def key_client(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"ApiKey {api_key}")
    return client
