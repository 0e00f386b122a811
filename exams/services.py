"""Exams of seed 002: validate and register images, read them back, upload DICOM.

Validation messages follow seed 002 (class-validator style sentences such as
"examenID must be a valid UUID"); every failure is raised as a domain error, rendered by
the one exception handler.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from dicom.errors import LightboxError, SeedError, SeedValidationError
from dicom.ingest import UID_RE, IngestResult, instance_ingest
from dicom.models import Instance, Study
from exams.models import ExamImage

logger = logging.getLogger(__name__)

REQUIRED_FIELDS = (
    "examenID",
    "studyInstanceUID",
    "seriesInstanceUID",
    "sopInstanceUID",
    "dateAcquisition",
    "modalite",
    "description",
)
OPTIONAL_FIELDS = ("url",)
UID_FIELDS = ("studyInstanceUID", "seriesInstanceUID", "sopInstanceUID")
MAX_LENGTHS = {"modalite": 16, "description": 1024, "url": 2048}

MSG_REQUIRED = "{field} is required"
MSG_STRING = "{field} must be a string"
MSG_UUID = "{field} must be a valid UUID"
MSG_UID = "{field} must be a valid DICOM UID (digits and dots, at most 64 characters)"
MSG_DATE = "{field} must be a valid ISO 8601 date string"
MSG_TOO_LONG = "{field} must be shorter than or equal to {limit} characters"
MSG_UNKNOWN = "property {field} should not exist"
MSG_BODY = "the request body must be a JSON object"
MSG_DUPLICATE = "An image with sopInstanceUID {uid} is already registered."
MSG_EXAM_NOT_FOUND = "No images found for exam {exam_id}."
MSG_IMAGE_NOT_FOUND = "Image {image_id} not found."
MSG_FILE_REQUIRED = "file is required"


# --- validation ---------------------------------------------------------------------------


def exam_image_validate(data: Any) -> dict[str, Any]:
    """Seed 002's CreateImageMedicaleDto: the cleaned values, or every problem at once."""
    if not isinstance(data, dict):
        raise SeedValidationError([MSG_BODY])
    known = (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)
    details = [MSG_UNKNOWN.format(field=f) for f in data if f not in known]
    cleaned: dict[str, Any] = {}
    for field in REQUIRED_FIELDS:
        value = data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            details.append(MSG_REQUIRED.format(field=field))
        elif not isinstance(value, str):
            details.append(MSG_STRING.format(field=field))
        else:
            problem, cleaned[field] = _field_clean(field, value.strip())
            if problem:
                details.append(problem)
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        details.append(MSG_STRING.format(field="url"))
    elif url is not None and len(url) > MAX_LENGTHS["url"]:
        details.append(MSG_TOO_LONG.format(field="url", limit=MAX_LENGTHS["url"]))
    cleaned["url"] = url or ""
    if details:
        raise SeedValidationError(details)
    return cleaned


def _field_clean(field: str, value: str) -> tuple[str | None, Any]:
    if field == "examenID":
        parsed = uuid_parse(value)
        return (None, parsed) if parsed else (MSG_UUID.format(field=field), None)
    if field in UID_FIELDS:
        ok = len(value) <= 64 and UID_RE.match(value)
        return (None, value) if ok else (MSG_UID.format(field=field), None)
    if field == "dateAcquisition":
        parsed_date = iso_datetime_parse(value)
        return (None, parsed_date) if parsed_date else (MSG_DATE.format(field=field), None)
    limit = MAX_LENGTHS[field]
    if len(value) > limit:
        return MSG_TOO_LONG.format(field=field, limit=limit), None
    return None, value


