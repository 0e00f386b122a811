"""Image analysis endpoints under ``/viewer/api/`` (seed 004's analyze/predict routes).

Thin views: parse, call one service, serialise. Visibility is :func:`instance_get`'s job
(another user's image answers 404). Results are what was computed, with how.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis import jobs as analysis_jobs
from analysis import services
from analysis.anomaly import DISCLAIMER
from analysis.errors import BadAnalysisParameter
from analysis.models import AnalysisResult, AnalysisType
from analysis.predict import model_resolve
from dicom import selectors

LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 500
ERROR_RESPONSES = {
    400: OpenApiTypes.OBJECT,
    404: OpenApiTypes.OBJECT,
    422: OpenApiTypes.OBJECT,
}


def analysis_json(row: AnalysisResult) -> dict[str, Any]:
    return {
        "id": row.pk,
        "image_id": row.instance_id,
        "analysis_type": row.analysis_type,
        "frame": row.frame,
        "parameters": row.parameters,
        "results": row.results,
        "code_version": row.code_version,
        "created_by": row.created_by_id,
        "created_at": row.created_at.isoformat(),
    }


class AnalyzeInput(serializers.Serializer):
    analysis_type = serializers.ChoiceField(
        choices=[t.value for t in services.ANALYZE_TYPES],
        help_text="enhancement, roi_measurement or anomaly_detection",
    )
    frame = serializers.IntegerField(min_value=0, default=0, help_text="0-based frame")
    parameters = serializers.DictField(
        required=False, default=dict, help_text="Type-specific parameters (see description)"
    )
    roi = serializers.JSONField(
        required=False,
        default=None,
        help_text="roi_measurement only: {type: rectangle, x, y, width, height} | "
        "{type: ellipse, cx, cy, rx, ry} | {type: polygon, points: [[x, y], ...]}",
    )


ANALYZE_DESCRIPTION = """
Runs one analysis on one frame, stores it (parameters + code version) and returns it.

