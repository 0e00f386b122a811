"""DICOMweb views: thin DRF views (session, JWT or API key; one visibility rule) that
parse the request, call :mod:`qido`, :mod:`wado` or :mod:`stow`, and write the answer.

DRF's content negotiation is bypassed (the services negotiate DICOM media types
themselves); errors are still JSON through the project's exception handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from dicom.dicomweb import json as dj
from dicom.dicomweb import qido, stow, wado
from dicom.dicomweb.multipart import boundary_new, multipart_content_type, multipart_stream
from dicom.models import Instance
from dicom.negotiation import JsonErrorsNegotiation
from dicom.previews import instance_render

logger = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
TAG = ["DICOMweb"]


class _DicomwebSchema(AutoSchema):
    """Operation ids from the route, since one view serves several levels:
    ``GET /dicomweb/studies/{study}/series`` → ``dicomweb_get_studies_study_series``."""

    def get_operation_id(self) -> str:
        words = [w.strip("{}") for w in self.path.split("/") if w and w != "dicomweb"]
        return "dicomweb_" + "_".join([self.method.lower(), *words])


class DicomwebView(APIView):
    schema = _DicomwebSchema()
    renderer_classes = [JSONRenderer]
    parser_classes: list[Any] = []  # bodies are read as streams, never parsed by DRF
    content_negotiation_class = JsonErrorsNegotiation

    def get_authenticate_header(self, request: Request) -> str | None:
        """401 (not 403) with a challenge when any authenticator offers one."""
        for authenticator in self.get_authenticators():
            header = authenticator.authenticate_header(request)
            if header:
                return header
        return None


def streaming_body(request: Request, chunks: Iterator[bytes]) -> Any:
    """The body iterator for ``StreamingHttpResponse``: under ASGI an async iterator that
    pulls each chunk in a worker thread (Django would otherwise buffer a sync iterator
    whole), under WSGI the plain iterator."""
    if isinstance(request._request, ASGIRequest):
        return _async_chunks(chunks)
    return chunks


async def _async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Read the next batch while the current one is being sent (one read in flight at a
    time: the iterator is never advanced by two threads at once)."""
    pull = sync_to_async(_gather, thread_sensitive=False)
    pending = asyncio.ensure_future(pull(chunks))
    try:
        while chunk := await asyncio.shield(pending):  # a disconnect never cuts a read
            pending = asyncio.ensure_future(pull(chunks))
            yield chunk
    finally:
        if not pending.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)  # let the read in flight finish first
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=False)()


def _gather(chunks: Iterator[bytes], target: int = 256 * 1024) -> bytes:
    """Join small pieces (part headers, small files) into batches of about ``target``
    bytes: one thread hop per batch instead of per piece. Larger batches measured slower
    (4 MB: 350 MB/s, 256 kB: 560 MB/s on a 50 MB study): the socket drains while the next
    batch is read."""
    batch: list[bytes] = []
    size = 0
    for chunk in chunks:
        batch.append(chunk)
        size += len(chunk)
        if size >= target:
            break
    return b"".join(batch)


def studies_url(request: Request) -> str:
    return request.build_absolute_uri(reverse("dicomweb:studies"))


def _audit(
    request: Request, action: str, *, study: Any = None, instance: Any = None, detail: str = ""
) -> None:
    try:
        from developers.audit import audit_record
    except ImportError:  # auditing not installed
        return
    audit_record(
        request=request,
        action=action,
        study=study,
        instance=instance,
        protocol="dicomweb",
        detail=detail,
    )


def _json_response(
    body: str,
    *,
    status: int = 200,
    warnings: list[str] | None = None,
    request: Request | None = None,
) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=DICOM_JSON)
    if warnings and request is not None:
        host = request.get_host()
        response["Warning"] = ", ".join(f'299 {host} "{w}"' for w in warnings)
    return response


# --- QIDO-RS --------------------------------------------------------------------------------

QIDO_PARAMS = [
    OpenApiParameter(
        "limit", int, description=f"Default {qido.DEFAULT_LIMIT}, max {qido.MAX_LIMIT}."
    ),
    OpenApiParameter("offset", int),
    OpenApiParameter(
        "includefield", str, description="Keywords or 8-hex tags, comma-separated, or `all`."
    ),
    OpenApiParameter(
        "fuzzymatching",
        bool,
        description="Not supported: literal matching is done and `Warning: 299` says so.",
    ),
    OpenApiParameter(
        "{attributeID}",
        str,
        description=(
            "Match on PatientName, PatientID, PatientBirthDate, PatientSex, "
            "StudyInstanceUID, StudyDate, StudyTime, AccessionNumber, StudyID, "
            "StudyDescription, ReferringPhysicianName, ModalitiesInStudy, SeriesInstanceUID, "
            "Modality, SeriesNumber, SeriesDescription, SeriesDate, SeriesTime, "
            "BodyPartExamined, SOPInstanceUID, SOPClassUID, InstanceNumber, Rows, Columns, "
            "BitsAllocated, NumberOfFrames, ContentDate, AcquisitionDate (keyword or "
            "8-hex tag). `*`/`?` wildcards, `a-b` date/time ranges, UID lists with `,` or `\\`."
        ),
    ),
]
QIDO_RESPONSES = {
    200: OpenApiResponse(
        OpenApiTypes.OBJECT, description="DICOM JSON array (application/dicom+json)."
    ),
    204: OpenApiResponse(description="No match."),
    400: OpenApiResponse(description="Invalid parameter value."),
    401: OpenApiResponse(description="Not authenticated."),
}


