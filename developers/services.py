"""Developer profiles and API keys (seed 003's flow)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from developers.audit import audit_record
from developers.models import DeveloperAPIKey, DeveloperProfile
from developers.quotas import DeveloperProfileRequired
from dicom.errors import LightboxError, NotFound

MSG_PROFILE_EXISTS = "You already have a developer profile."
MSG_KEY_NOT_FOUND = "API key not found."


class ProfileExists(LightboxError):
    status = 409
    code = "profile_exists"
    default_message = MSG_PROFILE_EXISTS


def profile_create(*, user: Any, purpose: str, organization: str) -> DeveloperProfile:
    """One profile per user: a second attempt raises :class:`ProfileExists` (409)."""
    if DeveloperProfile.objects.filter(user=user).exists():
        raise ProfileExists()
    try:
        with transaction.atomic():
            return DeveloperProfile.objects.create(
                user=user, purpose=purpose, organization=organization
            )
    except IntegrityError:
        raise ProfileExists() from None


def profile_get(*, user: Any) -> DeveloperProfile:
    profile = DeveloperProfile.objects.filter(user=user).first()
    if profile is None:
        raise DeveloperProfileRequired()
    return profile


def api_keys_of(*, user: Any) -> QuerySet[DeveloperAPIKey]:
    return DeveloperAPIKey.objects.filter(profile__user=user).order_by("-created")


def api_key_create(*, request: Any, name: str) -> tuple[DeveloperAPIKey, str]:
    """A new key for the caller's profile; the plain key is returned once, never stored."""
    profile = profile_get(user=request.user)
    api_key, key = DeveloperAPIKey.objects.create_key(profile=profile, name=name)
    audit_record(request=request, action="key_create", detail=f"key {api_key.prefix}")
    return api_key, key


def api_key_delete(*, request: Any, key_id: str) -> None:
    """Delete one of the caller's keys by its id (prefix; the full ``prefix.hash`` primary
    key is accepted too). Another user's key or an unknown id is :class:`NotFound`."""
    prefix = str(key_id).partition(".")[0]
    api_key = api_keys_of(user=request.user).filter(prefix=prefix).first()
    if api_key is None:
        raise NotFound(MSG_KEY_NOT_FOUND)
    api_key.delete()
    audit_record(request=request, action="key_delete", detail=f"key {prefix}")
