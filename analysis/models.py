"""Stored analysis results and the prediction models an administrator registers.

Every result keeps the parameters it ran with and the code version that computed it, so a
number shown in the viewer can always be traced to how it was obtained.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from dicom.models import Instance

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class AnalysisType(models.TextChoices):
    ENHANCEMENT = "enhancement", "Enhancement (CLAHE)"
    ROI_MEASUREMENT = "roi_measurement", "ROI measurement"
    ANOMALY_DETECTION = "anomaly_detection", "Anomaly detection (classical)"
    PREDICTION = "prediction", "Prediction (ONNX model)"


class AnalysisResult(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="analyses")
    analysis_type = models.CharField(max_length=32, choices=AnalysisType.choices)
    frame = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(default=dict)
    results = models.JSONField(default=dict)
    code_version = models.CharField(max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="analyses",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["instance", "-created_at"], name="analysis_image_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.analysis_type} of instance {self.instance_id} ({self.pk})"


class Normalization(models.TextChoices):
    WINDOW = "window", "Window (center/width) to 0..1"
    MIN_MAX = "min_max", "Frame min/max to 0..1"
    NONE = "none", "Modality values as they are"


class OutputActivation(models.TextChoices):
    SOFTMAX = "softmax", "Softmax over the outputs"
    SIGMOID = "sigmoid", "Sigmoid of each output"
    NONE = "none", "Outputs are already probabilities"


class PredictionModel(models.Model):
    """An ONNX classifier uploaded by an administrator; clients refer to it by ``name`` only.

    Pre-processing: modality values → ``normalization`` → ``(x - mean) / std`` → resize to
    ``input_height`` * ``input_width`` → tensor (1, ``input_channels``, H, W) float32.
    """

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(MODEL_NAME_PATTERN, "Letters, digits, '.', '_' and '-'.")],
    )
    version = models.CharField(max_length=32, default="1")
    description = models.TextField(blank=True)
    file = models.FileField(upload_to="models/")
    sha256 = models.CharField(max_length=64, blank=True, editable=False)
    input_width = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    input_height = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    input_channels = models.PositiveIntegerField(
        default=1, choices=[(1, "1 (grey)"), (3, "3 (grey repeated)")]
    )
    normalization = models.CharField(
        max_length=16, choices=Normalization.choices, default=Normalization.WINDOW
    )
    window_center = models.FloatField(
        null=True, blank=True, help_text="For 'window'; empty = the file's own window."
    )
    window_width = models.FloatField(null=True, blank=True)
    mean = models.FloatField(default=0.0)
    std = models.FloatField(default=1.0)
    output_activation = models.CharField(
        max_length=16, choices=OutputActivation.choices, default=OutputActivation.SOFTMAX
    )
    output_labels = models.JSONField(default=list, help_text='e.g. ["normal", "abnormal"]')
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"
