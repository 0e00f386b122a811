"""Picking up jobs whose worker died.

django-tasks-db marks a task ``RUNNING`` when a worker claims it and never looks at it
again: a worker killed with SIGKILL (or a lost machine) leaves the task ``RUNNING``
forever. :func:`jobs_recover` finds the jobs of such tasks and enqueues them again; items
already done are skipped by :func:`jobs.services.job_run`, so nothing is done twice.

A worker is dead when

* it ran on this host (``host:pid`` in its worker id) and its process is gone, or
* its job's heartbeat is older than ``LIGHTBOX_JOB_STALE_SECONDS`` (other hosts). The
  ``jobs_worker`` command beats every few seconds for the job it runs, even inside a long
  item, and runs this recovery at start-up and periodically.

A job whose enqueue was lost (the process died between commit and enqueue) is also
enqueued again once it is older than the stale delay.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from jobs.models import Job

logger = logging.getLogger(__name__)

WORKER_LOST_CLASS = "jobs.recovery.WorkerLost"

_current: dict[str, Any] = {"job": None}


class WorkerLost(Exception):
    """Recorded on the task result of a worker that died mid-job."""


def stale_seconds() -> int:
    return int(getattr(settings, "LIGHTBOX_JOB_STALE_SECONDS", 120))


def current_job_set(job_id: Any) -> None:
    _current["job"] = job_id


def heartbeat_touch() -> None:
    """Mark the job this process is running as alive (called by the watcher thread)."""
    job_id = _current["job"]
    if job_id is not None:
        Job.objects.filter(pk=job_id, status=Job.Status.PROCESSING).update(
            heartbeat_at=timezone.now()
        )


def jobs_recover(*, stale_after: int | None = None) -> list[str]:
    """Enqueue again every unfinished job nobody is running. Returns their ids."""
    cutoff = timezone.now() - timedelta(seconds=stale_after or stale_seconds())
    recovered = []
    unfinished = Job.objects.filter(status__in=[Job.Status.QUEUED, Job.Status.PROCESSING])
    for job in unfinished.only("pk", "task_id", "worker", "heartbeat_at", "created_at", "status"):
        task = DBTaskResult.objects.filter(pk=job.task_id).first() if job.task_id else None
        if _orphaned(job, task, cutoff) and _requeue(job, task):
            recovered.append(str(job.pk))
    if recovered:
        logger.warning("jobs recovered count=%s ids=%s", len(recovered), ",".join(recovered))
    return recovered


def _orphaned(job: Job, task: DBTaskResult | None, cutoff: datetime) -> bool:
    if task is None:
        return job.created_at < cutoff
    if task.status == "READY":
        return False
    if task.status == "RUNNING":
        worker = task.worker_ids[-1] if task.worker_ids else job.worker
        return _worker_dead(worker, job, cutoff)
    # The task ended but the job did not: only once nobody has beaten for a while.
    return (job.heartbeat_at or job.created_at) < cutoff


def _worker_dead(worker: str, job: Job, cutoff: datetime) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
        return True
    return (job.heartbeat_at or job.created_at) < cutoff


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _requeue(job: Job, task: DBTaskResult | None) -> bool:
    from jobs.tasks import job_run_task

    with transaction.atomic():
        locked = Job.objects.select_for_update().filter(pk=job.pk).first()
        if locked is None or locked.is_finished or locked.task_id != job.task_id:
            return False  # finished, or another process recovered it first
        if task is not None:
            DBTaskResult.objects.filter(pk=task.pk, status="RUNNING").update(
                status="FAILED",
                finished_at=timezone.now(),
                exception_class_path=WORKER_LOST_CLASS,
                traceback="The worker stopped without finishing; the job was enqueued again.",
            )
        result = job_run_task.enqueue(str(job.pk))
        locked.task_id = str(result.id)
        locked.save(update_fields=["task_id"])
    logger.warning("job re-enqueued id=%s old_task=%s", job.pk, job.task_id)
    return True
