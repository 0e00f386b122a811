"""Admin: administrators register ONNX prediction models here; results are read-only."""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.contrib import admin

from analysis.errors import ModelUnusable
from analysis.models import AnalysisResult, Normalization, PredictionModel
from analysis.predict import model_check


class PredictionModelForm(forms.ModelForm):
    class Meta:
        model = PredictionModel
        fields = (
            "name",
            "version",
            "description",
            "file",
            "input_width",
            "input_height",
            "input_channels",
            "normalization",
            "window_center",
            "window_width",
            "mean",
            "std",
            "output_activation",
            "output_labels",
            "is_active",
        )

    def clean_output_labels(self) -> list[str]:
        labels = self.cleaned_data.get("output_labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise forms.ValidationError('Give a JSON list of strings, e.g. ["normal", "abnormal"].')
        return labels

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("std") == 0:
            self.add_error("std", "std must not be 0.")
        center, width = data.get("window_center"), data.get("window_width")
        if (center is None) != (width is None):
            self.add_error("window_width", "Give both window center and width, or neither.")
        if width is not None and width <= 0:
            self.add_error("window_width", "The window width must be positive.")
        if data.get("normalization") != Normalization.WINDOW and center is not None:
            self.add_error("window_center", "A window is only used with 'window' normalization.")
        upload = data.get("file")
        if upload is not None and hasattr(upload, "read") and not self.errors:
            self._check_onnx(upload, data)
        return data

    def _check_onnx(self, upload: Any, data: dict[str, Any]) -> None:
        upload.seek(0)
        content = upload.read()
        upload.seek(0)
        try:
            model_check(
                data=content,
                input_channels=data["input_channels"],
                input_height=data["input_height"],
                input_width=data["input_width"],
            )
        except ModelUnusable as exc:
            self.add_error("file", exc.message)
        self.instance.sha256 = hashlib.sha256(content).hexdigest()


@admin.register(PredictionModel)
class PredictionModelAdmin(admin.ModelAdmin):
    form = PredictionModelForm
    list_display = (
        "name",
        "version",
        "is_active",
        "input_width",
        "input_height",
        "normalization",
        "updated_at",
    )
    list_filter = ("is_active", "normalization")
    search_fields = ("name", "description")
    readonly_fields = ("sha256", "created_at", "updated_at")


@admin.register(AnalysisResult)
class AnalysisResultAdmin(admin.ModelAdmin):
    list_display = ("id", "analysis_type", "instance", "frame", "created_by", "created_at")
    list_filter = ("analysis_type",)
    raw_id_fields = ("instance", "created_by")
    readonly_fields = (
        "instance",
        "analysis_type",
        "frame",
        "parameters",
        "results",
        "code_version",
        "created_by",
        "created_at",
    )

    def has_add_permission(self, request: Any) -> bool:
        return False
