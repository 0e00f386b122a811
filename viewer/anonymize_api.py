"""Anonymisation endpoints (seeds 004 and 001): a study or uploaded files → a ZIP job, and
the anonymised copy of one stored instance. The work is :mod:`dicom.anonymize`'s."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from developers.audit import audit_record
from dicom import selectors
from dicom.anonymize import (
    AnonymizationOptions,
    instance_anonymize,
    pseudonym_secret,
    salt_new,
    study_anonymize_start,
    uploads_anonymize_start,
)
from dicom.errors import LightboxError

MSG_NO_FILES = "Send one or more DICOM files in the multipart field 'files'."
OPTIONS_HELP = (
    "Options (see docs/anonymization.md): `keep_dates` (default false) retains full dates "
    "(PS3.15 Retain Longitudinal Temporal Information Full Dates Option); "
    "`keep_uid_structure` (default true) maps each original UID to one new UID across the "
    "job so studies and references stay whole; `use_secure` (default false) derives "
    "pseudonyms with HMAC-SHA256 under the server key (stable across jobs, not reversible) "
    "instead of a random per-job key."
)


class OptionsSerializer(serializers.Serializer):
    keep_dates = serializers.BooleanField(required=False, default=False)
    keep_uid_structure = serializers.BooleanField(required=False, default=True)
    use_secure = serializers.BooleanField(required=False, default=False)


def options_parse(data: Any) -> AnonymizationOptions:
    serializer = OptionsSerializer(
        data={k: data[k] for k in OptionsSerializer().fields if k in data}
    )
    serializer.is_valid(raise_exception=True)
    return AnonymizationOptions(**serializer.validated_data)


def job_accepted(job: Any) -> Response:
    from jobs.services import job_json

    body = {**job_json(job), "status_url": f"/jobs/{job.pk}/"}
    return Response(body, status=202)


JOB_RESPONSE = inline_serializer(
    "AnonymizationJob",
    {
        "job_id": serializers.UUIDField(),
        "kind": serializers.CharField(),
        "status": serializers.CharField(),
        "total": serializers.IntegerField(),
        "processed": serializers.IntegerField(),
        "failed": serializers.IntegerField(),
        "percentage": serializers.FloatField(),
        "status_url": serializers.CharField(),
        "result_url": serializers.CharField(allow_null=True),
    },
)


class StudyAnonymizeView(APIView):
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        operation_id="viewer_study_anonymize",
        request=OptionsSerializer,
        responses={202: JOB_RESPONSE, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        description=(
            "Queue a job anonymising every instance of a study you may see (DICOM PS3.15 "
            "Annex E basic profile). Answers 202 with the job; poll `status_url` (or the "
            "`/ws/processing/` WebSocket) and download `result_url` (a ZIP of "
            "`{Study}/{Series}/{SOP}.dcm` plus `anonymization_report.json`) once completed. "
            + OPTIONS_HELP
        ),
    )
    def post(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        options = options_parse(request.data)
        job = study_anonymize_start(study=study, owner=request.user, options=options)
        audit_record(request=request, action="anonymize", study=study, detail=f"job {job.pk}")
        return job_accepted(job)


class BatchAnonymizeView(APIView):
    parser_classes = [MultiPartParser]
    throttle_scope = "uploads"

    @extend_schema(
        operation_id="viewer_anonymize_batch",
        request={
            "multipart/form-data": inline_serializer(
                "AnonymizeBatchRequest",
                {
                    "files": serializers.ListField(child=serializers.FileField()),
                    "keep_dates": serializers.BooleanField(required=False),
                    "keep_uid_structure": serializers.BooleanField(required=False),
                    "use_secure": serializers.BooleanField(required=False),
                },
            )
        },
        responses={202: JOB_RESPONSE, 400: OpenApiTypes.OBJECT},
        description=(
            "Queue a job anonymising uploaded DICOM files (multipart field `files`); the "
            "files are not stored in the archive. Answers 202 with the job; its result is a "
            "ZIP. Unreadable files fail one by one (listed in the job and the report). "
            + OPTIONS_HELP
        ),
    )
    def post(self, request: Request) -> Response:
        uploads = request.FILES.getlist("files") or request.FILES.getlist("file")
        if not uploads:
            raise LightboxError(MSG_NO_FILES, code="no_files")
        options = options_parse(request.data)
        job = uploads_anonymize_start(uploads=uploads, owner=request.user, options=options)
        return job_accepted(job)


class PreprocessedDicomView(APIView):
    @extend_schema(
        operation_id="upload_preprocessed_dicom",
        parameters=[
            OpenApiParameter("keep_dates", bool, description="Retain full dates"),
            OpenApiParameter("use_secure", bool, description="Keyed (stable) pseudonyms"),
        ],
        responses={(200, "application/dicom"): OpenApiTypes.BINARY, 404: OpenApiTypes.OBJECT},
        description=(
            "The anonymised copy of one stored upload (an image id), as a DICOM file (seed "
            "001). Made on the fly with the PS3.15 basic profile; the header "
            "`X-Burned-In-Annotation` (`yes`/`unknown`) warns when the pixels may carry "
            "burned-in text. " + OPTIONS_HELP
        ),
    )
    def get(self, request: Request, upload_id: int) -> HttpResponse:
        instance = selectors.instance_get(user=request.user, pk=upload_id)
        options = options_parse(request.query_params)
        secret = pseudonym_secret(options=options, salt=salt_new())
        anonymized = instance_anonymize(instance=instance, options=options, secret=secret)
        audit_record(request=request, action="anonymize", instance=instance)
        response = HttpResponse(anonymized.data, content_type="application/dicom")
        response["Content-Disposition"] = (
            f'attachment; filename="{anonymized.sop_instance_uid}.dcm"'
        )
        if anonymized.burned_in_annotation:
            response["X-Burned-In-Annotation"] = anonymized.burned_in_annotation
        return response
