"""Analysing a whole series in the background: the ``series_analysis`` job kind.

One job item per instance of the series, each running :func:`analysis.services.analysis_run`
on that instance with the job's analysis type, frame and parameters. The jobs app runs an
item's work and its ``done`` mark in one transaction, so a worker killed mid-item stores
nothing for it; on top of that an item that already names its stored result returns it
instead of analysing again, so running a job's items twice never stores a second
:class:`~analysis.models.AnalysisResult` for one item.

The finaliser keeps a summary (counts, per-image result ids, regions found) in the job's
``params["summary"]`` and a one-line version in ``Job.message``.
"""

from __future__ import annotations

import logging
from typing import Any

from analysis import anomaly, enhancement, roi
from analysis.errors import BadAnalysisParameter
from analysis.models import AnalysisResult, AnalysisType
from analysis.services import MSG_TYPE, analysis_run
from dicom.errors import LightboxError
from dicom.models import Series

logger = logging.getLogger(__name__)

JOB_KIND = "series_analysis"
MSG_EMPTY_SERIES = "The series holds no instances to analyse."
MSG_ROI_NEEDED = "roi_measurement needs an 'roi'."


def analysis_request_check(
    *, analysis_type: str, parameters: dict[str, Any], roi_shape: Any
) -> None:
    """Refuse bad parameters before queuing anything (each item would fail alike).

    Only what does not depend on the image is checked here: the parameter names and
    ranges and the ROI's shape. The frame number and colour images fail item by item.
    """
    if analysis_type == AnalysisType.ENHANCEMENT:
        enhancement.enhancement_parameters(dict(parameters))
    elif analysis_type == AnalysisType.ROI_MEASUREMENT:
        if roi_shape is None:
            raise BadAnalysisParameter(MSG_ROI_NEEDED, code="bad_roi")
        roi.roi_parameters(dict(parameters))
        roi.roi_mask(roi=roi_shape, shape=(1, 1))
    elif analysis_type == AnalysisType.ANOMALY_DETECTION:
        anomaly.anomaly_parameters(dict(parameters), spacing_available=True)
    else:
        raise BadAnalysisParameter(MSG_TYPE, code="bad_analysis_type")


def series_analysis_start(
    *,
    series: Series,
    owner: Any,
    analysis_type: str,
    frame: int = 0,
    parameters: dict[str, Any] | None = None,
    roi_shape: Any = None,
) -> Any:
    """Queue a job analysing every instance of ``series`` (one item per instance)."""
    from jobs.services import ItemSpec, job_create, job_enqueue

    parameters = dict(parameters or {})
    analysis_request_check(analysis_type=analysis_type, parameters=parameters, roi_shape=roi_shape)
    ids = list(series.instances.order_by("instance_number", "id").values_list("pk", flat=True))
    if not ids:
        raise LightboxError(MSG_EMPTY_SERIES, code="empty_series")
    job = job_create(
        kind=JOB_KIND,
        owner=owner,
        items=[ItemSpec(key=str(pk)) for pk in ids],
        params={
            "series_id": series.pk,
            "analysis_type": analysis_type,
            "frame": frame,
            "parameters": parameters,
            "roi": roi_shape,
        },
    )
    job_enqueue(job=job)
    logger.info(
        "series analysis queued job=%s series=%s type=%s items=%s",
        job.pk,
        series.pk,
        analysis_type,
        len(ids),
    )
    return job


def series_analysis_item_run(*, job: Any, item: Any) -> dict[str, Any]:
    """Analyse one instance; an item that already names its stored result returns it."""
    from dicom.selectors import instance_get
    from jobs.models import JobItem

    done_before = (item.result or {}).get("analysis_id")
    if done_before and item.status == JobItem.Status.DONE:
        return item.result
    if done_before and AnalysisResult.objects.filter(pk=done_before, instance_id=item.key).exists():
        return item.result
    # The owner's visibility, checked again: the study may have been unshared meanwhile.
    instance = instance_get(user=job.owner, pk=item.key)
    params = job.params
    row, results = analysis_run(
        instance=instance,
        user=job.owner,
        analysis_type=params["analysis_type"],
        frame=params.get("frame", 0),
        parameters=params.get("parameters") or {},
        roi_shape=params.get("roi"),
    )
    return {"analysis_id": row.pk, "image_id": instance.pk, **_item_summary(results)}


def _item_summary(results: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of one result worth a glance in the job's summary."""
    if "anomaly_regions" in results:
        return {"regions_found": results["regions_found"], "confidence": results["confidence"]}
    if "pixel_count" in results:
        return {k: results[k] for k in ("pixel_count", "mean", "std", "units")}
    if "contrast_after" in results:
        return {
            "contrast_before": results["contrast_before"],
            "contrast_after": results["contrast_after"],
        }
    return {}


def series_analysis_finalize(*, job: Any) -> None:
    """Summarise the items into ``job.params["summary"]`` and ``job.message``."""
    from jobs.models import JobItem

    items = list(job.items.order_by("index"))
    done = [i for i in items if i.status == JobItem.Status.DONE]
    summary = {
        "analysis_type": job.params.get("analysis_type"),
        "total": len(items),
        "analysed": len(done),
        "failed": [{"image_id": _int(i.key), **i.error} for i in items if i.status == "failed"],
        "results": [
            {"image_id": i.result.get("image_id"), "analysis_id": i.result.get("analysis_id")}
            for i in done
        ],
    }
    if summary["analysis_type"] == AnalysisType.ANOMALY_DETECTION:
        summary["regions_found"] = sum(i.result.get("regions_found", 0) for i in done)
        summary["images_with_regions"] = sum(1 for i in done if i.result.get("regions_found"))
    job.params = {**job.params, "summary": summary}
    type(job).objects.filter(pk=job.pk).update(params=job.params)
    job.message = _message(summary)[:512]
    return None


def _message(summary: dict[str, Any]) -> str:
    text = f"{summary['analysed']} of {summary['total']} images analysed"
    if "regions_found" in summary:
        text += (
            f"; {summary['regions_found']} region(s) found on "
            f"{summary['images_with_regions']} image(s)"
        )
    return text + "."


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _register() -> None:
    from jobs.services import job_kind_register

    job_kind_register(
        name=JOB_KIND, item_run=series_analysis_item_run, finalize=series_analysis_finalize
    )


_register()
