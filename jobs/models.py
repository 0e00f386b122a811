"""Background jobs: one :class:`Job` per batch upload, export or anonymisation, and one
:class:`JobItem` per unit of work inside it.

Items are the unit of idempotency: an item is ``pending`` until its work and its
``done``/``failed`` mark are committed together, so a worker killed mid-job leaves every
item either fully done or still pending, and the re-run does each pending item once.
The counters on :class:`Job` are recomputed from the items, never incremented.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        PROCESSING = "processing"
        COMPLETED = "completed"
        FAILED = "failed"

    FINISHED = (Status.COMPLETED, Status.FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, db_index=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    # Options of the job (export format, anonymisation flags...), JSON-serialisable.
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)  # done + failed
    failed = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=512, blank=True)
    # Storage name of the result file (a ZIP), when the kind produces one.
    result_name = models.CharField(max_length=255, blank=True)
    result_size = models.BigIntegerField(null=True, blank=True)
    # Id of the django-tasks result currently in charge of this job.
    task_id = models.CharField(max_length=64, blank=True)
    # "host:pid" of the worker running it and its last sign of life (see jobs.recovery).
    worker = models.CharField(max_length=128, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "kind", "-created_at"], name="job_owner_kind")]

    def __str__(self) -> str:
        return f"Job {self.pk} ({self.kind}, {self.status})"

    @property
    def percentage(self) -> float:
        if not self.total:
            return 100.0 if self.status in self.FINISHED else 0.0
        return round(100.0 * self.processed / self.total, 1)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class JobItem(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    index = models.PositiveIntegerField()
    # What the item is about: a file name in a batch, an image id in an export.
    key = models.CharField(max_length=512)
    # Where its input waits (storage name), when it has one; deleted when the job ends.
    input_name = models.CharField(max_length=255, blank=True)
    input_size = models.BigIntegerField(null=True, blank=True)
    # Options of this item only (e.g. the patient name given for one picture).
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    result = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The worker (host:pid) that finished the item: several workers share a job.
    worker = models.CharField(max_length=128, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="uniq_job_item_index"),
        ]

    def __str__(self) -> str:
        return f"JobItem {self.job_id}#{self.index} ({self.status})"
