"""The archive: Patient → Study → Series → Instance.

The main DICOM attributes are indexed columns; the whole header (without bulk data) is
kept as DICOM JSON (PS3.18 Annex F) in :attr:`Instance.header`. Patient demographics are
also copied onto the study, because two senders may use one Patient ID for different
people and a user must only ever see what their own files say.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models
from django.db.models.expressions import RawSQL

from dicom.fields import FastJSONField

UID_LENGTH = 64  # (VR UI) maximum length


class Patient(models.Model):
    """(0010,0020) *Patient ID* qualified by (0010,0021) *Issuer of Patient ID*."""

    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    issuer_of_patient_id = models.CharField(max_length=64, blank=True)
    patient_name = models.CharField(max_length=324, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient_id", "issuer_of_patient_id"], name="uniq_patient_identity"
            )
        ]

    def __str__(self) -> str:
        return f"Patient {self.pk} ({self.patient_id or 'no ID'})"


class StudyQuerySet(models.QuerySet["Study"]):
    def visible_to(self, user: object) -> StudyQuerySet:
        """Studies ``user`` may see: their own, those shared with one of their groups, all
        for staff. The one visibility rule; every view goes through it."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if getattr(user, "is_staff", False):
            return self
        return self.filter(models.Q(owner_id=user.pk) | models.Q(pk__in=_shared_study_ids(user)))


def _shared_study_ids(user: object) -> RawSQL:
    """Ids of studies shared with a group of ``user``, as a subquery. Plain SQL instead of
    the ORM join: no DISTINCT over the whole result, and a QIDO search builds in
    microseconds instead of milliseconds (it runs on every browse and DICOMweb query)."""
    shared = Study.shared_with.through._meta
    memberships = get_user_model().groups.through._meta  # type: ignore[attr-defined]
    study, group = shared.get_field("study").column, shared.get_field("group").column
    member = memberships.get_field("group").column
    user_column = memberships.get_field("user").column
    # Identifiers from model metadata only; the user id is a parameter.
    sql = f'SELECT s."{study}" FROM "{shared.db_table}" s INNER JOIN "{memberships.db_table}" m ON m."{member}" = s."{group}" WHERE m."{user_column}" = %s'  # noqa: E501, S608
    return RawSQL(sql, [user.pk])  # type: ignore[attr-defined]  # noqa: S611


class Study(models.Model):
    study_instance_uid = models.CharField(max_length=UID_LENGTH, unique=True)
    # The shared Patient record; the columns below are what this study's files say.
    patient_record = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="studies",
    )
    shared_with = models.ManyToManyField(Group, blank=True, related_name="shared_studies")

    # Patient module as the study's own files state it (see module docstring).
    patient_name = models.CharField(max_length=324, blank=True, db_index=True)
    patient_id = models.CharField(max_length=64, blank=True, db_index=True)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)

    study_date = models.DateField(null=True, blank=True, db_index=True)
    study_time = models.CharField(max_length=32, blank=True)
    accession_number = models.CharField(max_length=64, blank=True, db_index=True)
    study_id = models.CharField(max_length=16, blank=True)
    study_description = models.CharField(max_length=256, blank=True, db_index=True)
    referring_physician_name = models.CharField(max_length=324, blank=True)
    modalities_in_study = models.CharField(max_length=128, blank=True, db_index=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-study_date", "-created_at"]

    def __str__(self) -> str:
        return f"Study {self.pk} ({self.study_instance_uid})"

    def modality_list(self) -> list[str]:
        return [m for m in self.modalities_in_study.split("\\") if m]


class Series(models.Model):
    series_instance_uid = models.CharField(max_length=UID_LENGTH, unique=True)
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    modality = models.CharField(max_length=16, blank=True, db_index=True)
    series_number = models.IntegerField(null=True, blank=True)
    series_description = models.CharField(max_length=256, blank=True)
    series_date = models.DateField(null=True, blank=True)
    series_time = models.CharField(max_length=32, blank=True)
    body_part_examined = models.CharField(max_length=64, blank=True)
    frame_of_reference_uid = models.CharField(max_length=UID_LENGTH, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["series_number", "id"]

    def __str__(self) -> str:
        return f"Series {self.pk} ({self.series_instance_uid})"


class Instance(models.Model):
    sop_instance_uid = models.CharField(max_length=UID_LENGTH, unique=True)
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_class_uid = models.CharField(max_length=UID_LENGTH, blank=True, db_index=True)
    instance_number = models.IntegerField(null=True, blank=True)
    transfer_syntax_uid = models.CharField(max_length=UID_LENGTH, blank=True)

    # Image Pixel module, (0028,xxxx)
    rows = models.IntegerField(null=True, blank=True)
    columns = models.IntegerField(null=True, blank=True)
    number_of_frames = models.IntegerField(default=1)
    samples_per_pixel = models.IntegerField(null=True, blank=True)
    bits_allocated = models.IntegerField(null=True, blank=True)
    bits_stored = models.IntegerField(null=True, blank=True)
    pixel_representation = models.IntegerField(null=True, blank=True)
    photometric_interpretation = models.CharField(max_length=32, blank=True)
    has_pixel_data = models.BooleanField(default=False)
    # (0028,0030) Pixel Spacing is (row spacing, column spacing) = (y, x), in mm.
    pixel_spacing_row = models.FloatField(null=True, blank=True)
    pixel_spacing_column = models.FloatField(null=True, blank=True)
    window_center = models.FloatField(null=True, blank=True)
    window_width = models.FloatField(null=True, blank=True)
    rescale_slope = models.FloatField(null=True, blank=True)
    rescale_intercept = models.FloatField(null=True, blank=True)
    acquisition_date = models.DateField(null=True, blank=True)
    content_date = models.DateField(null=True, blank=True)
    image_comments = models.CharField(max_length=1024, blank=True)

    # Storage
    sha256 = models.CharField(max_length=64, db_index=True)
    file_size = models.BigIntegerField()
    file_path = models.CharField(max_length=255)
    original_filename = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=32, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="uploaded_instances",
    )
    # Whole header without bulk data, as DICOM JSON (bulk values carry a BulkDataURI key).
    header = FastJSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instance_number", "id"]

    def __str__(self) -> str:
        return f"Instance {self.pk} ({self.sop_instance_uid})"

    @property
    def derived_dir(self) -> str:
        """Folder of derived files (previews, thumbnails) beside the original."""
        return self.file_path.rsplit("/", 1)[0]
