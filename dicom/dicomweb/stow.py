"""STOW-RS (PS3.18 §10.5): store instances sent as ``multipart/related``.

The body is read as a stream: each part goes straight into staging (hashed on the way)
and then through the one ingest pipeline, :func:`dicom.ingest.staged_ingest`. The answer
is the Store Instances Response Module (PS3.18 Table 10.5.3-1) with Failure Reasons from
PS3.4 Annex B.2.3 / PS3.7 Annex C.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import DatabaseError
from rest_framework import status as http

from dicom.dicomweb import json as dj
from dicom.dicomweb.multipart import MultipartReader, media_type_parse
from dicom.errors import (
    DuplicateInstanceConflict,
    FileTooLarge,
    InvalidDicomFile,
    LightboxError,
    MissingRequiredTag,
    StudyOwnershipConflict,
)
from dicom.ingest import IngestResult, staged_ingest
from dicom.storage import StagedFile, staging_write

logger = logging.getLogger(__name__)

DICOM = "application/dicom"
# Failure Reason (0008,1197) values.
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900  # here: the instance's study is not the one addressed
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NOT_AUTHORIZED = 0x0124

MSG_MEDIA_TYPE = (
    'STOW-RS accepts multipart/related; type="application/dicom" only '
    "(metadata plus bulk data is not supported)."
)
MSG_EMPTY = "The multipart body holds no part."


class UnsupportedMediaType(LightboxError):
    status = http.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"
    default_message = MSG_MEDIA_TYPE


@dataclass
class StowOutcome:
    stored: list[IngestResult] = field(default_factory=list)
    failed: list[tuple[str, str, int]] = field(default_factory=list)  # class, instance, reason

    @property
    def http_status(self) -> int:
        if not self.failed:
            return http.HTTP_200_OK
        return http.HTTP_202_ACCEPTED if self.stored else http.HTTP_409_CONFLICT


def failure_reason(exc: LightboxError) -> int:
    if isinstance(exc, FileTooLarge):
        return OUT_OF_RESOURCES
    if exc.extra.get("code", exc.code) == "study_uid_mismatch":
        return DATASET_MISMATCH
    if isinstance(exc, DuplicateInstanceConflict):
        return DUPLICATE_SOP_INSTANCE
    if isinstance(exc, StudyOwnershipConflict):
        return NOT_AUTHORIZED
    if isinstance(exc, InvalidDicomFile | MissingRequiredTag):
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE


def stow_store(
    *, stream: IO[bytes], content_type: str, owner: Any, study_uid: str | None
) -> StowOutcome:
    """Store every part of a STOW-RS body; one part's failure never stops the others."""
    media = media_type_parse(content_type)
    part_type = media.params.get("type", DICOM).lower()
    if media.mime != "multipart/related" or part_type != DICOM:
        raise UnsupportedMediaType()
    outcome = StowOutcome()
    seen = 0
    for headers, body in MultipartReader(stream, media.params.get("boundary", "")).parts():
        seen += 1
        part_mime = media_type_parse(headers.get("content-type", DICOM)).mime
        if part_mime != DICOM:
            outcome.failed.append(("", "", CANNOT_UNDERSTAND))
            continue
        _part_store(body, owner=owner, study_uid=study_uid, outcome=outcome)
    if not seen:
        raise LightboxError(MSG_EMPTY, code="empty_multipart")
    return outcome


def _part_store(
    body: IO[bytes], *, owner: Any, study_uid: str | None, outcome: StowOutcome
) -> None:
    try:
        staged = staging_write(body, filename="stow")
    except FileTooLarge:
        outcome.failed.append(("", "", OUT_OF_RESOURCES))
        return
    # A second name for the staged bytes, to read the UIDs of a refused part afterwards
    # (staged_ingest always consumes the staged file).
    keep = staged.path.with_suffix(".keep")
    os.link(staged.path, keep)
    try:
        outcome.stored.append(
            staged_ingest(staged=staged, owner=owner, source="stow", expected_study_uid=study_uid)
        )
    except LightboxError as exc:
        sop_class, sop_instance = _uids_of(keep)
        logger.info("stow part refused code=%s sop=%s", exc.code, sop_instance)
        outcome.failed.append((sop_class, sop_instance, failure_reason(exc)))
    except DatabaseError:
        logger.exception("stow part failed on the database")
        sop_class, sop_instance = _uids_of(keep)
        outcome.failed.append((sop_class, sop_instance, OUT_OF_RESOURCES))
    finally:
        keep.unlink(missing_ok=True)


def _uids_of(path: Path) -> tuple[str, str]:
    import pydicom

    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            force=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID"],
        )
        return str(ds.get("SOPClassUID", "") or ""), str(ds.get("SOPInstanceUID", "") or "")
    except Exception:  # noqa: BLE001 - best effort for the failure report only
        return "", ""


def stow_response(
    outcome: StowOutcome, *, studies_url: str, study_uid: str | None
) -> dict[str, Any]:
    """The Store Instances Response Module as DICOM JSON."""
    data: dict[str, Any] = {}
    studies = {r.instance.series.study.study_instance_uid for r in outcome.stored}
    target = study_uid or (next(iter(studies)) if len(studies) == 1 else None)
    if target:
        data["00081190"] = dj.element("UR", f"{studies_url}/{target}")
    if outcome.failed:
        data["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": dj.element("UI", cls),
                    "00081155": dj.element("UI", uid),
                    "00081197": dj.element("US", reason),
                }
                for cls, uid, reason in outcome.failed
            ],
        }
    if outcome.stored:
        data["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": dj.element("UI", r.instance.sop_class_uid),
                    "00081155": dj.element("UI", r.instance.sop_instance_uid),
                    "00081190": dj.element(
                        "UR", dj.instance_url(r.instance, studies_url=studies_url)
                    ),
                }
                for r in outcome.stored
            ],
        }
    return dict(sorted(data.items()))


__all__ = ["StagedFile", "StowOutcome", "stow_response", "stow_store"]
