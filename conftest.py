"""Shared fixtures: personas (owner, colleague in a shared group, outsider, staff), the
real DICOM corpus and isolated storage folders for every test."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def isolated_storage(tmp_path, settings):
    """Every test stores files under its own temporary folder."""
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    settings.LIGHTBOX_STAGING_DIR = tmp_path / "staging"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": settings.STORAGES["default"]["BACKEND"],
            "OPTIONS": {
                **settings.STORAGES["default"].get("OPTIONS", {}),
                **(
                    {"location": str(media)}
                    if "FileSystemStorage" in settings.STORAGES["default"]["BACKEND"]
                    else {}
                ),
            },
        },
    }
    from django.core.files.storage import default_storage, storages

    storages._storages = {}
    from django.utils.functional import empty

    default_storage._wrapped = empty
    yield tmp_path
    storages._storages = {}
    default_storage._wrapped = empty


def samples_dir() -> Path:
    return Path(settings.LIGHTBOX_SAMPLES_DIR)


def corpus_rows() -> list[dict[str, str]]:
    manifest = samples_dir() / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture
def corpus() -> Path:
    path = samples_dir()
    if not (path / "MANIFEST.tsv").exists():
        pytest.skip(f"dicom-samples corpus not found at {path} (set LIGHTBOX_SAMPLES_DIR)")
    return path


def _user(django_user_model, email: str, **extra):
    return django_user_model.objects.create_user(email=email, password="pass-1234-word", **extra)


@pytest.fixture
def owner(django_user_model):
    return _user(django_user_model, "owner@example.com")


@pytest.fixture
def outsider(django_user_model):
    return _user(django_user_model, "outsider@example.com")


@pytest.fixture
def staff(django_user_model):
    return _user(django_user_model, "staff@example.com", is_staff=True)


@pytest.fixture
def colleague(django_user_model):
    from django.contrib.auth.models import Group

    user = _user(django_user_model, "colleague@example.com")
    group, _ = Group.objects.get_or_create(name="radiology")
    user.groups.add(group)
    return user


@pytest.fixture
def owner_client(owner):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def outsider_client(outsider):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(outsider)
    return client


@pytest.fixture(autouse=True)
def isolated_throttles(monkeypatch):
    """DRF throttles count in a fresh in-memory cache per test, so request counts never
    leak between tests (a shared cache would make the suite flaky with 429s)."""
    import uuid

    from django.core.cache.backends.locmem import LocMemCache
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "cache", LocMemCache(f"throttle-{uuid.uuid4()}", {}))