def uuid_parse(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def iso_datetime_parse(value: str) -> datetime | None:
    """An ISO 8601 date or date-time (``1996-03-08`` or ``1996-03-08T00:00:00.000Z``)."""
    try:
        parsed = parse_datetime(value.replace("Z", "+00:00"))
        if parsed is None and len(value) == 10:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- services -----------------------------------------------------------------------------


def exam_image_create(*, user: Any, data: Any) -> ExamImage:
    """Register an image under an exam. 409 when this user registered the SOP already."""
    cleaned = exam_image_validate(data)
    sop_uid = cleaned["sopInstanceUID"]
    instance = Instance.objects.filter(
        sop_instance_uid=sop_uid, series__study__in=Study.objects.visible_to(user)
    ).first()
    try:
        with transaction.atomic():
            image = ExamImage.objects.create(
                exam_id=cleaned["examenID"],
                study_instance_uid=cleaned["studyInstanceUID"],
                series_instance_uid=cleaned["seriesInstanceUID"],
                sop_instance_uid=sop_uid,
                date_acquisition=cleaned["dateAcquisition"],
                modality=cleaned["modalite"],
                description=cleaned["description"],
                url=cleaned["url"],
                owner=user,
                instance=instance,
            )
    except IntegrityError:
        raise SeedError(
            MSG_DUPLICATE.format(uid=sop_uid), status=409, code="duplicate_exam_image"
        ) from None
    logger.info("exam image registered image=%s exam=%s sop=%s", image.pk, image.exam_id, sop_uid)
    return image


def exam_images_visible(*, user: Any) -> QuerySet[ExamImage]:
    """Images the user registered, those linked to a study they may see; all for staff."""
    if not getattr(user, "is_authenticated", False):
        return ExamImage.objects.none()
    if getattr(user, "is_staff", False):
        return ExamImage.objects.all()
    return ExamImage.objects.filter(
        Q(owner=user) | Q(instance__series__study__in=Study.objects.visible_to(user))
    ).distinct()


def exam_images_list(*, user: Any, exam_id: str) -> list[ExamImage]:
    parsed = uuid_parse(exam_id)
    if parsed is None:
        raise SeedValidationError([MSG_UUID.format(field="id")])
    images = list(exam_images_visible(user=user).filter(exam_id=parsed))
    if not images:
        raise SeedError(MSG_EXAM_NOT_FOUND.format(exam_id=parsed), status=404, code="not_found")
    return images


def exam_image_get(*, user: Any, image_id: str) -> ExamImage:
    parsed = uuid_parse(image_id)
    if parsed is None:
        raise SeedValidationError([MSG_UUID.format(field="imageId")])
    image = exam_images_visible(user=user).filter(pk=parsed).first()
    if image is None:
        raise SeedError(MSG_IMAGE_NOT_FOUND.format(image_id=parsed), status=404, code="not_found")
    return image


def dicom_upload(*, user: Any, upload: Any) -> IngestResult:
    """Seed 002's ``POST /dicom/upload``: the one ingest pipeline, errors in seed shape."""
    if upload is None:
        raise SeedValidationError([MSG_FILE_REQUIRED])
    stream: IO[bytes] = upload
    try:
        return instance_ingest(
            stream=stream,
            owner=user,
            source="dicom-upload",
            filename=getattr(upload, "name", "") or "upload.dcm",
        )
    except SeedError:
        raise
    except LightboxError as exc:
        raise SeedError(exc.message, status=exc.status, code=exc.code) from None


# --- serialisation ------------------------------------------------------------------------


def iso_utc(value: datetime) -> str:
    """``1996-03-08T00:00:00.000Z``, as seed 002 writes dates."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def exam_image_json(image: ExamImage) -> dict[str, Any]:
    """Seed 002's ImageMedicaleDto."""
    return {
        "imageID": str(image.image_id),
        "examenID": str(image.exam_id),
        "studyInstanceUID": image.study_instance_uid,
        "seriesInstanceUID": image.series_instance_uid,
        "sopInstanceUID": image.sop_instance_uid,
        "dateAcquisition": iso_utc(image.date_acquisition),
        "modalite": image.modality,
        "description": image.description,
        "url": image.url or None,
    }


MAIN_TAGS = (
    "Modality",
    "ImageComments",
    "InstanceNumber",
    "SOPClassUID",
    "Rows",
    "Columns",
    "NumberOfFrames",
)


def upload_json(result: IngestResult) -> dict[str, Any]:
    """Seed 002's upload answer (Orthanc-like: ID, UIDs, MainDicomTags)."""
    instance = result.instance
    series = instance.series
    tags: dict[str, Any] = {
        "Modality": series.modality,
        "ImageComments": instance.image_comments,
        "InstanceNumber": instance.instance_number,
        "SOPClassUID": instance.sop_class_uid,
        "Rows": instance.rows,
        "Columns": instance.columns,
        "NumberOfFrames": instance.number_of_frames,
    }
    return {
        "success": True,
        "data": {
            "ID": str(instance.pk),
            "StudyInstanceUID": series.study.study_instance_uid,
            "SeriesInstanceUID": series.series_instance_uid,
            "SOPInstanceUID": instance.sop_instance_uid,
            "MainDicomTags": {k: tags[k] for k in MAIN_TAGS},
            "Status": result.status,
        },
    }
