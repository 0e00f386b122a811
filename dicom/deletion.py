"""Deleting studies and instances: rows and files, with an audit record.

Rows go in one transaction; the stored files (original and derived files under
``final/{sha256}/``) are removed after the commit, and only when no remaining instance
has the same content. A study or series left empty is removed with its last instance.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from rest_framework import status

from dicom.errors import LightboxError
from dicom.models import Instance, Patient, Series, Study
from dicom.storage import blob_delete_tree

logger = logging.getLogger(__name__)


class DeleteForbidden(LightboxError):
    status = status.HTTP_403_FORBIDDEN
    code = "delete_forbidden"
    default_message = "Only the study's owner or an administrator may delete it."


def delete_allowed(*, study: Study, user: Any) -> bool:
    return bool(getattr(user, "is_staff", False) or study.owner_id == getattr(user, "pk", None))


def study_delete(*, study: Study, by: Any, request: Any = None, protocol: str = "http") -> int:
    """Delete a study with its series, instances and files. Returns the instance count."""
    if by is not None and not delete_allowed(study=study, user=by):
        raise DeleteForbidden()
    hashes = set(Instance.objects.filter(series__study=study).values_list("sha256", flat=True))
    with transaction.atomic():
        _audit(
            request=request,
            user=by,
            study=study,
            protocol=protocol,
            detail=f"study {study.study_instance_uid}, {len(hashes)} file(s)",
        )
        count, _ = Instance.objects.filter(series__study=study).delete()
        patient_id = study.patient_record_id
        study.delete()
        _patient_release(patient_id)
        transaction.on_commit(lambda: _blobs_release(hashes))
    logger.info("study deleted study=%s instances=%s", study.study_instance_uid, count)
    return count


def instance_delete(
    *, instance: Instance, by: Any, request: Any = None, protocol: str = "http"
) -> None:
    """Delete one instance and its file; its series and study go when left empty."""
    series = instance.series
    study = series.study
    if by is not None and not delete_allowed(study=study, user=by):
        raise DeleteForbidden()
    sha256 = instance.sha256
    with transaction.atomic():
        _audit(
            request=request,
            user=by,
            study=study,
            instance=instance,
            protocol=protocol,
            detail=f"instance {instance.sop_instance_uid}",
        )
        instance.delete()
        if not Instance.objects.filter(series=series).exists():
            series.delete()
        if not Series.objects.filter(study=study).exists():
            patient_id = study.patient_record_id
            study.delete()
            _patient_release(patient_id)
        else:
            from dicom.ingest import study_refresh_modalities

            study_refresh_modalities(study)
        transaction.on_commit(lambda: _blobs_release({sha256}))
    logger.info("instance deleted sop=%s", instance.sop_instance_uid)


def _audit(
    *,
    request: Any,
    user: Any,
    study: Study,
    protocol: str,
    detail: str,
    instance: Instance | None = None,
) -> None:
    from developers.audit import audit_record

    audit_record(
        request=request,
        user=user,
        action="delete",
        study=study,
        instance=instance,
        protocol=protocol,
        detail=detail,
    )


def _patient_release(patient_pk: int) -> None:
    if not Study.objects.filter(patient_record_id=patient_pk).exists():
        Patient.objects.filter(pk=patient_pk).delete()


def _blobs_release(hashes: set[str]) -> None:
    still_used = set(Instance.objects.filter(sha256__in=hashes).values_list("sha256", flat=True))
    for sha256 in hashes - still_used:
        blob_delete_tree(sha256)
