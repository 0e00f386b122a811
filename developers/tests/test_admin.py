"""The admin: profiles with quota overrides inline, keys created (shown once) and revoked,
read-only usage and audit trail."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from developers.authentication import api_key_lookup
from developers.models import AuditEvent, DeveloperAPIKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, django_user_model):
    user = django_user_model.objects.create_superuser(email="root@example.com", password="x")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "model",
    ["developerprofile", "developerapikey", "monthlyusage", "dailyusage", "auditevent"],
)
def test_every_developer_model_has_an_admin_list(admin, model, profile):
    AuditEvent.objects.create(action="view", study_id=1)
    assert admin.get(f"/admin/developers/{model}/").status_code == 200


def test_groups_and_users_are_in_the_admin(admin):
    assert admin.get("/admin/auth/group/").status_code == 200
    assert admin.get("/admin/accounts/user/").status_code == 200


def test_a_profile_page_shows_quota_overrides_and_keys_inline(admin, profile, api_key):
    page = admin.get(f"/admin/developers/developerprofile/{profile.pk}/change/")
    assert page.status_code == 200
    assert b"quota_overrides" in page.content
    assert api_key.partition(".")[0].encode() in page.content


def test_a_key_created_in_the_admin_is_shown_once_and_works(admin, profile):
    response = admin.post(
        "/admin/developers/developerapikey/add/",
        {"name": "from admin", "profile": profile.pk, "expiry_date_0": "", "expiry_date_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    message = next(str(m) for m in get_messages(response.wsgi_request) if "API key" in str(m))
    key = message.split(": ", 1)[1].split(". ")[0]
    assert api_key_lookup(key=key).profile == profile
    assert not DeveloperAPIKey.objects.filter(hashed_key__contains=key).exists()


def test_the_audit_trail_is_read_only_and_filterable(admin):
    event = AuditEvent.objects.create(action="download", protocol="dicomweb", study_id=3)
    assert admin.get("/admin/developers/auditevent/?action__exact=download").status_code == 200
    assert admin.get("/admin/developers/auditevent/add/").status_code == 403
    change = admin.post(f"/admin/developers/auditevent/{event.pk}/change/", {"action": "view"})
    assert change.status_code == 403
    assert admin.post(f"/admin/developers/auditevent/{event.pk}/delete/").status_code == 403
    event.refresh_from_db()
    assert event.action == "download"
