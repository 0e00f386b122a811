"""One error vocabulary for every entry point.

Domain errors carry a machine-readable ``code`` and an HTTP ``status``. The DRF exception
handler below renders them (and DRF's own errors) as JSON; seed-defined shapes (seed 003's
quota 429) are produced here too, never as ad-hoc dicts in views.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


class LightboxError(Exception):
    status = http.HTTP_400_BAD_REQUEST
    code = "bad_request"
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.extra = extra
        super().__init__(self.message)

    def payload(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code, **self.extra}


class InvalidDicomFile(LightboxError):
    code = "invalid_dicom"
    default_message = "The file is not a readable DICOM file."


class MissingRequiredTag(LightboxError):
    code = "missing_required_tag"
    default_message = "A required DICOM attribute is missing."


class FileTooLarge(LightboxError):
    status = http.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "file_too_large"
    default_message = "The file is larger than the configured limit."


class UnsafeArchive(LightboxError):
    code = "unsafe_archive"
    default_message = "The ZIP archive was refused."


class DuplicateInstanceConflict(LightboxError):
    status = http.HTTP_409_CONFLICT
    code = "duplicate_instance_conflict"
    default_message = (
        "An instance with this SOP Instance UID is already stored with different content; "
        "send overwrite=true to replace it."
    )


class StudyOwnershipConflict(LightboxError):
    status = http.HTTP_409_CONFLICT
    code = "study_conflict"
    default_message = "This StudyInstanceUID already exists in the archive under another owner."


class PixelDataUndecodable(LightboxError):
    status = http.HTTP_422_UNPROCESSABLE_ENTITY
    code = "pixel_data_undecodable"
    default_message = "The pixel data of this instance cannot be decoded."


class NoPixelData(LightboxError):
    status = http.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    code = "no_pixel_data"
    default_message = "This instance has no image to render."


class NotFound(LightboxError):
    status = http.HTTP_404_NOT_FOUND
    code = "not_found"
    default_message = "Not found."


class QuotaExceeded(LightboxError):
    """Seed 003's exact payload: ``error``, ``quota``, ``requests_used``."""

    status = http.HTTP_429_TOO_MANY_REQUESTS
    code = "quota_exceeded"

    def __init__(self, *, path: str, quota: int, requests_used: int, retry_after: int) -> None:
        self.path, self.quota, self.requests_used = path, quota, requests_used
        self.retry_after = retry_after
        super().__init__(f"Monthly API request for '{path}' limit exceeded.")

    def payload(self) -> dict[str, Any]:
        return {"error": self.message, "quota": self.quota, "requests_used": self.requests_used}


class SeedError(LightboxError):
    """Seed 002's error shape: ``statusCode``, ``message``, ``error`` (the reason phrase),
    plus our machine-readable ``code``. Wraps any status (404, 409, ingest errors...)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        self.status, self.code = status, code
        super().__init__(message)

    def payload(self) -> dict[str, Any]:
        from http import HTTPStatus

        reason = HTTPStatus(self.status).phrase
        return {
            "statusCode": self.status,
            "message": self.message,
            "error": reason,
            "code": self.code,
        }


class SeedValidationError(LightboxError):
    """Seed 002's validation failure: 400 with one sentence per problem in ``details``."""

    code = "validation_failed"

    def __init__(self, details: list[str]) -> None:
        self.details = details
        super().__init__("Validation failed")

    def payload(self) -> dict[str, Any]:
        return {
            "statusCode": 400,
            "message": "Validation failed",
            "error": "Bad Request",
            "details": self.details,
        }


def error_response(exc: LightboxError) -> Response:
    response = Response(exc.payload(), status=exc.status)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, LightboxError):
        return error_response(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and "error" not in data:
        data = {"error": str(data["detail"]), **data}
        code = getattr(data["detail"], "code", None)
        if code:
            data["code"] = code
    elif not isinstance(data, dict) or "error" not in data:
        data = {"error": "Invalid request.", "detail": data}
    response.data = data
    return response