def _qido_answer(request: Request, result: qido.QidoResult) -> HttpResponse:
    if not result.datasets:
        response = HttpResponse(status=204)
        if result.warnings:
            response["Warning"] = ", ".join(
                f'299 {request.get_host()} "{w}"' for w in result.warnings
            )
        return response
    return _json_response(dj.dumps(result.datasets), warnings=result.warnings, request=request)


class StudiesView(DicomwebView):
    @extend_schema(
        tags=TAG,
        parameters=QIDO_PARAMS,
        responses=QIDO_RESPONSES,
        description="QIDO-RS study search (PS3.18 10.6).",
    )
    def get(self, request: Request) -> HttpResponse:
        query = qido.qido_query_parse(dict(request.query_params.lists()))
        result = qido.studies_search(
            user=request.user, query=query, studies_url=studies_url(request)
        )
        return _qido_answer(request, result)

    @extend_schema(
        tags=TAG,
        request={"multipart/related": OpenApiTypes.BINARY},
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="All stored."),
            202: OpenApiResponse(
                OpenApiTypes.OBJECT, description="Some failed (FailedSOPSequence)."
            ),
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="None stored."),
            415: OpenApiResponse(description="Not multipart/related; type=application/dicom."),
        },
        description=(
            'STOW-RS (PS3.18 10.5): `multipart/related; type="application/dicom"` (type quoted '
            "or not), streamed part by part into the ingest pipeline. Identical resends count "
            "as stored. Failure Reasons: A700 too large/out of resources, A900 other study "
            "than the path's, C000 not DICOM, 0111 different instance with this SOP Instance "
            "UID, 0124 study owned by someone else, 0110 other."
        ),
    )
    def post(self, request: Request, study: str | None = None) -> HttpResponse:
        outcome = stow.stow_store(
            stream=request._request,
            content_type=request.META.get("CONTENT_TYPE", ""),
            owner=request.user,
            study_uid=study,
        )
        for result in outcome.stored:
            _audit(request, "store", instance=result.instance, detail=result.status)
        body = stow.stow_response(outcome, studies_url=studies_url(request), study_uid=study)
        return _json_response(dj.dumps(body), status=outcome.http_status)


class StudyStoreView(StudiesView):
    """``POST /studies/{study}``; ``GET`` retrieves the study (see :class:`RetrieveView`)."""

    @extend_schema(
        tags=TAG,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.BINARY, description="multipart/related application/dicom"
            )
        },
        description="WADO-RS study retrieve; see dicomweb_retrieve_instance.",
    )
    def get(self, request: Request, study: str) -> HttpResponse:  # type: ignore[override]
        return _retrieve(request, study=study)


class SeriesSearchView(DicomwebView):
    @extend_schema(
        tags=TAG,
        parameters=QIDO_PARAMS,
        responses=QIDO_RESPONSES,
        description="QIDO-RS series search, all or of one study.",
    )
    def get(self, request: Request, study: str | None = None) -> HttpResponse:
        query = qido.qido_query_parse(dict(request.query_params.lists()))
        result = qido.series_search(
            user=request.user, query=query, studies_url=studies_url(request), study_uid=study
        )
        return _qido_answer(request, result)


class InstanceSearchView(DicomwebView):
    @extend_schema(
        tags=TAG,
        parameters=QIDO_PARAMS,
        responses=QIDO_RESPONSES,
        description="QIDO-RS instance search: all, of a study, or of a series.",
    )
    def get(
        self, request: Request, study: str | None = None, series: str | None = None
    ) -> HttpResponse:
        query = qido.qido_query_parse(dict(request.query_params.lists()))
        result = qido.instances_search(
            user=request.user,
            query=query,
            studies_url=studies_url(request),
            study_uid=study,
            series_uid=series,
        )
        return _qido_answer(request, result)


# --- WADO-RS --------------------------------------------------------------------------------

