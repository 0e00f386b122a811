"""Services and selectors for measurements and text annotations.

Every read and write goes through :func:`dicom.selectors.instance_get` first, so another
user's image answers 404 exactly like a missing one; a measurement or annotation is
private to the user who drew it.
"""

from __future__ import annotations

import math
from typing import Any

from django.db.models import QuerySet

from dicom import selectors
from dicom.errors import LightboxError, NotFound
from dicom.models import Instance
from viewer.models import Annotation, Measurement, MeasurementType

MSG_BAD_COORDINATES = (
    "coordinates must be a list of [x, y] number pairs: 2 for line, rectangle and ellipse, "
    "3 for angle, 1 for point, 3 to 1000 for polygon."
)
MSG_BAD_FRAME = "frame {frame} is out of range; the image has {count} frame(s)."
MSG_MEASUREMENT_NOT_FOUND = "Measurement not found."
MSG_ANNOTATION_NOT_FOUND = "Annotation not found."

POINTS_BY_TYPE: dict[str, tuple[int, int]] = {
    MeasurementType.LINE: (2, 2),
    MeasurementType.ANGLE: (3, 3),
    MeasurementType.RECTANGLE: (2, 2),
    MeasurementType.ELLIPSE: (2, 2),
    MeasurementType.POINT: (1, 1),
    MeasurementType.POLYGON: (3, 1000),
}
COORDINATE_LIMIT = 1_000_000.0


def coordinates_clean(*, measurement_type: str, coordinates: Any) -> list[list[float]]:
    """Validate ``[[x, y], ...]`` for the measurement type; returns plain floats."""
    low, high = POINTS_BY_TYPE[measurement_type]
    if not isinstance(coordinates, list) or not low <= len(coordinates) <= high:
        raise LightboxError(MSG_BAD_COORDINATES, code="bad_coordinates")
    return [_point_clean(point) for point in coordinates]


def _point_clean(point: Any) -> list[float]:
    if not isinstance(point, (list, tuple)) or len(point) != 2:
        raise LightboxError(MSG_BAD_COORDINATES, code="bad_coordinates")
    return [number_clean(value=v, code="bad_coordinates") for v in point]


def number_clean(*, value: Any, code: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LightboxError(MSG_BAD_COORDINATES, code=code)
    if not math.isfinite(value) or abs(value) > COORDINATE_LIMIT:
        raise LightboxError(MSG_BAD_COORDINATES, code=code)
    return float(value)


def frame_clean(*, instance: Instance, frame: int) -> int:
    count = max(1, instance.number_of_frames)
    if not 0 <= frame < count:
        raise LightboxError(MSG_BAD_FRAME.format(frame=frame, count=count), code="bad_frame")
    return frame


# --- measurements -------------------------------------------------------------------------


def measurements_list(*, user: Any, image_id: int) -> QuerySet[Measurement]:
    instance = selectors.instance_get(user=user, pk=image_id)
    return Measurement.objects.filter(instance=instance, user=user)


def measurement_get(*, user: Any, pk: int) -> Measurement:
    """The caller's own measurement on an image they may still see, else 404."""
    measurement = (
        Measurement.objects.filter(
            pk=pk, user=user, instance__in=selectors.instances_visible(user=user)
        )
        .select_related("instance")
        .first()
    )
    if measurement is None:
        raise NotFound(MSG_MEASUREMENT_NOT_FOUND)
    return measurement


def measurement_save(
    *,
    user: Any,
    image_id: int,
    measurement_type: str,
    coordinates: Any,
    value: float | None,
    unit: str,
    notes: str,
    frame: int,
) -> Measurement:
    instance = selectors.instance_get(user=user, pk=image_id)
    return Measurement.objects.create(
        instance=instance,
        user=user,
        frame=frame_clean(instance=instance, frame=frame),
        measurement_type=measurement_type,
        coordinates=coordinates_clean(measurement_type=measurement_type, coordinates=coordinates),
        value=value,
        unit=unit,
        notes=notes,
    )


def measurement_update(*, measurement: Measurement, changes: dict[str, Any]) -> Measurement:
    """Apply a partial update; the type and image never change."""
    if "coordinates" in changes:
        measurement.coordinates = coordinates_clean(
            measurement_type=measurement.measurement_type, coordinates=changes["coordinates"]
        )
    for field in ("value", "unit", "notes"):
        if field in changes:
            setattr(measurement, field, changes[field])
    measurement.save()
    return measurement


def measurement_delete(*, measurement: Measurement) -> None:
    measurement.delete()


# --- annotations --------------------------------------------------------------------------


def annotations_list(*, user: Any, image_id: int) -> QuerySet[Annotation]:
    instance = selectors.instance_get(user=user, pk=image_id)
    return Annotation.objects.filter(instance=instance, user=user)


def annotation_get(*, user: Any, pk: int) -> Annotation:
    annotation = Annotation.objects.filter(
        pk=pk, user=user, instance__in=selectors.instances_visible(user=user)
    ).first()
    if annotation is None:
        raise NotFound(MSG_ANNOTATION_NOT_FOUND)
    return annotation


def annotation_save(
    *, user: Any, image_id: int, x: float, y: float, text: str, frame: int
) -> Annotation:
    instance = selectors.instance_get(user=user, pk=image_id)
    return Annotation.objects.create(
        instance=instance,
        user=user,
        frame=frame_clean(instance=instance, frame=frame),
        x=number_clean(value=x, code="bad_position"),
        y=number_clean(value=y, code="bad_position"),
        text=text,
    )


def annotation_update(*, annotation: Annotation, changes: dict[str, Any]) -> Annotation:
    for field in ("x", "y"):
        if field in changes:
            setattr(annotation, field, number_clean(value=changes[field], code="bad_position"))
    if "text" in changes:
        annotation.text = changes["text"]
    annotation.save()
    return annotation


def annotation_delete(*, annotation: Annotation) -> None:
    annotation.delete()
