"""The task the database worker runs (``manage.py jobs_worker`` or ``db_worker``)."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task()
def job_run_task(job_id: str) -> dict[str, Any]:
    from jobs.services import job_run

    job = job_run(job_id=job_id)
    if job is None:
        return {"job_id": job_id, "status": "skipped"}
    return {"job_id": job_id, "status": job.status, "processed": job.processed}
