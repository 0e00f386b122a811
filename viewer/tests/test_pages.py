from __future__ import annotations

import pytest

from viewer.tests.helpers import sample_path, upload

pytestmark = pytest.mark.django_db


def test_the_study_list_needs_a_login(client):
    response = client.get("/viewer/")
    assert response.status_code == 302
    assert response["Location"].startswith("/viewer/login/")


def test_a_user_logs_in_with_email_and_password(client, owner):
    response = client.post(
        "/viewer/login/", {"username": "owner@example.com", "password": "pass-1234-word"}
    )
    assert response.status_code == 302
    assert client.get("/viewer/").status_code == 200


def test_a_wrong_password_shows_the_form_again(client, owner):
    response = client.post("/viewer/login/", {"username": "owner@example.com", "password": "no"})
    assert response.status_code == 200
    assert b"Please enter a correct" in response.content


def test_the_owner_opens_their_study_page(client, owner, owner_client):
    study_id = upload(owner_client, sample_path("CT_small.dcm"))["study_id"]
    client.force_login(owner)
    response = client.get(f"/viewer/studies/{study_id}/")
    assert response.status_code == 200
    assert b'data-study-id="' in response.content


def test_another_user_gets_404_on_the_study_page(client, outsider, owner_client):
    study_id = upload(owner_client, sample_path("CT_small.dcm"))["study_id"]
    client.force_login(outsider)
    assert client.get(f"/viewer/studies/{study_id}/").status_code == 404


def test_logout_ends_the_session(client, owner):
    client.force_login(owner)
    assert client.post("/viewer/logout/").status_code == 302
    assert client.get("/viewer/").status_code == 302
