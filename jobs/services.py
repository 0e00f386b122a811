"""Creating, enqueuing and running jobs.

A job *kind* (batch upload, export, anonymisation...) is a pair of functions registered
with :func:`job_kind_register`: ``item_run(job=, item=)`` does one item's work and returns
its result JSON (raise a :class:`~dicom.errors.LightboxError` for a per-item failure), and
the optional ``finalize(job=)`` builds the result file once every item is through and
returns its storage name.

:func:`job_run` is what the worker executes (through :mod:`jobs.tasks`). Each item runs in
one transaction together with its ``done`` mark, so work and mark commit or vanish
together: a worker killed at any instant leaves each item fully done or still pending, and
the job re-run by :mod:`jobs.recovery` does each pending item exactly once.
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from dicom.errors import LightboxError, NotFound
from jobs.models import Job, JobItem

logger = logging.getLogger(__name__)

MSG_INTERNAL = "An internal error stopped this item; it was not processed."
MSG_WORKER_LOST = "The worker processing this item stopped {attempts} times; it was given up."
MSG_UNKNOWN_KIND = "Unknown job kind {kind!r}."

# Where each kind registers itself (imported on first use, in the web and worker alike).
KIND_MODULES = {
    "batch_upload": "jobs.batches",
    "export": "jobs.export",
    "anonymize": "dicom.anonymize",
    "series_analysis": "analysis.jobs",
}

ItemRun = Callable[..., dict[str, Any] | None]
Finalize = Callable[..., str | None]


@dataclass(frozen=True)
class JobKind:
    name: str
    item_run: ItemRun
    finalize: Finalize | None = None


@dataclass
class ItemSpec:
    """One item to create with a job: its key and, optionally, its staged input."""

    key: str
    input_name: str = ""
    input_size: int | None = None
    params: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # an item already known to fail (bad input)


_KINDS: dict[str, JobKind] = {}


def job_kind_register(*, name: str, item_run: ItemRun, finalize: Finalize | None = None) -> None:
    _KINDS[name] = JobKind(name=name, item_run=item_run, finalize=finalize)


def job_kind_get(name: str) -> JobKind:
    if name not in _KINDS and name in KIND_MODULES:
        importlib.import_module(KIND_MODULES[name])
    try:
        return _KINDS[name]
    except KeyError:
        raise LightboxError(MSG_UNKNOWN_KIND.format(kind=name), code="unknown_job_kind") from None


# --- create and enqueue -----------------------------------------------------------------


def job_create(
    *,
    kind: str,
    owner: Any,
    items: Iterable[ItemSpec],
    params: dict[str, Any] | None = None,
    job_id: Any = None,
) -> Job:
    """Create a queued job with its items (in one transaction). Does not enqueue it."""
    specs = list(items)
    with transaction.atomic():
        job = Job.objects.create(
            **({"id": job_id} if job_id else {}),
            kind=kind,
            owner=owner,
            params=params or {},
            total=len(specs),
        )
        now = timezone.now()
        JobItem.objects.bulk_create(
            [
                JobItem(
                    job=job,
                    index=index,
                    key=spec.key[:512],
                    input_name=spec.input_name,
                    input_size=spec.input_size,
                    params=spec.params or {},
                    status=JobItem.Status.FAILED if spec.error else JobItem.Status.PENDING,
                    error=spec.error or {},
                    finished_at=now if spec.error else None,
                )
                for index, spec in enumerate(specs)
            ],
            batch_size=500,
        )
        _job_recount(job)
    logger.info("job created id=%s kind=%s items=%s", job.pk, kind, len(specs))
    return job


def job_enqueue(*, job: Job) -> None:
    """Hand the job to the worker once the current transaction commits (never before:
    the worker must find the rows)."""
    job_id = job.pk
    transaction.on_commit(lambda: task_enqueue_now(job_id=job_id))


def task_enqueue_now(*, job_id: Any) -> str:
    """Enqueue the job's task, plus helper tasks so that several workers share its items
    (``LIGHTBOX_JOB_PARALLEL_TASKS``); recovery follows the first task."""
    from jobs.tasks import job_run_task

    result = job_run_task.enqueue(str(job_id))
    Job.objects.filter(pk=job_id).update(task_id=str(result.id))
    total = JobItem.objects.filter(job_id=job_id).count()
    for _ in range(min(getattr(settings, "LIGHTBOX_JOB_PARALLEL_TASKS", 2), total) - 1):
        job_run_task.enqueue(str(job_id))
    logger.info("job enqueued id=%s task=%s", job_id, result.id)
    return str(result.id)


# --- reads --------------------------------------------------------------------------------


def jobs_visible(*, user: Any) -> Any:
    """Jobs ``user`` may see: their own; every job for staff."""
    if not getattr(user, "is_authenticated", False):
        return Job.objects.none()
    if getattr(user, "is_staff", False):
        return Job.objects.all()
    return Job.objects.filter(owner=user)


def job_get(*, user: Any, pk: Any, kind: str | None = None) -> Job:
    """A job the user may see, or :class:`NotFound` ("missing" and "not yours" alike)."""
    qs = jobs_visible(user=user)
    if kind is not None:
        qs = qs.filter(kind=kind)
    try:
        job_uuid = uuid.UUID(str(pk))
    except ValueError:
        raise NotFound("Job not found.") from None
    job = qs.filter(pk=job_uuid).first()
    if job is None:
        raise NotFound("Job not found.")
    return job


# --- run ----------------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_run(*, job_id: Any) -> Job | None:
    """Run every pending item of a job, then finalise it. Safe to call again at any time:
    finished items are skipped, a finished job is left alone."""
    job = _job_claim(job_id)
    if job is None:
        return None
    from jobs import events, recovery

    recovery.current_job_set(job.pk)
    try:
        events.job_progress_publish(job=job)
        kind = job_kind_get(job.kind)
        # Passes over the pending items until a pass runs none: an item skipped because
        # another worker held its row lock for a moment is tried again; items another
        # worker is really running are left to it. Each worker takes the items in its own
        # random order: workers sharing a job rarely reach the same item at the same time
        # (in step they would collide on every item, and each collision costs an attempt).
        while True:
            pending = list(
                job.items.filter(status=JobItem.Status.PENDING).values_list("pk", flat=True)
            )
            random.shuffle(pending)
            ran = False
            for item_pk in pending:
                if _item_run(job=job, kind=kind, item_pk=item_pk):
                    ran = True
                    _job_recount(job, heartbeat=True)
                    events.job_progress_publish(job=job)
            if not ran:
                break
        return _job_finish(job=job, kind=kind)
    finally:
        recovery.current_job_set(None)


def _job_claim(job_id: Any) -> Job | None:
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            logger.warning("job vanished id=%s", job_id)
            return None
        if job.is_finished:
            return None
        now = timezone.now()
        job.status = Job.Status.PROCESSING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.worker = worker_name()
        job.attempts += 1
        job.save(update_fields=["status", "started_at", "heartbeat_at", "worker", "attempts"])
    logger.info("job started id=%s kind=%s attempt=%s", job.pk, job.kind, job.attempts)
    return job


def _item_claimable(item_pk: int) -> bool:
    """Pending and not being worked on by another worker right now (its row lock is
    skipped, not waited for, so several workers share one job's items in parallel)."""
    with transaction.atomic():
        return (
            JobItem.objects.select_for_update(skip_locked=True)
            .filter(pk=item_pk, status=JobItem.Status.PENDING)
            .exists()
        )


def _item_run(*, job: Job, kind: JobKind, item_pk: int) -> bool:
    """Run one item unless another worker has it; whether this worker ran (or failed) it."""
    if not _item_claimable(item_pk):
        return False
    # Count the attempt first, in its own commit: an item that kills its worker every
    # time (a codec crash, memory exhaustion) is given up instead of looping forever.
    JobItem.objects.filter(pk=item_pk).update(attempts=F("attempts") + 1)
    item = JobItem.objects.get(pk=item_pk)
    max_attempts = getattr(settings, "LIGHTBOX_JOB_ITEM_MAX_ATTEMPTS", 3)
    if item.status != JobItem.Status.PENDING:
        return False
    if item.attempts > max_attempts:
        _item_fail(
            item_pk, {"error": MSG_WORKER_LOST.format(attempts=max_attempts), "code": "worker_lost"}
        )
        return True
    try:
        with transaction.atomic():
            locked = JobItem.objects.select_for_update(skip_locked=True).filter(pk=item_pk).first()
            if locked is None or locked.status != JobItem.Status.PENDING:
                skipped = True  # another worker has it, or did it meanwhile
            else:
                skipped = False
                result = kind.item_run(job=job, item=locked) or {}
                locked.status = JobItem.Status.DONE
                locked.result = result
                locked.worker = worker_name()
                locked.finished_at = timezone.now()
                locked.save(update_fields=["status", "result", "worker", "finished_at"])
        if skipped:
            # Not an attempt after all: take it back (once the other worker is done with
            # the row, so only a still pending item is touched).
            JobItem.objects.filter(pk=item_pk, status=JobItem.Status.PENDING).update(
                attempts=F("attempts") - 1
            )
            return False
    except LightboxError as exc:
        logger.info("job item failed job=%s item=%s code=%s", job.pk, item.index, exc.code)
        _item_fail(item_pk, exc.payload())
    except Exception:
        logger.exception("job item crashed job=%s item=%s", job.pk, item.index)
        _item_fail(item_pk, {"error": MSG_INTERNAL, "code": "internal_error"})
    return True


def _item_fail(item_pk: int, error: dict[str, Any]) -> None:
    JobItem.objects.filter(pk=item_pk, status=JobItem.Status.PENDING).update(
        status=JobItem.Status.FAILED, error=error, worker=worker_name(), finished_at=timezone.now()
    )


def _job_recount(job: Job, *, heartbeat: bool = False) -> None:
    """Counters from the items themselves: exact whatever happened before."""
    counts = job.items.aggregate(
        total=Count("pk"),
        processed=Count("pk", filter=~Q(status=JobItem.Status.PENDING)),
        failed=Count("pk", filter=Q(status=JobItem.Status.FAILED)),
    )
    job.total, job.processed, job.failed = counts["total"], counts["processed"], counts["failed"]
    fields = ["total", "processed", "failed"]
    if heartbeat:
        job.heartbeat_at = timezone.now()
        fields.append("heartbeat_at")
    Job.objects.filter(pk=job.pk).update(**{f: getattr(job, f) for f in fields})


def _job_finish(*, job: Job, kind: JobKind) -> Job:
    from jobs import events

    _job_recount(job)
    if job.processed < job.total:
        # Items still pending: another worker holds them; it will finish the job.
        return job
    with transaction.atomic():
        # Two workers may end together: the job row lock lets exactly one finalise.
        current = Job.objects.select_for_update().get(pk=job.pk)
        if current.is_finished:
            return current
        _job_finalize(job=job, kind=kind)
    inputs_delete(job=job)
    logger.info(
        "job finished id=%s kind=%s status=%s items=%s failed=%s",
        job.pk,
        job.kind,
        job.status,
        job.total,
        job.failed,
    )
    events.job_progress_publish(job=job)
    return job


def _job_finalize(*, job: Job, kind: JobKind) -> None:
    job.message = ""
    try:
        if kind.finalize is not None:
            job.result_name = kind.finalize(job=job) or ""
            job.result_size = _storage_size(job.result_name)
        failed_all = job.total > 0 and job.failed == job.total
        job.status = Job.Status.FAILED if failed_all else Job.Status.COMPLETED
        if failed_all:
            job.message = "Every item failed."
    except LightboxError as exc:
        job.status, job.message = Job.Status.FAILED, exc.message[:512]
    except Exception:
        logger.exception("job finalize crashed id=%s", job.pk)
        job.status, job.message = Job.Status.FAILED, "An internal error stopped the job."
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "message", "result_name", "result_size", "finished_at"])


