"""Admin for the archive: search, filters and a read-only header view."""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from dicom.deletion import instance_delete, study_delete
from dicom.models import Instance, Patient, Series, Study


class ReadOnlyArchiveAdmin(admin.ModelAdmin):
    """Archive rows come from DICOM files; editing them by hand would desynchronise
    the index from the stored files, so the admin shows them read-only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(Patient)
class PatientAdmin(ReadOnlyArchiveAdmin):
    list_display = ("id", "patient_id", "issuer_of_patient_id", "sex", "created_at")
    search_fields = ("patient_id", "patient_name")
    list_filter = ("sex",)


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ("series_instance_uid", "series_number", "modality", "series_description")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False


@admin.register(Study)
class StudyAdmin(ReadOnlyArchiveAdmin):
    list_display = (
        "id",
        "patient_id",
        "study_date",
        "modalities_in_study",
        "accession_number",
        "study_description",
        "owner",
        "series_total",
        "created_at",
    )
    list_filter = ("modalities_in_study", "study_date", "shared_with")
    search_fields = (
        "study_instance_uid",
        "patient_name",
        "patient_id",
        "accession_number",
        "study_description",
    )
    date_hierarchy = "study_date"
    inlines = [SeriesInline]
    list_select_related = ("owner",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Owner and sharing groups may be changed by administrators.
        return bool(request.user.is_superuser)

    def get_readonly_fields(self, request: HttpRequest, obj: object = None) -> list[str]:
        editable = {"owner", "shared_with"}
        return [f.name for f in Study._meta.fields if f.name not in editable] + ["created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Study]:
        return super().get_queryset(request).annotate(series_total=Count("series"))

    def delete_model(self, request: HttpRequest, obj: Study) -> None:
        study_delete(study=obj, by=request.user, request=request, protocol="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            study_delete(study=study, by=request.user, request=request, protocol="admin")

    @admin.display(description="series", ordering="series_total")
    def series_total(self, obj: Study) -> int:
        return obj.series_total  # type: ignore[attr-defined]


@admin.register(Series)
class SeriesAdmin(ReadOnlyArchiveAdmin):
    list_display = (
        "id",
        "series_instance_uid",
        "modality",
        "series_number",
        "series_description",
        "study",
    )
    list_filter = ("modality",)
    search_fields = ("series_instance_uid", "series_description", "study__study_instance_uid")
    list_select_related = ("study",)


@admin.register(Instance)
class InstanceAdmin(ReadOnlyArchiveAdmin):
    list_display = (
        "id",
        "sop_instance_uid",
        "sop_class_uid",
        "instance_number",
        "rows",
        "columns",
        "number_of_frames",
        "transfer_syntax_uid",
        "file_size",
        "created_at",
    )
    list_filter = (
        "transfer_syntax_uid",
        "photometric_interpretation",
        "source",
        "series__modality",
    )
    search_fields = ("sop_instance_uid", "sha256", "series__series_instance_uid")
    exclude = ("header",)
    readonly_fields = ("header_view",)
    list_select_related = ("series",)

    def delete_model(self, request: HttpRequest, obj: Instance) -> None:
        instance_delete(instance=obj, by=request.user, request=request, protocol="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Instance]) -> None:
        for instance in queryset.select_related("series__study"):
            instance_delete(instance=instance, by=request.user, request=request, protocol="admin")

    @admin.display(description="DICOM header (JSON, without bulk data)")
    def header_view(self, obj: Instance) -> str:
        text = json.dumps(obj.header, indent=1, ensure_ascii=False)
        return format_html(
            '<pre style="max-height:40em;overflow:auto;white-space:pre-wrap">{}</pre>', text
        )
