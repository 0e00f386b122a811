"""Seed 001's upload service at the site root, jobs, and seed 004's export.

Thin views: parse, call one service or selector, serialise. Batches and jobs of other
users answer 404, like their images.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Count, Max, Min
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dicom import selectors
from dicom.conversion import ConversionInfo, image_convert, image_kind
from dicom.errors import LightboxError, NotFound
from dicom.ingest import staged_ingest
from dicom.models import Instance
from dicom.storage import staging_write
from jobs import batches, export
from jobs.models import Job
from jobs.services import item_json, job_get, job_json, jobs_visible

MSG_NO_FILENAME = "Send the original file name in the X-File-Name header."
MSG_NOT_FINISHED = "The job has not finished yet; poll its status."
MSG_NO_RESULT = "This job has no result file."
PAGE_MAX = 1000


class JobNotFinished(LightboxError):
    status = 409
    code = "job_not_finished"
    default_message = MSG_NOT_FINISHED


class RawParser(BaseParser):
    """Declares that a view reads its body itself, as a stream (never parsed here)."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        return {}


ERROR = OpenApiTypes.OBJECT
PATIENT_HEADERS = [
    OpenApiParameter(
        "X-Patient-Name",
        str,
        OpenApiParameter.HEADER,
        description="Patient name written into converted pictures (optional)",
    ),
    OpenApiParameter(
        "X-Patient-ID",
        str,
        OpenApiParameter.HEADER,
        description="Patient ID written into converted pictures (optional)",
    ),
]
PAGING = [
    OpenApiParameter("limit", int, description=f"At most {PAGE_MAX} (default 100)"),
    OpenApiParameter("offset", int, description="Records to skip (default 0)"),
]


def _patient(request: Request) -> dict[str, str]:
    return {
        "patient_name": request.headers.get("X-Patient-Name", "")[:64],
        "patient_id": request.headers.get("X-Patient-ID", "")[:64],
    }


def _paging(request: Request) -> tuple[int, int]:
    try:
        limit = int(request.query_params.get("limit", 100))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        raise LightboxError("limit and offset must be integers.", code="bad_paging") from None
    if not 1 <= limit <= PAGE_MAX or offset < 0:
        raise LightboxError(f"limit must be 1..{PAGE_MAX}, offset >= 0.", code="bad_paging")
    return limit, offset


def _user_scope(request: Request, user_id: int) -> None:
    """``/user/{id}/...``: your own id, or any existing user for staff; else 404."""
    from django.contrib.auth import get_user_model

    if request.user.pk == user_id:
        return
    if request.user.is_staff and get_user_model().objects.filter(pk=user_id).exists():
        return
    raise NotFound("User not found.")


# --- serialisation ------------------------------------------------------------------------