def job_fail(*, job: Job, message: str) -> None:
    """Mark a job failed as a whole (used by recovery when it cannot be run at all)."""
    from jobs import events

    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.FAILED, message=message[:512], finished_at=timezone.now()
    )
    job.refresh_from_db()
    events.job_progress_publish(job=job)


# --- files of a job -------------------------------------------------------------------------


def job_dir(job_id: Any) -> str:
    return f"jobs/{job_id}"


def inputs_delete(*, job: Job) -> None:
    from django.core.files.storage import default_storage

    names = [n for n in job.items.values_list("input_name", flat=True) if n]
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete job input job=%s", job.pk)
    JobItem.objects.filter(job=job).exclude(input_name="").update(input_name="")


def _storage_size(name: str) -> int | None:
    from django.core.files.storage import default_storage

    if not name:
        return None
    try:
        return default_storage.size(name)
    except (OSError, NotImplementedError):
        return None


def job_json(job: Job) -> dict[str, Any]:
    """The generic public shape of a job."""
    return {
        "job_id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "total": job.total,
        "processed": job.processed,
        "failed": job.failed,
        "percentage": job.percentage,
        "message": job.message,
        "has_result": bool(job.result_name),
        "result_size": job.result_size,
        "result_url": f"/jobs/{job.pk}/result/" if job.result_name else None,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def item_json(item: JobItem) -> dict[str, Any]:
    return {
        "index": item.index,
        "key": item.key,
        "status": item.status,
        "result": item.result or None,
        "error": item.error or None,
    }
