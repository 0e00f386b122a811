"""Sharing and roles: the owner shares a study with a group, group members see it, staff see
everything, and everyone else gets 404 on every route that names it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import Resolver404, resolve
from rest_framework.test import APIClient

from developers.models import AuditEvent
from developers.tests.helpers import sample_file
from dicom.ingest import instance_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(owner):
    with sample_file("CT_small.dcm").open("rb") as fh:
        return instance_ingest(stream=fh, owner=owner, source="test", filename="CT_small.dcm")


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def study_routes(stored) -> list[tuple[str, str, dict]]:
    """Every route that names the study, one of its series or one of its images."""
    instance = stored.instance
    study, series, image = instance.series.study_id, instance.series_id, instance.pk
    study_uid = instance.series.study.study_instance_uid
    series_uid = instance.series.series_instance_uid
    sop = instance.sop_instance_uid
    wado = f"/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop}"
    return [
        ("get", f"/viewer/api/studies/{study}/", {}),
        ("get", f"/viewer/api/studies/{study}/images/", {}),
        ("get", f"/viewer/api/studies/{study}/series/", {}),
        ("get", f"/viewer/api/series/{series}/images/", {}),
        ("get", f"/viewer/api/images/{image}/", {}),
        ("get", f"/viewer/api/images/{image}/data/", {}),
        ("get", f"/viewer/api/images/{image}/preview/", {}),
        ("get", f"/viewer/api/images/{image}/header/?tag=Modality", {}),
        ("get", f"/viewer/api/images/{image}/file/", {}),
        ("get", f"/viewer/api/images/{image}/pixels/", {}),
        ("get", f"/viewer/api/measurements/?image_id={image}", {}),
        ("get", f"/viewer/api/annotations/?image_id={image}", {}),
        ("get", f"/viewer/api/studies/{study}/share/", {}),
        ("get", f"/dicomweb/studies/{study_uid}/metadata", {}),
        ("get", f"{wado}/rendered", {}),
        ("get", wado, {}),
    ]


def routed(path: str) -> bool:
    try:
        resolve(path.split("?")[0])
    except Resolver404:
        return False
    return True


def call(client: APIClient, method: str, path: str, data: dict):
    send = getattr(client, method)
    return send(path, data, format="json") if data else send(path)


def test_an_outsider_gets_404_on_every_route_that_names_the_study(stored, outsider):
    client = as_user(outsider)
    walked = 0
    for method, path, data in study_routes(stored):
        if not routed(path):
            continue
        response = call(client, method, path, data)
        assert response.status_code == 404, (path, response.status_code)
        walked += 1
    assert walked >= 12
    study_id = stored.instance.series.study_id
    assert client.get("/viewer/api/studies/").json() == []
    share = client.post(f"/viewer/api/studies/{study_id}/share/", {"group": "radiology"})
    assert share.status_code == 404
    assert client.delete(f"/viewer/api/studies/{study_id}/share/1/").status_code == 404
    measurement = {
        "image_id": stored.instance.pk,
        "measurement_type": "line",
        "coordinates": [[0, 0], [1, 1]],
    }
    if routed("/viewer/api/measurements/save/"):
        saved = client.post("/viewer/api/measurements/save/", measurement, format="json")
        assert saved.status_code == 404


def test_a_colleague_sees_the_study_once_shared_with_their_group(stored, owner, colleague):
    study_id = stored.instance.series.study_id
    client = as_user(colleague)
    assert client.get(f"/viewer/api/studies/{study_id}/").status_code == 404

    shared = as_user(owner).post(
        f"/viewer/api/studies/{study_id}/share/", {"group": "radiology"}, format="json"
    )
    assert shared.status_code == 201
    assert shared.json()["shared_with"] == [{"id": Group.objects.get().pk, "name": "radiology"}]

    for method, path, data in study_routes(stored):
        if routed(path):
            assert call(client, method, path, data).status_code == 200, path
    assert [s["id"] for s in client.get("/viewer/api/studies/").json()] == [study_id]


def test_staff_see_every_study(stored, staff):
    client = as_user(staff)
    for method, path, data in study_routes(stored):
        if routed(path):
            assert call(client, method, path, data).status_code == 200, path


def test_only_the_owner_or_staff_change_sharing(stored, owner, colleague, staff):
    study_id = stored.instance.series.study_id
    group = Group.objects.get(name="radiology")
    other = Group.objects.create(name="cardiology")
    url = f"/viewer/api/studies/{study_id}/share/"
    assert as_user(owner).post(url, {"group": str(group.pk)}).status_code == 201
    assert as_user(owner).post(url, {"group": "radiology"}).status_code == 200  # already

    refused = as_user(colleague).post(url, {"group": "cardiology"})
    assert refused.status_code == 403
    assert as_user(colleague).delete(f"{url}{group.pk}/").status_code == 403
    assert as_user(staff).post(url, {"group": other.pk}).status_code == 201

    assert as_user(owner).delete(f"{url}{group.pk}/").status_code == 204
    assert as_user(colleague).get(f"/viewer/api/studies/{study_id}/").status_code == 404
    assert as_user(owner).delete(f"{url}{group.pk}/").status_code == 404  # not shared now


def test_sharing_with_an_unknown_group_or_none_is_400(stored, owner):
    url = f"/viewer/api/studies/{stored.instance.series.study_id}/share/"
    missing = as_user(owner).post(url, {"group": "nobody"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "group_not_found"
    assert as_user(owner).post(url, {}).status_code == 400


def test_sharing_changes_are_audited(stored, owner, colleague):
    study = stored.instance.series.study
    url = f"/viewer/api/studies/{study.pk}/share/"
    as_user(owner).post(url, {"group": "radiology"})
    as_user(owner).delete(f"{url}{Group.objects.get().pk}/")
    events = AuditEvent.objects.filter(study_id=study.pk, action__contains="share").order_by("id")
    assert [(e.action, e.user_id, e.study_uid) for e in events] == [
        ("share", owner.pk, study.study_instance_uid),
        ("unshare", owner.pk, study.study_instance_uid),
    ]
