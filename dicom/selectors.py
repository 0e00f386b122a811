"""Reads of the archive, always through the one visibility rule.

"Not yours" and "missing" are the same answer: :class:`NotFound` (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Count, Q, QuerySet

from dicom.errors import LightboxError, NotFound
from dicom.models import Instance, Series, Study


def studies_visible(*, user: Any) -> QuerySet[Study]:
    return Study.objects.visible_to(user)


def instances_visible(*, user: Any) -> QuerySet[Instance]:
    return Instance.objects.filter(series__study__in=studies_visible(user=user))


def series_visible(*, user: Any) -> QuerySet[Series]:
    return Series.objects.filter(study__in=studies_visible(user=user))


def study_get(*, user: Any, pk: int | str) -> Study:
    study = studies_visible(user=user).filter(pk=_as_int(pk)).first()
    if study is None:
        raise NotFound("Study not found.")
    return study


def series_get(*, user: Any, pk: int | str) -> Series:
    series = series_visible(user=user).select_related("study").filter(pk=_as_int(pk)).first()
    if series is None:
        raise NotFound("Series not found.")
    return series


def instance_get(*, user: Any, pk: int | str) -> Instance:
    instance = (
        instances_visible(user=user).select_related("series__study").filter(pk=_as_int(pk)).first()
    )
    if instance is None:
        raise NotFound("Image not found.")
    return instance


def _as_int(pk: int | str) -> int:
    try:
        return int(pk)
    except (TypeError, ValueError):
        raise NotFound() from None


@dataclass
class StudyFilters:
    patient_name: str = ""
    patient_id: str = ""
    date_from: date | None = None
    date_to: date | None = None
    modality: str = ""
    accession_number: str = ""
    description: str = ""
    ordering: str = "-study_date"


STUDY_ORDERINGS = {
    "study_date": ("study_date", "id"),
    "-study_date": ("-study_date", "-id"),
    "patient_name": ("patient_name", "id"),
    "-patient_name": ("-patient_name", "-id"),
    "created_at": ("created_at", "id"),
    "-created_at": ("-created_at", "-id"),
    "accession_number": ("accession_number", "id"),
    "-accession_number": ("-accession_number", "-id"),
}


def wildcard_q(field: str, pattern: str) -> Q:
    """DICOM-style matching: ``*`` any run, ``?`` one character, case-insensitive.

    Without wildcards a value matches exactly (case-insensitive), except patient names,
    where a plain value also matches as a prefix of the family or given name.
    """
    if "*" not in pattern and "?" not in pattern:
        return Q(**{f"{field}__iexact": pattern})
    regex = "".join(
        ".*" if ch == "*" else "." if ch == "?" else _regex_escape(ch) for ch in pattern
    )
    return Q(**{f"{field}__iregex": f"^{regex}$"})


def _regex_escape(ch: str) -> str:
    return "\\" + ch if ch in ".^$+{}[]|()\\" else ch


def study_list(*, user: Any, filters: StudyFilters) -> QuerySet[Study]:
    qs = studies_visible(user=user)
    if filters.patient_name:
        name = filters.patient_name
        if "*" in name or "?" in name:
            qs = qs.filter(wildcard_q("patient_name", name))
        else:
            qs = qs.filter(patient_name__icontains=name)
    if filters.patient_id:
        qs = qs.filter(wildcard_q("patient_id", filters.patient_id))
    if filters.date_from:
        qs = qs.filter(study_date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(study_date__lte=filters.date_to)
    if filters.modality:
        qs = qs.filter(series__modality__iexact=filters.modality).distinct()
    if filters.accession_number:
        qs = qs.filter(wildcard_q("accession_number", filters.accession_number))
    if filters.description:
        qs = qs.filter(study_description__icontains=filters.description)
    ordering = STUDY_ORDERINGS.get(filters.ordering)
    if ordering is None:
        raise LightboxError(
            f"Unknown ordering; use one of {', '.join(sorted(STUDY_ORDERINGS))}.",
            code="bad_ordering",
        )
    return qs.annotate(
        series_count=Count("series", distinct=True),
        instance_count=Count("series__instances", distinct=True),
    ).order_by(*ordering)


def study_images(*, study: Study) -> QuerySet[Instance]:
    return (
        Instance.objects.filter(series__study=study)
        .select_related("series")
        .order_by("series__series_number", "series_id", "instance_number", "id")
    )


def study_series(*, study: Study) -> QuerySet[Series]:
    return (
        Series.objects.filter(study=study)
        .annotate(instance_count=Count("instances"))
        .order_by("series_number", "id")
    )


def header_tag_value(*, instance: Instance, tag: str) -> tuple[str, Any]:
    """Look up one attribute of the stored header by keyword or ``(gggg,eeee)``/``ggggeeee``.

    Returns (keyword or tag, value as seed 000 shows it: a string, or a list for
    multi-valued attributes). Raises :class:`NotFound` when the file lacks it.
    """
    from pydicom.datadict import keyword_for_tag, tag_for_keyword

    key = tag.strip()
    hex_tag = _tag_hex(key)
    if hex_tag is None:
        number = tag_for_keyword(key)
        if number is None:
            raise LightboxError(f"Unknown DICOM attribute {key!r}.", code="unknown_tag")
        hex_tag = f"{number:08X}"
    element = instance.header.get(hex_tag)
    if element is None:
        raise NotFound(f"The instance has no attribute {key}.", code="tag_absent")
    name = keyword_for_tag(int(hex_tag, 16)) or key
    return name, json_value_display(element)


def _tag_hex(key: str) -> str | None:
    cleaned = key.replace("(", "").replace(")", "").replace(",", "").replace(" ", "").upper()
    if len(cleaned) == 8 and all(c in "0123456789ABCDEF" for c in cleaned):
        return cleaned
    return None


def json_value_display(element: dict[str, Any]) -> Any:
    """A DICOM JSON element as a plain value: PN as its alphabetic string, one value as
    itself, several as a list, sequences as lists of {keyword: value} dicts."""
    from pydicom.datadict import keyword_for_tag

    if "Value" not in element:
        return "" if "BulkDataURI" not in element else "<bulk data>"
    values = []
    for value in element["Value"]:
        if element.get("vr") == "PN" and isinstance(value, dict):
            values.append(value.get("Alphabetic", ""))
        elif element.get("vr") == "SQ" and isinstance(value, dict):
            values.append(
                {keyword_for_tag(int(t, 16)) or t: json_value_display(v) for t, v in value.items()}
            )
        else:
            values.append(value)
    if len(values) == 1 and element.get("vr") != "SQ":
        return values[0]
    return values
