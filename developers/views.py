"""Seed 003's developer API: JWT, developer profiles, API keys, activity summary and the
stateless ``/api/dicom/read/file/``. Thin views over :mod:`developers.services`,
:mod:`developers.quotas` and :mod:`developers.reading`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.tokens import EmailTokenObtainPairSerializer
from developers import reading, services
from developers.audit import audit_record
from developers.authentication import api_key_from_request
from developers.quotas import MeteredMixin, usage_summary
from developers.throttling import ScopedThrottle
from dicom.errors import LightboxError

READ_FILE_ENDPOINT = "/api/dicom/read/file/"
MSG_NO_FILE = "Send the DICOM file (or a ZIP) in the multipart field 'file'."
MSG_KEYS_NEED_LOGIN = "API keys are managed with a JWT or a session, not with an API key."

ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="`error`, `code`")


class NotApiKey(permissions.BasePermission):
    """Key management needs a login (JWT or session): a leaked key can't mint more keys."""

    message = MSG_KEYS_NEED_LOGIN

    def has_permission(self, request: Request, view: APIView) -> bool:
        return api_key_from_request(request) is None


# --- JWT --------------------------------------------------------------------------------


class TokenView(TokenObtainPairView):
    serializer_class = EmailTokenObtainPairSerializer
    throttle_classes = [ScopedThrottle]
    throttle_scope = "token"

    @extend_schema(
        operation_id="token_obtain",
        tags=["developers"],
        description=(
            "Exchange `email` + `password` for an `access` JWT (send it as "
            "`Authorization: Bearer <access>`) and a `refresh` token. Wrong credentials "
            "answer 401; attempts are throttled per client (scope `token`, 429 with "
            "`Retry-After`)."
        ),
        responses={200: OpenApiTypes.OBJECT, 401: ERROR, 429: ERROR},
    )
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().post(request, *args, **kwargs)