RETRIEVE_DESCRIPTION = (
    'WADO-RS retrieve as `multipart/related; type="application/dicom"`, streamed. '
    "`transfer-syntax=*` or no parameter: files as stored (byte-identical); "
    "`transfer-syntax=1.2.840.10008.1.2.1`: converted (decoded) when needed; any other "
    "syntax not matching the stored one: 406."
)


def _retrieve(
    request: Request, *, study: str, series: str | None = None, instance: str | None = None
) -> StreamingHttpResponse:
    ts = wado.dicom_accept(
        accept=request.META.get("HTTP_ACCEPT", ""),
        accept_param=request.query_params.get("accept", ""),
    )
    study_row, files = wado.files_resolve(
        user=request.user, study_uid=study, series_uid=series, sop_uid=instance
    )
    wado.dicom_parts_check(files, ts)
    _audit(
        request,
        "download",
        study=study_row,
        instance=Instance(pk=files[0].pk, sop_instance_uid=files[0].sop_instance_uid)
        if instance
        else None,
        detail=f"{len(files)} instance(s)",
    )
    boundary = boundary_new()
    response = StreamingHttpResponse(
        streaming_body(request, multipart_stream(wado.dicom_parts(files, ts), boundary=boundary)),
        content_type=multipart_content_type(
            part_type="application/dicom",
            boundary=boundary,
            transfer_syntax="" if ts == "*" else ts,
        ),
    )
    return response


class SeriesRetrieveView(DicomwebView):
    @extend_schema(
        tags=TAG,
        responses={200: OpenApiResponse(OpenApiTypes.BINARY)},
        description=RETRIEVE_DESCRIPTION,
    )
    def get(self, request: Request, study: str, series: str) -> HttpResponse:
        return _retrieve(request, study=study, series=series)


class InstanceRetrieveView(DicomwebView):
    @extend_schema(
        tags=TAG,
        responses={200: OpenApiResponse(OpenApiTypes.BINARY), 406: OpenApiResponse()},
        description=RETRIEVE_DESCRIPTION,
    )
    def get(self, request: Request, study: str, series: str, instance: str) -> HttpResponse:
        return _retrieve(request, study=study, series=series, instance=instance)


class MetadataView(DicomwebView):
    @extend_schema(
        tags=TAG,
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="application/dicom+json"),
            304: OpenApiResponse(description="Unchanged (If-None-Match)."),
        },
        description=(
            "WADO-RS metadata of a study, series or instance as `application/dicom+json` "
            "with absolute BulkDataURIs (PixelData included). Study and series answers are "
            "cached per series and carry an ETag; If-None-Match gives 304."
        ),
    )
    def get(
        self, request: Request, study: str, series: str | None = None, instance: str | None = None
    ) -> HttpResponse:
        _metadata_accept(request)
        base = studies_url(request)
        if instance is not None:
            found = wado.instance_resolve(
                user=request.user, study_uid=study, series_uid=series or "", sop_uid=instance
            )
            _audit(request, "header", instance=found)
            return _json_response(dj.dumps([dj.instance_metadata(found, studies_url=base)]))
        ids = wado.series_ids_resolve(user=request.user, study_uid=study, series_uid=series)
        plan = wado.metadata_plan(series_ids=ids, studies_url=base)
        if plan.etag in request.META.get("HTTP_IF_NONE_MATCH", ""):
            response = HttpResponse(status=304)
            response["ETag"] = plan.etag
            return response
        response = _json_response(wado.metadata_body(plan, studies_url=base))
        response["ETag"] = plan.etag
        response["Cache-Control"] = "private, no-cache"
        return response


def _metadata_accept(request: Request) -> None:
    from dicom.dicomweb.multipart import MediaType, accept_parse

    accepted = accept_parse(
        request.query_params.get("accept", "") or request.META.get("HTTP_ACCEPT", "")
    )
    for media in accepted or [MediaType("*/*")]:
        if media.mime in ("*/*", "application/*", DICOM_JSON, "application/json"):
            return
    raise wado.NotAcceptable("Metadata is served as application/dicom+json only.")


class BulkdataView(DicomwebView):
    @extend_schema(
        tags=TAG,
        responses={200: OpenApiResponse(OpenApiTypes.BINARY)},
        description=(
            "The value of a bulk element named by a BulkDataURI, as "
            "multipart/related application/octet-stream (single part "
            "when only application/octet-stream is accepted)."
        ),
    )
    def get(
        self, request: Request, study: str, series: str, instance: str, path: str
    ) -> HttpResponse:
        found = wado.instance_resolve(
            user=request.user, study_uid=study, series_uid=series, sop_uid=instance
        )
        value = wado.bulkdata_value(found, path)
        _audit(request, "download", instance=found, detail=f"bulkdata {path}"[:255])
        return _octets(request, [value], "application/octet-stream", "")