def batch_json(job: Job) -> dict[str, Any]:
    return {
        "batch_id": str(job.pk),
        "user_id": job.owner_id,
        "status": job.status,
        "total_files": job.total,
        "processed_files": job.processed,
        "failed_files": job.failed,
        "progress_percentage": job.percentage,
        "message": job.message,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def batch_file_json(item: Any) -> dict[str, Any]:
    result, error = item.result or {}, item.error or {}
    return {
        "index": item.index,
        "filename": item.key,
        "status": item.status,
        "upload_id": result.get("upload_id"),
        "ingest_status": result.get("status"),
        "study_id": result.get("study_id"),
        "sop_instance_uid": result.get("sop_instance_uid"),
        "converted": result.get("converted"),
        "error": error.get("error"),
        "code": error.get("code"),
    }


def upload_json(instance: Instance) -> dict[str, Any]:
    series, study = instance.series, instance.series.study
    return {
        "upload_id": instance.pk,
        "filename": instance.original_filename,
        "user_id": instance.uploaded_by_id,
        "source": instance.source,
        "uploaded_at": instance.created_at.isoformat(),
        "file_size": instance.file_size,
        "sha256": instance.sha256,
        "study_id": study.pk,
        "series_id": series.pk,
        "study_instance_uid": study.study_instance_uid,
        "series_instance_uid": series.series_instance_uid,
        "sop_instance_uid": instance.sop_instance_uid,
        "sop_class_uid": instance.sop_class_uid,
        "modality": series.modality,
        "file_url": f"/viewer/api/images/{instance.pk}/file/",
        "preprocessed_url": f"/upload/{instance.pk}/preprocessed-dicom",
    }


def upload_details_json(instance: Instance) -> dict[str, Any]:
    series, study = instance.series, instance.series.study
    return {
        **upload_json(instance),
        "study_description": study.study_description,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "series_description": series.series_description,
        "series_number": series.series_number,
        "instance_number": instance.instance_number,
        "rows": instance.rows,
        "columns": instance.columns,
        "number_of_frames": instance.number_of_frames,
        "photometric_interpretation": instance.photometric_interpretation,
        "transfer_syntax_uid": instance.transfer_syntax_uid,
        "image_comments": instance.image_comments,
    }


# --- seed 001 ---------------------------------------------------------------------------------


class UploadView(APIView):
    parser_classes = [RawParser]
    throttle_scope = "uploads"

    @extend_schema(
        operation_id="upload_single",
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[
            OpenApiParameter(
                "X-File-Name",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Original file name",
            ),
            *PATIENT_HEADERS,
        ],
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            400: ERROR,
            409: ERROR,
            413: ERROR,
        },
        examples=[
            OpenApiExample(
                "stored",
                response_only=True,
                status_codes=["201"],
                value={
                    "upload_id": 42,
                    "message": "Picture converted to DICOM and stored.",
                    "status": "stored",
                    "converted": True,
                    "study_id": 7,
                    "series_id": 9,
                    "sop_instance_uid": "2.25.1234",
                },
            )
        ],
        description=(
            "Seed 001's single upload: the raw body is one file. A JPEG or PNG picture is "
            "converted to DICOM Secondary Capture (new UIDs, ConversionType WSD, patient "
            "name/ID from the optional headers, else empty); a DICOM file is stored as it "
            "is. `upload_id` is the image id used everywhere else. Seed 001's mocked "
            "`diagnosis`/`confidence` are deliberately not returned: Lightbox makes no "
            "diagnosis. `X-User-ID` is ignored: the upload belongs to the caller."
        ),
    )
    def post(self, request: Request) -> Response:
        filename = request.headers.get("X-File-Name", "").strip()
        if not filename:
            raise LightboxError(MSG_NO_FILENAME, code="missing_filename")
        stream = request.stream
        staged = staging_write(stream if stream is not None else _Empty(), filename=filename[:255])
        converted = image_kind(staged.path) is not None
        if converted:
            info = ConversionInfo(**_patient(request), study_description="Upload")
            staged = image_convert(staged=staged, info=info)
        result = staged_ingest(staged=staged, owner=request.user, source="upload")
        instance = result.instance
        message = "Picture converted to DICOM and stored." if converted else "DICOM file stored."
        if not result.created:
            message = "This file was already stored; nothing new was saved."
        body = {
            "upload_id": instance.pk,
            "message": message,
            "status": result.status,
            "converted": converted,
            "study_id": instance.series.study_id,
            "series_id": instance.series_id,
            "sop_instance_uid": instance.sop_instance_uid,
        }
        return Response(body, status=201 if result.created else 200)


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""


class BatchUploadView(APIView):
    parser_classes = [MultiPartParser, RawParser]
    throttle_scope = "uploads"

    @extend_schema(
        operation_id="upload_batch",
        request={
            "application/json": inline_serializer(
                "BatchUploadJson",
                {
                    "files": serializers.ListField(
                        child=inline_serializer(
                            "BatchFile",
                            {
                                "filename": serializers.CharField(),
                                "content": serializers.CharField(help_text="base64 of the file"),
                                "patient_name": serializers.CharField(required=False),
                                "patient_id": serializers.CharField(required=False),
                            },
                        )
                    ),
                },
            ),
            "multipart/form-data": inline_serializer(
                "BatchUploadMultipart",
                {
                    "files": serializers.ListField(child=serializers.FileField()),
                },
            ),
        },
        parameters=PATIENT_HEADERS,
        responses={202: OpenApiTypes.OBJECT, 400: ERROR, 413: ERROR},
        examples=[
            OpenApiExample(
                "queued",
                response_only=True,
                status_codes=["202"],
                value={
                    "batch_id": "6f1c...",
                    "message": "Batch queued: 3 files.",
                    "total_files": 3,
                    "status": "queued",
                    "status_url": "/upload/batch/6f1c.../status",
                },
            )
        ],
        description=(
            'Seed 001\'s batch upload. JSON `{"files": [{"filename", "content"}]}` '
            "(base64, parsed and decoded one file at a time) or multipart files in `files`. "
            "ZIP archives are expanded into one item per member. Answers at once with 202; "
            "a worker ingests the files (JPEG/PNG converted to DICOM Secondary Capture, one "
            "study per batch). Follow it with `GET /upload/batch/{id}/status`, "
            "`/files`, or the `/ws/processing/` WebSocket. Files that can't even be decoded "
            "are listed as failed at once."
        ),
    )
    def post(self, request: Request) -> Response:
        if request.content_type.startswith("multipart/"):
            uploads = request.FILES.getlist("files") or request.FILES.getlist("file")
            job = batches.batch_create_from_uploads(
                uploads=uploads, owner=request.user, patient=_patient(request)
            )
        else:
            stream = request.stream
            if stream is None:
                raise LightboxError(batches.MSG_NO_FILES, code="no_files")
            job = batches.batch_create_from_json(
                stream=stream, owner=request.user, patient=_patient(request)
            )
        body = {
            "batch_id": str(job.pk),
            "message": f"Batch queued: {job.total} files.",
            "total_files": job.total,
            "status": job.status,
            "status_url": f"/upload/batch/{job.pk}/status",
        }
        return Response(body, status=202)


