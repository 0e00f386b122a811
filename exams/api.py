"""Seed 002's routes: exam images and DICOM upload. Thin views over :mod:`exams.services`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dicom.errors import SeedValidationError
from exams import services

MSG_BAD_JSON = "the request body must be valid JSON"

IMAGE_FIELDS = {
    "imageID": serializers.UUIDField(),
    "examenID": serializers.UUIDField(),
    "studyInstanceUID": serializers.CharField(),
    "seriesInstanceUID": serializers.CharField(),
    "sopInstanceUID": serializers.CharField(),
    "dateAcquisition": serializers.DateTimeField(),
    "modalite": serializers.CharField(),
    "description": serializers.CharField(),
    "url": serializers.CharField(allow_null=True),
}
ImageMedicale = inline_serializer("ImageMedicaleDto", IMAGE_FIELDS)
ImageMedicaleList = inline_serializer("ImageMedicaleListDto", IMAGE_FIELDS, many=True)
CreateImageMedicale = inline_serializer(
    "CreateImageMedicaleDto",
    {k: v for k, v in IMAGE_FIELDS.items() if k != "imageID"},
)
SeedErrorShape = inline_serializer(
    "SeedError",
    {
        "statusCode": serializers.IntegerField(),
        "message": serializers.CharField(),
        "error": serializers.CharField(),
        "details": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
VALIDATION_EXAMPLE = OpenApiExample(
    "Validation failed",
    status_codes=["400"],
    value={
        "statusCode": 400,
        "message": "Validation failed",
        "error": "Bad Request",
        "details": ["examenID must be a valid UUID", "modalite is required"],
    },
)


class ExamImageCreateView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="exam_image_create",
        request=CreateImageMedicale,
        responses={201: ImageMedicale, 400: SeedErrorShape, 409: SeedErrorShape},
        examples=[VALIDATION_EXAMPLE],
        description=(
            "Register an image under an external exam ID (seed 002). Every invalid field is "
            "listed in `details`; registering the same `sopInstanceUID` twice is a 409. The "
            "image is linked to the stored instance with that SOP Instance UID when you may "
            "see it."
        ),
    )
    def post(self, request: Request) -> Response:
        try:
            data = request.data
        except ParseError:
            raise SeedValidationError([MSG_BAD_JSON]) from None
        image = services.exam_image_create(user=request.user, data=data)
        return Response(services.exam_image_json(image), status=201)


class ExamImagesView(APIView):
    @extend_schema(
        operation_id="exam_images_list",
        parameters=[OpenApiParameter("exam_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: ImageMedicaleList, 404: SeedErrorShape},
        description="Every image of an exam that you may see (seed 002); 404 when none.",
    )
    def get(self, request: Request, exam_id: str) -> Response:
        images = services.exam_images_list(user=request.user, exam_id=exam_id)
        return Response([services.exam_image_json(i) for i in images])


class ExamImageDetailView(APIView):
    @extend_schema(
        operation_id="exam_image_get",
        parameters=[OpenApiParameter("image_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: ImageMedicale, 404: SeedErrorShape},
        description="One registered image (seed 002); 404 when missing or not yours.",
    )
    def get(self, request: Request, image_id: str) -> Response:
        image = services.exam_image_get(user=request.user, image_id=image_id)
        return Response(services.exam_image_json(image))


class DicomUploadView(APIView):
    parser_classes = [MultiPartParser]
    throttle_scope = "uploads"

    @extend_schema(
        operation_id="dicom_upload",
        request={
            "multipart/form-data": inline_serializer(
                "DicomUploadRequest", {"file": serializers.FileField()}
            )
        },
        responses={
            201: inline_serializer(
                "DicomUploadResponse",
                {"success": serializers.BooleanField(), "data": serializers.DictField()},
            ),
            400: SeedErrorShape,
            409: SeedErrorShape,
            413: SeedErrorShape,
        },
        description=(
            "Store one DICOM file (multipart field `file`) through the ingest pipeline and "
            "answer with its UIDs and main tags (seed 002). 201 when stored, 200 when the "
            "identical file was already stored; errors in seed 002's shape."
        ),
    )
    def post(self, request: Request) -> Response:
        result = services.dicom_upload(user=request.user, upload=request.FILES.get("file"))
        return Response(services.upload_json(result), status=201 if result.created else 200)
