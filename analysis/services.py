"""Run an analysis on one frame of a stored image and store what it computed.

Every stored :class:`AnalysisResult` carries the parameters actually used (defaults filled
in) and :func:`code_version`, so each number can be traced to how it was obtained.
Enhanced images are returned but not stored (they are re-computed from the parameters).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from django.db.models import QuerySet

from analysis import anomaly, enhancement, predict, roi
from analysis.errors import BadAnalysisParameter
from analysis.models import AnalysisResult, AnalysisType, PredictionModel
from analysis.pixels import frame_load, pixel_spacing
from dicom.models import Instance

logger = logging.getLogger(__name__)

ANALYSIS_CODE_VERSION = "1"
ANALYZE_TYPES = (
    AnalysisType.ENHANCEMENT,
    AnalysisType.ROI_MEASUREMENT,
    AnalysisType.ANOMALY_DETECTION,
)
MSG_TYPE = "analysis_type must be one of: enhancement, roi_measurement, anomaly_detection."
NOT_STORED = ("enhanced_image",)


@cache
def code_version() -> str:
    """``lightbox-analysis/<n>`` plus the versions of the numeric libraries used."""
    import numpy
    import scipy
    import skimage

    return (
        f"lightbox-analysis/{ANALYSIS_CODE_VERSION} numpy/{numpy.__version__} "
        f"scipy/{scipy.__version__} scikit-image/{skimage.__version__}"
    )


def analysis_run(
    *,
    instance: Instance,
    user: Any,
    analysis_type: str,
    frame: int = 0,
    parameters: dict[str, Any] | None = None,
    roi_shape: Any = None,
) -> tuple[AnalysisResult, dict[str, Any]]:
    """Compute and store one analysis; returns the stored row and the full results."""
    parameters = dict(parameters or {})
    if analysis_type == AnalysisType.ENHANCEMENT:
        used = enhancement.enhancement_parameters(parameters)
        window = (used["window_center"], used["window_width"]) if "window_center" in used else None
        loaded = frame_load(instance=instance, frame=frame, window=window)
        results = enhancement.enhancement_run(frame=loaded, parameters=used)
    elif analysis_type == AnalysisType.ROI_MEASUREMENT:
        used = roi.roi_parameters(parameters)
        loaded = frame_load(instance=instance, frame=frame)
        results = roi.roi_run(frame=loaded, roi=roi_shape, parameters=used)
        used["roi"] = roi_shape
    elif analysis_type == AnalysisType.ANOMALY_DETECTION:
        used = anomaly.anomaly_parameters(
            parameters, spacing_available=pixel_spacing(instance) is not None
        )
        loaded = frame_load(instance=instance, frame=frame)
        results = anomaly.anomaly_run(frame=loaded, parameters=used)
    else:
        raise BadAnalysisParameter(MSG_TYPE, code="bad_analysis_type")
    stored = analysis_store(
        instance=instance,
        user=user,
        analysis_type=analysis_type,
        frame=frame,
        parameters=used,
        results=results,
        version=code_version(),
    )
    return stored, results


def analysis_store(
    *,
    instance: Instance,
    user: Any,
    analysis_type: str,
    frame: int,
    parameters: dict[str, Any],
    results: dict[str, Any],
    version: str,
) -> AnalysisResult:
    kept = {k: v for k, v in results.items() if k not in NOT_STORED}
    if any(k in results for k in NOT_STORED):
        kept["image_stored"] = False
    row = AnalysisResult.objects.create(
        instance=instance,
        analysis_type=analysis_type,
        frame=frame,
        parameters=parameters,
        results=kept,
        code_version=version,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    logger.info(
        "analysis stored id=%s type=%s instance=%s frame=%s",
        row.pk,
        analysis_type,
        instance.pk,
        frame,
    )
    return row


def prediction_make(
    *, instance: Instance, user: Any, model: PredictionModel, frame: int = 0
) -> tuple[AnalysisResult, dict[str, Any]]:
    """Run ``model`` on one frame and store the prediction."""
    import onnxruntime

    loaded = frame_load(instance=instance, frame=frame)
    results = predict.prediction_run(frame=loaded, model=model)
    results["model"] = {"name": model.name, "version": model.version, "sha256": model.sha256}
    stored = analysis_store(
        instance=instance,
        user=user,
        analysis_type=AnalysisType.PREDICTION,
        frame=frame,
        parameters={"model": model.name, "model_version": model.version},
        results=results,
        version=f"{code_version()} onnxruntime/{onnxruntime.__version__}",
    )
    return stored, results


def analyses_for_image(*, instance: Instance, analysis_type: str = "") -> QuerySet[AnalysisResult]:
    rows = AnalysisResult.objects.filter(instance=instance).select_related("created_by")
    if analysis_type:
        rows = rows.filter(analysis_type=analysis_type)
    return rows.order_by("-created_at", "-id")
