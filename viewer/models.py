"""What a clinician draws on an image: measurements (length, angle, ROIs) and text notes.

Both belong to one image and one user; coordinates are image pixel positions
``[column, row]`` (x, y) in the stored frame, so they survive zoom, pan and window changes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from dicom.models import Instance


class MeasurementType(models.TextChoices):
    LINE = "line", "Length"
    ANGLE = "angle", "Angle"
    RECTANGLE = "rectangle", "Rectangle ROI"
    ELLIPSE = "ellipse", "Ellipse ROI"
    POINT = "point", "Point"
    POLYGON = "polygon", "Polygon ROI"


class Measurement(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="measurements")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="measurements"
    )
    frame = models.PositiveIntegerField(default=0)
    measurement_type = models.CharField(max_length=16, choices=MeasurementType.choices)
    coordinates = models.JSONField(default=list)
    value = models.FloatField(null=True, blank=True)
    unit = models.CharField(max_length=16, blank=True)
    notes = models.CharField(max_length=1024, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["instance", "user"], name="measurement_image_user")]

    def __str__(self) -> str:
        return f"Measurement {self.pk} ({self.measurement_type}) on image {self.instance_id}"


class Annotation(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="annotations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations"
    )
    frame = models.PositiveIntegerField(default=0)
    x = models.FloatField()
    y = models.FloatField()
    text = models.CharField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["instance", "user"], name="annotation_image_user")]

    def __str__(self) -> str:
        return f"Annotation {self.pk} on image {self.instance_id}"
