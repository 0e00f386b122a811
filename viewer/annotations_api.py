"""``/viewer/api/measurements/`` and ``/viewer/api/annotations/``: seed 004's save routes plus
list, update and delete. Thin views over :mod:`viewer.annotations`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dicom.errors import LightboxError
from viewer import annotations as services
from viewer.models import Annotation, Measurement, MeasurementType

MSG_IMAGE_ID_REQUIRED = "Query parameter 'image_id' is required and must be an integer."

IMAGE_ID_PARAM = OpenApiParameter(
    "image_id", int, required=True, description="The image whose items to list"
)


def _valid(serializer_class: type[serializers.Serializer], data: Any, **kw: Any) -> dict:
    serializer = serializer_class(data=data, **kw)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _image_id(request: Request) -> int:
    raw = request.query_params.get("image_id", "")
    try:
        return int(raw)
    except ValueError:
        raise LightboxError(MSG_IMAGE_ID_REQUIRED, code="image_id_required") from None


# --- measurements -------------------------------------------------------------------------


class MeasurementOutput(serializers.ModelSerializer):
    image_id = serializers.IntegerField(source="instance_id")

    class Meta:
        model = Measurement
        fields = [
            "id",
            "image_id",
            "frame",
            "measurement_type",
            "coordinates",
            "value",
            "unit",
            "notes",
            "created_at",
            "updated_at",
        ]


class MeasurementInput(serializers.Serializer):
    image_id = serializers.IntegerField()
    measurement_type = serializers.ChoiceField(choices=MeasurementType.choices)
    coordinates = serializers.JSONField(
        help_text="[[x, y], ...] in image pixels (x = column, y = row)"
    )
    value = serializers.FloatField(required=False, allow_null=True, default=None)
    unit = serializers.CharField(required=False, allow_blank=True, max_length=16, default="")
    notes = serializers.CharField(required=False, allow_blank=True, max_length=1024, default="")
    frame = serializers.IntegerField(required=False, min_value=0, default=0)


class MeasurementPatch(serializers.Serializer):
    coordinates = serializers.JSONField(required=False)
    value = serializers.FloatField(required=False, allow_null=True)
    unit = serializers.CharField(required=False, allow_blank=True, max_length=16)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=1024)


class MeasurementSaveView(APIView):
    @extend_schema(
        operation_id="viewer_measurement_save",
        request=MeasurementInput,
        responses={201: MeasurementOutput, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        description=(
            "Save a measurement on an image (seed 004 payload). `coordinates` are image pixel "
            "positions: 2 points for line/rectangle/ellipse, 3 for angle (vertex in the middle)."
            " The viewer computes `value`/`unit` (mm from Pixel Spacing, px when absent)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _valid(MeasurementInput, request.data)
        measurement = services.measurement_save(user=request.user, **data)
        return Response({"success": True, **MeasurementOutput(measurement).data}, status=201)


class MeasurementListView(APIView):
    @extend_schema(
        operation_id="viewer_measurements_list",
        parameters=[IMAGE_ID_PARAM],
        responses={200: MeasurementOutput(many=True), 404: OpenApiTypes.OBJECT},
        description="The caller's measurements on one image, oldest first.",
    )
    def get(self, request: Request) -> Response:
        rows = services.measurements_list(user=request.user, image_id=_image_id(request))
        return Response(MeasurementOutput(rows, many=True).data)


class MeasurementDetailView(APIView):
    @extend_schema(
        operation_id="viewer_measurement_update",
        request=MeasurementPatch,
        responses={200: MeasurementOutput, 404: OpenApiTypes.OBJECT},
        description="Change the points, value, unit or notes of one of your measurements.",
    )
    def patch(self, request: Request, measurement_id: int) -> Response:
        measurement = services.measurement_get(user=request.user, pk=measurement_id)
        changes = _valid(MeasurementPatch, request.data, partial=True)
        measurement = services.measurement_update(measurement=measurement, changes=changes)
        return Response(MeasurementOutput(measurement).data)

    @extend_schema(
        operation_id="viewer_measurement_delete",
        responses={204: None, 404: OpenApiTypes.OBJECT},
        description="Delete one of your measurements.",
    )
    def delete(self, request: Request, measurement_id: int) -> Response:
        measurement = services.measurement_get(user=request.user, pk=measurement_id)
        services.measurement_delete(measurement=measurement)
        return Response(status=204)


# --- annotations --------------------------------------------------------------------------


class AnnotationOutput(serializers.ModelSerializer):
    image_id = serializers.IntegerField(source="instance_id")

    class Meta:
        model = Annotation
        fields = ["id", "image_id", "frame", "x", "y", "text", "created_at", "updated_at"]


class AnnotationInput(serializers.Serializer):
    image_id = serializers.IntegerField()
    x = serializers.FloatField()
    y = serializers.FloatField()
    text = serializers.CharField(max_length=1024)
    frame = serializers.IntegerField(required=False, min_value=0, default=0)


class AnnotationPatch(serializers.Serializer):
    x = serializers.FloatField(required=False)
    y = serializers.FloatField(required=False)
    text = serializers.CharField(required=False, max_length=1024)


class AnnotationSaveView(APIView):
    @extend_schema(
        operation_id="viewer_annotation_save",
        request=AnnotationInput,
        responses={201: AnnotationOutput, 400: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        description="Add a text annotation at image pixel (x, y) (seed 004 payload).",
    )
    def post(self, request: Request) -> Response:
        data = _valid(AnnotationInput, request.data)
        annotation = services.annotation_save(user=request.user, **data)
        return Response({"success": True, **AnnotationOutput(annotation).data}, status=201)


class AnnotationListView(APIView):
    @extend_schema(
        operation_id="viewer_annotations_list",
        parameters=[IMAGE_ID_PARAM],
        responses={200: AnnotationOutput(many=True), 404: OpenApiTypes.OBJECT},
        description="The caller's text annotations on one image, oldest first.",
    )
    def get(self, request: Request) -> Response:
        rows = services.annotations_list(user=request.user, image_id=_image_id(request))
        return Response(AnnotationOutput(rows, many=True).data)


class AnnotationDetailView(APIView):
    @extend_schema(
        operation_id="viewer_annotation_update",
        request=AnnotationPatch,
        responses={200: AnnotationOutput, 404: OpenApiTypes.OBJECT},
        description="Move or re-word one of your annotations.",
    )
    def patch(self, request: Request, annotation_id: int) -> Response:
        annotation = services.annotation_get(user=request.user, pk=annotation_id)
        changes = _valid(AnnotationPatch, request.data, partial=True)
        annotation = services.annotation_update(annotation=annotation, changes=changes)
        return Response(AnnotationOutput(annotation).data)

    @extend_schema(
        operation_id="viewer_annotation_delete",
        responses={204: None, 404: OpenApiTypes.OBJECT},
        description="Delete one of your annotations.",
    )
    def delete(self, request: Request, annotation_id: int) -> Response:
        annotation = services.annotation_get(user=request.user, pk=annotation_id)
        services.annotation_delete(annotation=annotation)
        return Response(status=204)