class BatchStatusView(APIView):
    @extend_schema(
        operation_id="upload_batch_status",
        responses={200: OpenApiTypes.OBJECT, 404: ERROR},
        examples=[
            OpenApiExample(
                "processing",
                response_only=True,
                value={
                    "batch_id": "6f1c...",
                    "status": "processing",
                    "total_files": 4,
                    "processed_files": 2,
                    "failed_files": 1,
                    "progress_percentage": 50.0,
                },
            )
        ],
        description="Seed 001's batch status: queued → processing → completed | failed "
        "(failed when every file failed). `processed_files` counts failed files too.",
    )
    def get(self, request: Request, batch_id: str) -> Response:
        job = job_get(user=request.user, pk=batch_id, kind=batches.KIND)
        return Response(batch_json(job))


class BatchFilesView(APIView):
    @extend_schema(
        operation_id="upload_batch_files",
        responses={200: OpenApiTypes.OBJECT, 404: ERROR},
        description="Every file of a batch in order, with its `status` (pending, done, "
        "failed), `upload_id` once stored, and `error`/`code` when it failed.",
    )
    def get(self, request: Request, batch_id: str) -> Response:
        job = job_get(user=request.user, pk=batch_id, kind=batches.KIND)
        files = [batch_file_json(i) for i in job.items.order_by("index")]
        return Response({"batch_id": str(job.pk), "files": files, "count": len(files)})


class UserBatchesView(APIView):
    @extend_schema(
        operation_id="user_batches",
        parameters=PAGING,
        responses={200: OpenApiTypes.OBJECT, 404: ERROR},
        description="A user's batches, newest first. Your own only (staff: anyone's); "
        "another user's id answers 404.",
    )
    def get(self, request: Request, user_id: int) -> Response:
        _user_scope(request, user_id)
        limit, offset = _paging(request)
        qs = jobs_visible(user=request.user).filter(owner_id=user_id, kind=batches.KIND)
        batches_page = [batch_json(j) for j in qs.order_by("-created_at")[offset : offset + limit]]
        return Response({"user_id": user_id, "batches": batches_page, "count": qs.count()})


class UserUploadsView(APIView):
    @extend_schema(
        operation_id="user_uploads",
        parameters=PAGING,
        responses={200: OpenApiTypes.OBJECT, 404: ERROR},
        description="Images a user uploaded (any route: upload, batch, DICOMweb...), newest "
        "first, limited to what the caller may see. Your own id only (staff: anyone's).",
    )
    def get(self, request: Request, user_id: int) -> Response:
        _user_scope(request, user_id)
        limit, offset = _paging(request)
        qs = selectors.instances_visible(user=request.user).filter(uploaded_by_id=user_id)
        page = qs.select_related("series__study").order_by("-created_at", "-id")
        uploads = [upload_json(i) for i in page[offset : offset + limit]]
        return Response({"user_id": user_id, "uploads": uploads, "count": qs.count()})


class UploadDetailsView(APIView):
    @extend_schema(
        operation_id="upload_details",
        responses={200: OpenApiTypes.OBJECT, 404: ERROR},
        description="One upload record (an image the caller may see).",
    )
    def get(self, request: Request, upload_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=upload_id)
        return Response(upload_details_json(instance))


class StatsView(APIView):
    @extend_schema(
        operation_id="upload_stats",
        responses={
            200: inline_serializer(
                "UploadStats",
                {
                    "total_uploads": serializers.IntegerField(),
                    "unique_users": serializers.IntegerField(),
                    "latest_upload": serializers.DateTimeField(allow_null=True),
                    "earliest_upload": serializers.DateTimeField(allow_null=True),
                },
            )
        },
        description="Seed 001's statistics over the images the caller may see (staff: all).",
    )
    def get(self, request: Request) -> Response:
        stats = selectors.instances_visible(user=request.user).aggregate(
            total_uploads=Count("pk"),
            unique_users=Count("uploaded_by", distinct=True),
            latest_upload=Max("created_at"),
            earliest_upload=Min("created_at"),
        )
        for key in ("latest_upload", "earliest_upload"):
            stats[key] = stats[key].isoformat() if stats[key] else None
        return Response(stats)


# --- jobs ---------------------------------------------------------------------------------------


