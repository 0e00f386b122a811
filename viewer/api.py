"""The clinical JSON API under ``/viewer/api/`` (seed 004 routes, plus seed 000's header).

Thin views: parse, call one service or selector, serialise. Visibility is the selectors'
job; every study, series or image of another user answers 404.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from developers.audit import audit_record
from dicom import selectors
from dicom.archives import archive_extract, is_zip
from dicom.deletion import instance_delete, study_delete
from dicom.errors import LightboxError
from dicom.ingest import IngestOutcome, outcomes_ingest
from dicom.models import Instance, Series, Study
from dicom.negotiation import JsonErrorsNegotiation
from dicom.previews import instance_render, parse_size, parse_window, render_format
from dicom.storage import StagedFile, blob_reader, file_too_large
from dicom.upload_staging import BODY_PARSERS, StagedUpload, StagingMultiPartParser

MSG_NO_FILES = (
    "Send one or more files in the multipart field 'files', or one file as the body "
    "(Content-Type: application/dicom)."
)


# --- serialisation ------------------------------------------------------------------------


def study_json(study: Study) -> dict[str, Any]:
    return {
        "id": study.pk,
        "study_instance_uid": study.study_instance_uid,
        "patient_name": study.patient_name,
        "patient_id": study.patient_id,
        "patient_birth_date": _iso(study.patient_birth_date),
        "patient_sex": study.patient_sex,
        "study_date": _iso(study.study_date),
        "study_time": study.study_time,
        "accession_number": study.accession_number,
        "study_description": study.study_description,
        "modality": study.modalities_in_study.replace("\\", "/"),
        "modalities": study.modality_list(),
        "series_count": getattr(study, "series_count", None),
        "total_images": getattr(study, "instance_count", None),
        "created_at": study.created_at.isoformat(),
    }


def series_json(series: Series) -> dict[str, Any]:
    return {
        "id": series.pk,
        "series_instance_uid": series.series_instance_uid,
        "series_number": series.series_number,
        "series_description": series.series_description,
        "modality": series.modality,
        "body_part_examined": series.body_part_examined,
        "image_count": getattr(series, "instance_count", None),
    }


def image_json(instance: Instance) -> dict[str, Any]:
    return {
        "id": instance.pk,
        "sop_instance_uid": instance.sop_instance_uid,
        "sop_class_uid": instance.sop_class_uid,
        "instance_number": instance.instance_number,
        "series_id": instance.series_id,
        "series_number": instance.series.series_number,
        "series_description": instance.series.series_description,
        "modality": instance.series.modality,
        "rows": instance.rows,
        "columns": instance.columns,
        "number_of_frames": instance.number_of_frames,
        "photometric_interpretation": instance.photometric_interpretation,
        "samples_per_pixel": instance.samples_per_pixel,
        "bits_stored": instance.bits_stored,
        "transfer_syntax_uid": instance.transfer_syntax_uid,
        "window_width": instance.window_width,
        "window_center": instance.window_center,
        "rescale_slope": instance.rescale_slope,
        "rescale_intercept": instance.rescale_intercept,
        "pixel_spacing": _spacing(instance),
        "has_pixel_data": instance.has_pixel_data,
    }


def _spacing(instance: Instance) -> list[float] | None:
    if instance.pixel_spacing_row is None:
        return None
    return [instance.pixel_spacing_row, instance.pixel_spacing_column]


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def outcome_json(outcome: IngestOutcome) -> dict[str, Any]:
    if outcome.error is not None:
        return {"filename": outcome.filename, **outcome.error.payload()}
    result = outcome.result
    assert result is not None
    instance = result.instance
    return {
        "filename": outcome.filename,
        "status": result.status,
        "study_id": instance.series.study_id,
        "series_id": instance.series_id,
        "image_id": instance.pk,
        "sop_instance_uid": instance.sop_instance_uid,
    }


# --- upload ------------------------------------------------------------------------------


class UploadView(APIView):
    """Upload one or many DICOM files or ZIP archives (seed 004)."""

    parser_classes = [StagingMultiPartParser, *BODY_PARSERS]  # files go straight to staging
    throttle_scope = "uploads"

    @extend_schema(
        operation_id="viewer_upload",
        request={
            "multipart/form-data": inline_serializer(
                "UploadRequest",
                {
                    "files": serializers.ListField(child=serializers.FileField()),
                    "overwrite": serializers.BooleanField(required=False),
                },
            ),
            "application/dicom": OpenApiTypes.BINARY,
            "application/zip": OpenApiTypes.BINARY,
            "application/octet-stream": OpenApiTypes.BINARY,
        },
        parameters=[
            OpenApiParameter(
                "overwrite",
                bool,
                description="Replace an instance stored with other bytes (else 409)",
            ),
            OpenApiParameter(
                "X-File-Name",
                str,
                OpenApiParameter.HEADER,
                description="For a raw body: the file name shown in the response (optional)",
            ),
        ],
        responses={
            201: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            400: OpenApiTypes.OBJECT,
            409: OpenApiTypes.OBJECT,
            413: OpenApiTypes.OBJECT,
            415: OpenApiTypes.OBJECT,
        },
        description=(
            "Multipart field `files`: DICOM files (`.dcm`, `.dicom`, no extension) and/or "
            "`.zip` archives (expanded safely). Or one file as the raw body, with "
            "`Content-Type: application/dicom` (also `application/zip` or "
            "`application/octet-stream`; a ZIP is recognised by its bytes), streamed to "
            "staging as it arrives. Identical re-sends are successes that store "
            "nothing new (`status: duplicate`); the same SOP Instance UID with other bytes is "
            "a 409 unless `overwrite=true` (form field or query parameter). Answers 201 when "
            "something was stored, 200 when everything was a duplicate, and the first error's "
            "status when nothing was accepted. Per-file errors are listed in `errors`."
        ),
    )
    def post(self, request: Request) -> Response:
        uploads = request.FILES.getlist("files") or request.FILES.getlist("file")
        if not uploads:
            raise LightboxError(MSG_NO_FILES, code="no_files")
        flag = request.data.get("overwrite") or request.query_params.get("overwrite", "")
        overwrite = str(flag).lower() in {"1", "true", "yes"}
        outcomes = upload_ingest(uploads=uploads, owner=request.user, overwrite=overwrite)
        return upload_response(outcomes)


def upload_ingest(
    *, uploads: list[StagedUpload], owner: Any, overwrite: bool
) -> list[IngestOutcome]:
    """Ingest every uploaded file, expanding ZIPs. The parser has staged them, within the
    upload size limit (:class:`dicom.upload_staging.StagingUploadHandler`)."""
    outcomes: list[IngestOutcome] = []
    staged: list[StagedFile] = []
    for upload in uploads:
        name = upload.name or "upload"
        try:
            item = upload.take()
            if is_zip(item.path):
                try:
                    members = archive_extract(item.path)
                finally:
                    item.discard()
                for member in members:
                    member.filename = f"{name}/{member.filename}"
                staged.extend(members)
            elif item.size > settings.LIGHTBOX_MAX_FILE_BYTES:
                item.discard()
                raise file_too_large(settings.LIGHTBOX_MAX_FILE_BYTES)
            else:
                staged.append(item)
        except LightboxError as exc:
            outcomes.append(IngestOutcome(filename=name, error=exc))
    outcomes.extend(
        outcomes_ingest(staged_files=staged, owner=owner, source="upload", overwrite=overwrite)
    )
    return outcomes


def upload_response(outcomes: list[IngestOutcome]) -> Response:
    accepted = [o for o in outcomes if o.result is not None]
    errors = [outcome_json(o) for o in outcomes if o.error is not None]
    uploaded = [outcome_json(o) for o in accepted]
    study_ids = list(dict.fromkeys(o["study_id"] for o in uploaded))
    body = {
        "success": bool(accepted),
        "study_id": study_ids[0] if study_ids else None,
        "study_ids": study_ids,
        "uploaded_files": uploaded,
        "errors": errors,
        "stored": sum(1 for o in accepted if o.result and o.result.created),
        "duplicates": sum(1 for o in accepted if o.result and not o.result.created),
        "rejected": len(errors),
    }
    if not accepted:
        first = next(o.error for o in outcomes if o.error is not None)
        body["error"] = first.message
        body["code"] = first.code
        return Response(body, status=first.status)
    return Response(body, status=201 if body["stored"] else 200)


# --- browse -----------------------------------------------------------------------------

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 500


class StudyListView(APIView):
    @extend_schema(
        operation_id="viewer_studies_list",
        parameters=[
            OpenApiParameter("patient_name", str, description="Substring, or `*`/`?` wildcards"),
            OpenApiParameter("patient_id", str, description="Exact, or `*`/`?` wildcards"),
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE),
            OpenApiParameter("modality", str),
            OpenApiParameter("accession_number", str),
            OpenApiParameter("description", str, description="Substring of the description"),
            OpenApiParameter(
                "ordering",
                str,
                description="study_date, -study_date, "
                "patient_name, -patient_name, created_at, -created_at",
            ),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int, description=f"At most {PAGE_SIZE_MAX}"),
        ],
        responses={200: OpenApiTypes.OBJECT},
        description=(
            "Studies the caller may see, as a JSON array (seed 004 shape). Paging: "
            "`X-Total-Count`, `X-Page`, `X-Page-Size` response headers."
        ),
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        filters = selectors.StudyFilters(
            patient_name=params.get("patient_name", "").strip(),
            patient_id=params.get("patient_id", "").strip(),
            date_from=_date_param(params, "date_from"),
            date_to=_date_param(params, "date_to"),
            modality=params.get("modality", "").strip(),
            accession_number=params.get("accession_number", params.get("accession", "")).strip(),
            description=params.get("description", "").strip(),
            ordering=params.get("ordering", "-study_date"),
        )
        page, size = (
            _int_param(params, "page", 1, 1),
            _int_param(params, "page_size", PAGE_SIZE_DEFAULT, 1, PAGE_SIZE_MAX),
        )
        qs = selectors.study_list(user=request.user, filters=filters)
        total = qs.count()
        rows = [study_json(s) for s in qs[(page - 1) * size : page * size]]
        response = Response(rows)
        response["X-Total-Count"] = str(total)
        response["X-Page"] = str(page)
        response["X-Page-Size"] = str(size)
        return response


def _date_param(params: Any, name: str) -> date | None:
    value = params.get(name, "").strip().replace("-", "")
    if not value:
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except (ValueError, IndexError):
        raise LightboxError(f"{name} must be a date (YYYY-MM-DD).", code="bad_date") from None


def _int_param(params: Any, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LightboxError(f"{name} must be an integer.", code="bad_parameter") from None
    if value < low or (high is not None and value > high):
        raise LightboxError(f"{name} is out of range.", code="bad_parameter")
    return value


class StudyDetailView(APIView):
    @extend_schema(operation_id="viewer_study_detail", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        audit_record(request=request, action="view", study=study)
        series = [series_json(s) for s in selectors.study_series(study=study)]
        return Response(
            {
                **study_json(study),
                "series": series,
                "series_count": len(series),
                "total_images": sum(s["image_count"] or 0 for s in series),
            }
        )

    @extend_schema(
        operation_id="viewer_study_delete",
        responses={204: None},
        description="Delete the study with its series, instances and files "
        "(owner or staff; audited). 404 when not visible, 403 when only shared.",
    )
    def delete(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        study_delete(study=study, by=request.user, request=request)
        return Response(status=204)


class StudyImagesView(APIView):
    @extend_schema(
        operation_id="viewer_study_images",
        responses={200: OpenApiTypes.OBJECT},
        description="Every image of a study, ordered by series then instance number.",
    )
    def get(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        audit_record(request=request, action="view", study=study)
        images = [image_json(i) for i in selectors.study_images(study=study)]
        return Response(
            {
                "study": {
                    "id": study.pk,
                    "study_instance_uid": study.study_instance_uid,
                    "patient_name": study.patient_name,
                    "patient_id": study.patient_id,
                    "study_date": _iso(study.study_date),
                    "study_description": study.study_description,
                },
                "images": images,
            }
        )


class StudySeriesView(APIView):
    @extend_schema(operation_id="viewer_study_series", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        return Response([series_json(s) for s in selectors.study_series(study=study)])


class SeriesImagesView(APIView):
    @extend_schema(operation_id="viewer_series_images", responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request, series_id: int) -> Response:
        series = selectors.series_get(user=request.user, pk=series_id)
        images = Instance.objects.filter(series=series).select_related("series")
        return Response({"series": series_json(series), "images": [image_json(i) for i in images]})


class ImageLookupView(APIView):
    @extend_schema(
        operation_id="viewer_image_lookup",
        parameters=[OpenApiParameter("sop_instance_uid", str, required=True)],
        responses={200: OpenApiTypes.OBJECT},
        description="Find the image with a SOP Instance UID (an empty list when none is "
        "visible to the caller).",
    )
    def get(self, request: Request) -> Response:
        uid = request.query_params.get("sop_instance_uid", "").strip()
        if not uid:
            raise LightboxError(
                "Query parameter 'sop_instance_uid' is required.", code="uid_required"
            )
        images = (
            selectors.instances_visible(user=request.user)
            .filter(sop_instance_uid=uid)
            .select_related("series")
        )
        return Response([image_json(i) for i in images])


class ImageDetailView(APIView):
    @extend_schema(
        operation_id="viewer_image_detail",
        responses={200: OpenApiTypes.OBJECT},
        description="Image columns plus the whole header as DICOM JSON.",
    )
    def get(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        audit_record(request=request, action="view", instance=instance)
        return Response({**image_json(instance), "header": instance.header})

    @extend_schema(
        operation_id="viewer_image_delete",
        responses={204: None},
        description="Delete one image and its file; an emptied series or study "
        "goes too (owner or staff; audited).",
    )
    def delete(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        instance_delete(instance=instance, by=request.user, request=request)
        return Response(status=204)


RENDER_PARAMS = [
    OpenApiParameter("frame", int, description="0-based frame index (default 0)"),
    OpenApiParameter("window_center", float),
    OpenApiParameter("window_width", float),
    OpenApiParameter("size", str, description="Fit inside WxH (or one number for a square)"),
]


def _render_args(request: Request, instance: Instance, default_format: str) -> dict[str, Any]:
    params = request.query_params
    return {
        "instance": instance,
        "frame": _int_param(params, "frame", 0, 0),
        "window": parse_window(params.get("window_center"), params.get("window_width")),
        "size": parse_size(params.get("size")),
        "fmt": render_format(params.get("format"), default_format),
    }


class ImageDataView(APIView):
    @extend_schema(
        operation_id="viewer_image_data",
        parameters=RENDER_PARAMS,
        responses={200: OpenApiTypes.OBJECT},
        description="The windowed image as a PNG data URL plus display metadata.",
    )
    def get(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        args = _render_args(request, instance, "png")
        data = instance_render(**args)
        audit_record(request=request, action="render", instance=instance)
        encoded = base64.b64encode(data).decode("ascii")
        window = args["window"]
        return Response(
            {
                "image_data": f"data:image/{args['fmt']};base64,{encoded}",
                "metadata": {
                    "window_center": window[0] if window else instance.window_center,
                    "window_width": window[1] if window else instance.window_width,
                    "pixel_spacing": _spacing(instance),
                    "rows": instance.rows,
                    "columns": instance.columns,
                    "frame": args["frame"],
                    "number_of_frames": instance.number_of_frames,
                    "photometric_interpretation": instance.photometric_interpretation,
                    "rescale_slope": instance.rescale_slope,
                    "rescale_intercept": instance.rescale_intercept,
                },
            }
        )


class ImagePreviewView(APIView):
    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        operation_id="viewer_image_preview",
        parameters=[*RENDER_PARAMS, OpenApiParameter("format", str)],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
        description="The rendered frame as an image (PNG by default).",
    )
    def get(self, request: Request, image_id: int) -> HttpResponse:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        args = _render_args(request, instance, "png")
        data = instance_render(**args)
        audit_record(request=request, action="render", instance=instance)
        response = HttpResponse(data, content_type=f"image/{args['fmt']}")
        response["Cache-Control"] = "private, max-age=3600"
        return response


class ImageHeaderView(APIView):
    @extend_schema(
        operation_id="viewer_image_header",
        parameters=[
            OpenApiParameter(
                "tag", str, required=True, description="Keyword (PatientName) or tag (0010,0010)"
            )
        ],
        responses={
            200: inline_serializer(
                "HeaderTag", {"tag": serializers.CharField(), "value": serializers.JSONField()}
            )
        },
        description="One header attribute (seed 000). 404 when the file lacks it.",
    )
    def get(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        tag = request.query_params.get("tag", "")
        if not tag:
            raise LightboxError("Query parameter 'tag' is required.", code="tag_required")
        name, value = selectors.header_tag_value(instance=instance, tag=tag)
        audit_record(request=request, action="header", instance=instance, detail=name)
        return Response({"tag": name, "value": value})


class ImageFileView(APIView):
    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        operation_id="viewer_image_file",
        responses={(200, "application/dicom"): OpenApiTypes.BINARY},
        description="The original DICOM file, streamed.",
    )
    def get(self, request: Request, image_id: int) -> FileResponse:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        audit_record(request=request, action="download", instance=instance)
        return original_response(instance)


def original_response(instance: Instance) -> FileResponse:
    fh = blob_reader(instance.file_path)
    filename = f"{instance.sop_instance_uid}.dcm"
    response = FileResponse(
        fh, content_type="application/dicom", as_attachment=True, filename=filename
    )
    response["Content-Length"] = str(instance.file_size)
    return response