* `enhancement`: CLAHE (scikit-image `equalize_adapthist`) of the windowed frame. Parameters:
  `clip_limit` (0.0001–1, default 0.01), `kernel_size` (px, default 1/8 of the smaller side),
  `nbins` (default 256), `window_center`/`window_width` (default: the file's window). Returns
  `enhanced_image` (PNG data URL, same size as the frame), the contrast before and after.
  The image itself is not stored.
* `roi_measurement`: statistics of the pixels whose centre is inside `roi` (image
  coordinates, x = column, y = row): pixel count, area (mm² from (0028,0030) Pixel Spacing,
  else px² with `spacing_available: false`), mean, std (population), min, max, median in
  modality units (HU for CT), a histogram (`bins`, default 32).
* `anomaly_detection`: a classical method (body mask, Gaussian local background and local
  σ with sigma clipping, z-score, connected components). Parameters: `z_threshold` (4),
  `min_area` (20 mm², or px² without spacing), `background_sigma` (10 mm or px), `polarity`
  (bright|dark|both), `max_regions` (20). Regions: `bbox` [x, y, width, height], area,
  mean intensity, texture score, confidence = (1 − z_t/|mean z|) × (1 − exp(−area/min_area)).
  **A visual aid, not a diagnosis.**
"""


class AnalyzeView(APIView):
    @extend_schema(
        operation_id="viewer_image_analyze",
        request=AnalyzeInput,
        responses={201: OpenApiTypes.OBJECT, **ERROR_RESPONSES},
        description=ANALYZE_DESCRIPTION,
        examples=[
            OpenApiExample(
                "Anomaly detection", value={"analysis_type": "anomaly_detection"}, request_only=True
            ),
            OpenApiExample(
                "ROI",
                value={
                    "analysis_type": "roi_measurement",
                    "roi": {"type": "ellipse", "cx": 64, "cy": 64, "rx": 10, "ry": 8},
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        data = AnalyzeInput(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        if args["analysis_type"] == AnalysisType.ROI_MEASUREMENT and args["roi"] is None:
            raise BadAnalysisParameter("roi_measurement needs an 'roi'.", code="bad_roi")
        row, results = services.analysis_run(
            instance=instance,
            user=request.user,
            analysis_type=args["analysis_type"],
            frame=args["frame"],
            parameters=args["parameters"],
            roi_shape=args["roi"],
        )
        return Response(
            {"success": True, **analysis_json(row), "results": results, "disclaimer": DISCLAIMER},
            status=201,
        )


class AnalysesListView(APIView):
    @extend_schema(
        operation_id="viewer_image_analyses",
        parameters=[
            OpenApiParameter("analysis_type", str, description="Only this type"),
            OpenApiParameter("limit", int, description=f"At most {LIST_LIMIT_MAX} (newest first)"),
        ],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        description="Stored analyses and predictions of an image, newest first, each with "
        "its parameters and code version (enhanced images are not stored).",
    )
    def get(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        analysis_type = request.query_params.get("analysis_type", "")
        if analysis_type and analysis_type not in AnalysisType.values:
            raise BadAnalysisParameter(
                f"analysis_type must be one of {', '.join(AnalysisType.values)}.",
                code="bad_analysis_type",
            )
        limit = _limit(request.query_params.get("limit"))
        rows = services.analyses_for_image(instance=instance, analysis_type=analysis_type)
        items = [analysis_json(row) for row in rows[:limit]]
        return Response(
            {
                "image_id": instance.pk,
                "count": len(items),
                "analyses": items,
                "disclaimer": DISCLAIMER,
            }
        )


def _limit(raw: str | None) -> int:
    if raw in (None, ""):
        return LIST_LIMIT_DEFAULT
    try:
        value = int(raw)
    except ValueError:
        raise BadAnalysisParameter("limit must be an integer.") from None
    if not 1 <= value <= LIST_LIMIT_MAX:
        raise BadAnalysisParameter(f"limit must be between 1 and {LIST_LIMIT_MAX}.")
    return value


class PredictInput(serializers.Serializer):
    model = serializers.CharField(help_text="Name of a model registered by an administrator")
    frame = serializers.IntegerField(min_value=0, default=0)


class PredictView(APIView):
    @extend_schema(
        operation_id="viewer_image_predict",
        request=PredictInput,
        responses={201: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT, **ERROR_RESPONSES},
        description=(
            "Runs a registered ONNX model (onnxruntime, CPU) on one frame and stores the "
            "result. `model` is a registered **name**; any path (`model_path`, a name with "
            "`/`) is refused with 400. Unknown name → 404 with `available_models`; no model "
            "registered → 409. Answer: `prediction` {prediction (index), label, confidence, "
            "probabilities, labels} and `model` {name, version}. Pre-processing is in "
            "docs/analysis.md. A visual aid, not a diagnosis."
        ),
    )
    def post(self, request: Request, image_id: int) -> Response:
        instance = selectors.instance_get(user=request.user, pk=image_id)
        body = request.data if isinstance(request.data, dict) else {}
        model = model_resolve(request_data=body)
        data = PredictInput(data=body)
        data.is_valid(raise_exception=True)
        row, results = services.prediction_make(
            instance=instance,
            user=request.user,
            model=model,
            frame=data.validated_data["frame"],
        )
        model_info = results.pop("model")
        return Response(
            {
                "success": True,
                "analysis_id": row.pk,
                "image_id": instance.pk,
                "frame": row.frame,
                "prediction": results,
                "model": {"name": model_info["name"], "version": model_info["version"]},
                "code_version": row.code_version,
                "disclaimer": DISCLAIMER,
            },
            status=201,
        )


SERIES_ANALYZE_DESCRIPTION = """
Queues a background job running one analysis (same body as
`POST /viewer/api/images/{id}/analyze/`: `analysis_type`, `parameters`, optional `frame`
and, for `roi_measurement`, `roi`) on every instance of a series you may see. Answers 202
with the job; follow it with `status_url` (`GET /jobs/{id}/`, `?items=1` lists every image
with its `analysis_id`) or the `/ws/processing/` WebSocket (`job.progress` events). Each
image's result is stored like a single-image analysis and listed by
`GET /viewer/api/images/{id}/analyses/`. When the job ends, `summary_url` gives the summary:
counts, per-image result ids, failures and, for anomaly detection, the regions found.
Parameters are checked before anything is queued (400); an image that cannot be analysed
(frame out of range, colour image for ROI statistics) fails alone. Another user's series
is a 404. **A visual aid, not a diagnosis.**
"""


def analysis_job_json(job: Any) -> dict[str, Any]:
    from jobs.services import job_json

    return {
        **job_json(job),
        "series_id": job.params.get("series_id"),
        "analysis_type": job.params.get("analysis_type"),
        "status_url": f"/jobs/{job.pk}/",
        "summary_url": f"/viewer/api/analysis-jobs/{job.pk}/",
    }


class SeriesAnalyzeView(APIView):
    @extend_schema(
        operation_id="viewer_series_analyze",
        request=AnalyzeInput,
        responses={202: OpenApiTypes.OBJECT, **ERROR_RESPONSES},
        description=SERIES_ANALYZE_DESCRIPTION,
        examples=[
            OpenApiExample(
                "Anomaly detection", value={"analysis_type": "anomaly_detection"}, request_only=True
            ),
            OpenApiExample(
                "queued",
                response_only=True,
                status_codes=["202"],
                value={
                    "job_id": "0b9e...",
                    "kind": "series_analysis",
                    "status": "queued",
                    "total": 3,
                    "processed": 0,
                    "percentage": 0.0,
                    "status_url": "/jobs/0b9e.../",
                    "summary_url": "/viewer/api/analysis-jobs/0b9e.../",
                },
            ),
        ],
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = selectors.series_get(user=request.user, pk=series_id)
        data = AnalyzeInput(data=request.data)
        data.is_valid(raise_exception=True)
        args = data.validated_data
        job = analysis_jobs.series_analysis_start(
            series=series,
            owner=request.user,
            analysis_type=args["analysis_type"],
            frame=args["frame"],
            parameters=args["parameters"],
            roi_shape=args["roi"],
        )
        return Response({**analysis_job_json(job), "disclaimer": DISCLAIMER}, status=202)


class AnalysisJobView(APIView):
    @extend_schema(
        operation_id="viewer_analysis_job",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        description="A series analysis job: its status and counts and, once finished, its "
        "`summary` (`total`, `analysed`, `failed`, `results` [{image_id, analysis_id}], and "
        "for anomaly detection `regions_found` and `images_with_regions`). Your own jobs "
        "only (staff: anyone's); another user's job is a 404.",
    )
    def get(self, request: Request, job_id: str) -> Response:
        from jobs.services import job_get

        job = job_get(user=request.user, pk=job_id, kind=analysis_jobs.JOB_KIND)
        body = analysis_job_json(job)
        body["summary"] = job.params.get("summary")
        return Response({**body, "disclaimer": DISCLAIMER})
