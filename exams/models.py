"""Images registered under an external medical exam ID (seed 002's ImageMedicale).

An exam exists only through its images; an image points at its DICOM UIDs and, when the
archive holds that SOP Instance for the same owner, at the stored :class:`Instance`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from dicom.models import UID_LENGTH, Instance


class ExamImage(models.Model):
    image_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    exam_id = models.UUIDField(db_index=True)
    study_instance_uid = models.CharField(max_length=UID_LENGTH)
    series_instance_uid = models.CharField(max_length=UID_LENGTH)
    sop_instance_uid = models.CharField(max_length=UID_LENGTH)
    date_acquisition = models.DateTimeField()
    modality = models.CharField(max_length=16)
    description = models.CharField(max_length=1024)
    url = models.CharField(max_length=2048, blank=True)  # "" is seed 002's null
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exam_images"
    )
    instance = models.ForeignKey(
        Instance,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="exam_images",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["exam_id", "date_acquisition", "created_at"]
        constraints = [
            # One registration of an image per owner: a second one is seed 002's 409.
            models.UniqueConstraint(
                fields=["owner", "sop_instance_uid"], name="uniq_exam_image_owner_sop"
            )
        ]

    def __str__(self) -> str:
        return f"ExamImage {self.image_id} (exam {self.exam_id})"