class JobListView(APIView):
    @extend_schema(
        operation_id="jobs_list",
        parameters=[
            OpenApiParameter("kind", str, description="batch_upload, export, anonymize"),
            *PAGING,
        ],
        responses={200: OpenApiTypes.OBJECT},
        description="The caller's jobs, newest first (staff: everyone's).",
    )
    def get(self, request: Request) -> Response:
        limit, offset = _paging(request)
        qs = jobs_visible(user=request.user)
        if request.query_params.get("kind"):
            qs = qs.filter(kind=request.query_params["kind"])
        jobs = [job_json(j) for j in qs.order_by("-created_at")[offset : offset + limit]]
        return Response({"jobs": jobs, "count": qs.count()})


class JobDetailView(APIView):
    @extend_schema(
        operation_id="job_detail",
        parameters=[OpenApiParameter("items", bool, description="Include every item")],
        responses={200: OpenApiTypes.OBJECT, 404: ERROR},
        examples=[
            OpenApiExample(
                "completed",
                response_only=True,
                value={
                    "job_id": "0b9e...",
                    "kind": "export",
                    "status": "completed",
                    "total": 40,
                    "processed": 40,
                    "failed": 0,
                    "percentage": 100.0,
                    "message": "",
                    "has_result": True,
                    "result_url": "/jobs/0b9e.../result/",
                },
            )
        ],
        description="A job's status, counts and, with `?items=1`, its items with their "
        "results and errors.",
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = job_get(user=request.user, pk=job_id)
        body = job_json(job)
        if request.query_params.get("items") in {"1", "true", "yes"}:
            body["items"] = [item_json(i) for i in job.items.order_by("index")]
        return Response(body)


class JobResultView(APIView):
    @extend_schema(
        operation_id="job_result",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: ERROR, 409: ERROR},
        description="Download a finished job's result file (a ZIP). 409 while it runs.",
    )
    def get(self, request: Request, job_id: str) -> FileResponse:
        job = job_get(user=request.user, pk=job_id)
        if not job.is_finished:
            raise JobNotFinished()
        if not job.result_name or not default_storage.exists(job.result_name):
            raise NotFound(MSG_NO_RESULT, code="no_result")
        return FileResponse(
            default_storage.open(job.result_name, "rb"),
            as_attachment=True,
            filename=f"{job.kind}-{job.pk}.zip",
            content_type="application/zip",
        )


# --- seed 004 export ----------------------------------------------------------------------------


class ExportImagesView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="viewer_export_images",
        request=inline_serializer(
            "ExportRequest",
            {
                "image_ids": serializers.ListField(child=serializers.IntegerField()),
                "format": serializers.ChoiceField(choices=export.FORMATS, default="png"),
                "include_metadata": serializers.BooleanField(default=False),
                "async": serializers.BooleanField(
                    required=False, help_text="Force a job even for a few images"
                ),
            },
        ),
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            202: OpenApiTypes.OBJECT,
            400: ERROR,
            404: ERROR,
        },
        description=(
            "Seed 004's export: a ZIP of `images/image-<id>.<ext>` (one file per frame for "
            "multi-frame images: `-f0001`...), rendered by the archive's one renderer (PNG/"
            "JPEG with the file's window; NPY = modality-LUT values). With "
            "`include_metadata`: `metadata/image-<id>.json` per image (ids, UIDs, geometry, "
            "windowing; no patient identity) and `index.csv`. Images that can't be rendered "
            "are listed in `errors.json`. Up to LIGHTBOX_EXPORT_SYNC_MAX_IMAGES images "
            "(20) the ZIP streams back (200); above, or with `async`, the answer is 202 with "
            "a job: poll `GET /jobs/{id}/`, download `GET /jobs/{id}/result/`. Any id not "
            "visible to the caller fails the request with 404."
        ),
    )
    def post(self, request: Request) -> Any:
        data = request.data if isinstance(request.data, dict) else {}
        instances, fmt = export.export_request_check(
            user=request.user, image_ids=data.get("image_ids"), fmt=data.get("format")
        )
        include_metadata = bool(data.get("include_metadata", False))
        if export.export_is_small(instances) and not data.get("async"):
            response = StreamingHttpResponse(
                export.export_stream(
                    instances=instances, fmt=fmt, include_metadata=include_metadata
                ),
                content_type="application/zip",
            )
            response["Content-Disposition"] = 'attachment; filename="export.zip"'
            return response
        job = export.export_job_create(
            owner=request.user, instances=instances, fmt=fmt, include_metadata=include_metadata
        )
        return Response(
            {
                **job_json(job),
                "status_url": f"/jobs/{job.pk}/",
                "result_url": f"/jobs/{job.pk}/result/",
            },
            status=202,
        )