def _octets(request: Request, payloads: list[bytes], media: str, ts: str) -> HttpResponse:
    accept = request.query_params.get("accept", "") or request.META.get("HTTP_ACCEPT", "")
    single = (
        len(payloads) == 1
        and accept.split(";")[0].strip().lower() in (media, "application/octet-stream")
        and not accept.lower().startswith("multipart")
    )
    if single:
        content_type = media + (f"; transfer-syntax={ts}" if ts else "")
        return HttpResponse(payloads[0], content_type=content_type)
    boundary = boundary_new()
    part_type = media + (f"; transfer-syntax={ts}" if ts else "")
    parts = [({"Content-Type": part_type}, iter([p])) for p in payloads]
    return StreamingHttpResponse(
        streaming_body(request, multipart_stream(parts, boundary=boundary)),
        content_type=multipart_content_type(part_type=media, boundary=boundary, transfer_syntax=ts),
    )


class FramesView(DicomwebView):
    @extend_schema(
        tags=TAG,
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY),
            404: OpenApiResponse(),
            406: OpenApiResponse(),
        },
        description=(
            "Frames (1-based, comma-separated) as multipart/related "
            "application/octet-stream, uncompressed (decoded with pydicom/pylibjpeg); with "
            "`transfer-syntax=*` (OHIF's default) compressed frames are passed through as "
            "stored, with the part's media type (image/jpeg, image/jls, image/jp2, "
            "image/jphc, image/dicom-rle) when that type is accepted."
        ),
    )
    def get(
        self, request: Request, study: str, series: str, instance: str, frames: str
    ) -> HttpResponse:
        numbers = _frame_numbers(frames)
        found = wado.instance_resolve(
            user=request.user, study_uid=study, series_uid=series, sop_uid=instance
        )
        answer = wado.frames_get(
            found,
            numbers,
            request.META.get("HTTP_ACCEPT", ""),
            request.query_params.get("accept", ""),
        )
        _audit(request, "download", instance=found, detail=f"frames {frames}"[:255])
        ts = answer.transfer_syntax
        return _octets(request, answer.frames, answer.media_type, ts)


def _frame_numbers(value: str) -> list[int]:
    try:
        numbers = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        numbers = []
    if not numbers:
        from dicom.errors import LightboxError

        raise LightboxError(
            "Frame numbers must be a comma-separated list of integers.", code="bad_frame_list"
        )
    return numbers


RENDER_PARAMS = [
    OpenApiParameter("window", str, description="center,width[,linear]"),
    OpenApiParameter("viewport", str, description="vw,vh (output size bound)"),
    OpenApiParameter("quality", int, description="1..100 (JPEG)"),
]


class RenderedView(DicomwebView):
    thumbnail = False

    @extend_schema(
        tags=TAG,
        parameters=RENDER_PARAMS,
        responses={
            200: OpenApiResponse(
                OpenApiTypes.BINARY, description="image/jpeg, image/png or image/gif"
            ),
            406: OpenApiResponse(),
        },
        description=(
            "Rendered image (JPEG by default; PNG/GIF by Accept) through the one renderer "
            "(modality LUT, VOI window, MONOCHROME1). Study and series level render their "
            "representative image (middle image of the first series); a multi-frame "
            "instance renders its first frame. `/thumbnail` is the same at 128x128 by default."
        ),
    )
    def get(
        self,
        request: Request,
        study: str,
        series: str | None = None,
        instance: str | None = None,
        frame: str | None = None,
    ) -> HttpResponse:
        fmt = wado.rendered_accept(
            request.META.get("HTTP_ACCEPT", ""), request.query_params.get("accept", "")
        )
        options = wado.render_params(request.query_params)
        if self.thumbnail and options["size"] is None:
            options["size"] = (128, 128)
        chosen = wado.rendered_resolve(
            user=request.user, study_uid=study, series_uid=series, sop_uid=instance
        )
        index = (_frame_numbers(frame)[0] - 1) if frame else 0
        if frame and not 0 <= index < max(1, chosen.number_of_frames):
            from dicom.errors import NotFound

            raise NotFound("No such frame.")
        data = instance_render(
            instance=chosen,
            frame=index,
            window=options["window"],
            size=options["size"],
            fmt=fmt,
            quality=options["quality"],
        )
        _audit(request, "render", instance=chosen)
        return HttpResponse(data, content_type=f"image/{fmt}")


class ThumbnailView(RenderedView):
    thumbnail = True

    @extend_schema(
        tags=TAG,
        parameters=RENDER_PARAMS,
        responses={200: OpenApiResponse(OpenApiTypes.BINARY)},
        description="Thumbnail (Sup 203) of a study, series, instance or frame.",
    )
    def get(self, *args: Any, **kwargs: Any) -> HttpResponse:
        return super().get(*args, **kwargs)
