"""The ingest's hand-built statements give the rows and objects the ORM would."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models.signals import post_save

from developers.models import AuditEvent
from dicom.ingest import instance_ingest
from dicom.models import Instance, Series, Study
from dicom.rows import row_insert, rows_insert_linked, series_with_study
from dicom.tests.factories import ct_variant

pytestmark = pytest.mark.django_db


def _stored_series(owner) -> Series:
    data = ct_variant(StudyDate="20240131", SeriesDate="20240201", SeriesNumber=7)
    return instance_ingest(stream=io.BytesIO(data), owner=owner, source="test").instance.series


def test_a_series_and_its_study_read_in_one_statement_equal_the_orm_objects(
    owner, django_assert_num_queries
):
    stored = _stored_series(owner)
    with django_assert_num_queries(1):
        series = series_with_study(stored.series_instance_uid)
        study = series.study
    orm_series = Series.objects.get(pk=stored.pk)
    orm_study = Study.objects.get(pk=stored.study_id)
    for field in Series._meta.concrete_fields:
        assert getattr(series, field.attname) == getattr(orm_series, field.attname), field.name
    for field in Study._meta.concrete_fields:
        assert getattr(study, field.attname) == getattr(orm_study, field.attname), field.name
    assert series.series_date.isoformat() == "2024-02-01"  # a date, not SQLite's text
    assert study.study_date.isoformat() == "2024-01-31"
    assert study.is_shared is False
    assert series._state.adding is False


def test_the_study_says_when_it_is_shared(owner):
    stored = _stored_series(owner)
    stored.study.shared_with.add(Group.objects.create(name="radiology"))
    assert series_with_study(stored.series_instance_uid).study.is_shared is True


def test_an_unknown_series_is_none(owner):
    _stored_series(owner)
    assert series_with_study("1.2.3.4.5.6.7.8.9") is None


def test_row_insert_stores_the_row_save_would_and_announces_it(owner):
    announced = []

    def receiver(sender, instance, created, **kwargs):
        announced.append((instance.pk, created, kwargs["raw"]))

    post_save.connect(receiver, sender=AuditEvent)
    try:
        event = row_insert(AuditEvent(user=owner, action="store", protocol="dimse", detail="x"))
    finally:
        post_save.disconnect(receiver, sender=AuditEvent)
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.user_id, stored.action, stored.protocol, stored.detail) == (
        owner.pk,
        "store",
        "dimse",
        "x",
    )
    assert stored.created_at is not None  # auto_now_add, as save() sets it
    assert stored.created_at == event.created_at
    assert stored.route == ""  # a field default
    assert announced == [(event.pk, True, False)]
    assert event._state.adding is False


def _new_instance(series: Series, uid: str) -> Instance:
    return Instance(
        series=series, sop_instance_uid=uid, sha256="a" * 64, file_size=1, header={"x": 1}
    )


def test_an_instance_and_its_audit_record_are_stored_together(owner):
    series = _stored_series(owner)
    instance = _new_instance(series, "1.2.3.4.5")
    event = AuditEvent(user=owner, action="store", protocol="http", detail="test")
    rows_insert_linked(instance, event, link="instance_id")
    assert Instance.objects.get(pk=instance.pk).header == {"x": 1}
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.instance_id == instance.pk
    assert (stored.action, stored.detail) == ("store", "test")


def test_when_the_audit_record_fails_the_instance_is_not_stored_either(owner):
    series = _stored_series(owner)
    before = Instance.objects.count()
    instance = _new_instance(series, "1.2.3.4.6")
    broken = AuditEvent(user=owner, action=None, protocol="http")  # NOT NULL
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert_linked(instance, broken, link="instance_id")
    assert Instance.objects.count() == before
    assert not Instance.objects.filter(sop_instance_uid="1.2.3.4.6").exists()