class TokenRefresh(TokenRefreshView):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "token"

    @extend_schema(
        operation_id="token_refresh",
        tags=["developers"],
        description=(
            "Exchange a `refresh` token for a new `access` and a new `refresh` token. The "
            "old refresh token is blacklisted (rotation): using it again answers 401."
        ),
        responses={200: OpenApiTypes.OBJECT, 401: ERROR, 429: ERROR},
    )
    def post(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().post(request, *args, **kwargs)


# --- profiles ---------------------------------------------------------------------------


class ProfileView(APIView):
    class DeveloperProfileInputSerializer(serializers.Serializer):
        purpose = serializers.CharField(max_length=255)
        organization = serializers.CharField(max_length=255, required=False, allow_blank=True)

    class DeveloperProfileSerializer(serializers.Serializer):
        purpose = serializers.CharField()
        organization = serializers.CharField()

    @extend_schema(
        operation_id="developer_profile_get",
        tags=["developers"],
        responses={200: DeveloperProfileSerializer, 403: ERROR},
        description="The caller's developer profile; 403 when they have none yet.",
    )
    def get(self, request: Request) -> Response:
        profile = services.profile_get(user=request.user)
        return Response(self.DeveloperProfileSerializer(profile).data)

    @extend_schema(
        operation_id="developer_profile_create",
        tags=["developers"],
        request=DeveloperProfileInputSerializer,
        responses={201: DeveloperProfileSerializer, 400: ERROR, 409: ERROR},
        description="Create the caller's developer profile (one per user; a second is 409).",
    )
    def post(self, request: Request) -> Response:
        data = self.DeveloperProfileInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.profile_create(
            user=request.user,
            purpose=data.validated_data["purpose"],
            organization=data.validated_data.get("organization", ""),
        )
        body = self.DeveloperProfileSerializer(profile).data
        return Response(body, status=status.HTTP_201_CREATED)


class ActivitySummaryView(APIView):
    @extend_schema(
        operation_id="developer_activity_summary",
        tags=["developers"],
        responses={200: OpenApiTypes.OBJECT, 403: ERROR},
        examples=[
            OpenApiExample(
                "Summary",
                value={
                    "daily_activity": [{"day": "2025-01-05", "count": 1}],
                    "monthly_total": 1,
                    "endpoints": [
                        {
                            "endpoint": READ_FILE_ENDPOINT,
                            "quota": 1000,
                            "monthly_total": 1,
                            "remaining": 999,
                            "daily_activity": [{"day": "2025-01-05", "count": 1}],
                        }
                    ],
                },
                response_only=True,
            )
        ],
        description=(
            "Metered requests of the current UTC month: `daily_activity` (`day`, `count`) "
            "and `monthly_total` over all endpoints, then `endpoints` with each one's "
            "`quota`, `monthly_total`, `remaining` and `daily_activity`."
        ),
    )
    def get(self, request: Request) -> Response:
        profile = services.profile_get(user=request.user)
        return Response(usage_summary(profile=profile))


# --- API keys ---------------------------------------------------------------------------


class ApiKeyOutput(serializers.Serializer):
    id = serializers.CharField(source="prefix")
    name = serializers.CharField()
    created = serializers.DateTimeField()
    expiry_date = serializers.DateTimeField(allow_null=True)
    revoked = serializers.BooleanField()


class ApiKeyListView(APIView):
    permission_classes = [permissions.IsAuthenticated, NotApiKey]

    class ApiKeyCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=50)

    class ApiKeyCreatedSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()
        key = serializers.CharField()

    @extend_schema(
        operation_id="api_keys_list",
        tags=["developers"],
        responses={200: ApiKeyOutput(many=True), 403: ERROR},
        description="The caller's API keys (never the keys themselves).",
    )
    def get(self, request: Request) -> Response:
        return Response(ApiKeyOutput(services.api_keys_of(user=request.user), many=True).data)

    @extend_schema(
        operation_id="api_keys_create",
        tags=["developers"],
        request=ApiKeyCreateInputSerializer,
        responses={201: ApiKeyCreatedSerializer, 400: ERROR, 403: ERROR},
        description=(
            "Create an API key for the caller's developer profile (403 without one). The "
            "`key` is shown only in this answer; Lightbox stores its hash. Use it as "
            "`Authorization: ApiKey <key>`."
        ),
    )
    def post(self, request: Request) -> Response:
        data = self.ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, key = services.api_key_create(request=request, name=data.validated_data["name"])
        body = {"id": api_key.prefix, "name": api_key.name, "key": key}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDeleteView(APIView):
    permission_classes = [permissions.IsAuthenticated, NotApiKey]

    @extend_schema(
        operation_id="api_keys_delete",
        tags=["developers"],
        responses={204: None, 404: ERROR},
        description=(
            "Delete one of the caller's keys by `id`; it stops working at once. Another "
            "user's key answers 404."
        ),
    )
    def delete(self, request: Request, pk: str) -> Response:
        services.api_key_delete(request=request, key_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- read/file --------------------------------------------------------------------------


class ReadFileView(MeteredMixin, APIView):
    parser_classes = [MultiPartParser]
    throttle_scope = "uploads"
    metered_endpoint = READ_FILE_ENDPOINT

    @extend_schema(
        operation_id="dicom_read_file",
        tags=["developers"],
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "fields": {"type": "string", "example": "PatientID,StudyDate,Modality"},
                    "return_format": {"type": "string", "enum": ["png", "jpeg", "gif"]},
                },
                "required": ["file"],
            }
        },
        responses={
            200: OpenApiTypes.OBJECT,
            400: ERROR,
            403: ERROR,
            413: ERROR,
            415: ERROR,
            422: ERROR,
            429: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Monthly quota used up: `error`, `quota`, `requests_used`; "
                "`Retry-After` gives the seconds to the next UTC month.",
            ),
        },
        description=(
            "Read a DICOM file without storing anything (seed 003). Multipart `file` (a "
            "DICOM file such as `.dcm`/`.DCM`, or a `.zip`), optional `fields` "
            "(comma-separated DICOM keywords; unknown keywords are a 400, keywords absent "
            "from the file are left out) and `return_format` (`png`, `jpeg`, `gif`; "
            "default png). Answers the attributes as keyword → string (sequences as their "
            "items' element lines; binary values as `<bulk data: N bytes>`), `ImageFormat` "
            "and `Images`: every frame, rendered by the shared renderer, base64. A ZIP "
            "answers a JSON array with one such object per DICOM member (plus `FileName`; "
            "a member that can't be read carries `error`/`code` instead). Metered: each "
            "call is charged to the caller's monthly quota before it runs; callers need a "
            "developer profile (403 otherwise)."
        ),
    )
    def post(self, request: Request) -> Response:
        fmt = reading.read_format(request.data.get("return_format"))
        fields = reading.read_fields(request.data.get("fields"))
        upload = request.FILES.get("file")
        if upload is None:
            raise LightboxError(MSG_NO_FILE, code="no_file")
        body = reading.upload_read(
            stream=upload, filename=upload.name or "upload", fields=fields, fmt=fmt
        )
        count = len(body) if isinstance(body, list) else 1
        audit_record(request=request, action="render", detail=f"read/file: {count} object(s)")
        return Response(body)
