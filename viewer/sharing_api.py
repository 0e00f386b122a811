"""``/viewer/api/studies/<id>/share/``: the owner (or staff) shares a study with a group."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from developers.audit import audit_record
from dicom import selectors, sharing

ERROR = OpenApiResponse(OpenApiTypes.OBJECT, description="`error`, `code`")


class StudySharesSerializer(serializers.Serializer):
    study_id = serializers.IntegerField()
    shared_with = serializers.ListField(child=serializers.DictField())


class StudyShareView(APIView):
    class StudyShareInputSerializer(serializers.Serializer):
        group = serializers.CharField(help_text="Group name or id")

    @extend_schema(
        operation_id="viewer_study_shares",
        tags=["sharing"],
        responses={200: StudySharesSerializer, 404: ERROR},
        description="The groups a study is shared with (404 if the caller can't see it).",
    )
    def get(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        return Response({"study_id": study.pk, "shared_with": sharing.study_groups(study=study)})

    @extend_schema(
        operation_id="viewer_study_share",
        tags=["sharing"],
        request=StudyShareInputSerializer,
        responses={
            200: StudySharesSerializer,
            201: StudySharesSerializer,
            400: ERROR,
            403: ERROR,
            404: ERROR,
        },
        description=(
            'Share the study with a group (`{"group": "<name or id>"}`): its members '
            "then see the study everywhere. Owner or staff only (403 for a member of a "
            "group it is shared with, 404 for anyone who can't see it). 201 when newly "
            "shared, 200 when it already was."
        ),
    )
    def post(self, request: Request, study_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        data = self.StudyShareInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        group = sharing.group_resolve(value=data.validated_data["group"])
        created = sharing.study_share(study=study, group=group, by=request.user)
        audit_record(request=request, action="share", study=study, detail=f"group {group.pk}")
        body = {"study_id": study.pk, "shared_with": sharing.study_groups(study=study)}
        return Response(body, status=201 if created else 200)


class StudyUnshareView(APIView):
    @extend_schema(
        operation_id="viewer_study_unshare",
        tags=["sharing"],
        responses={204: None, 403: ERROR, 404: ERROR},
        description="Stop sharing the study with a group. Owner or staff only.",
    )
    def delete(self, request: Request, study_id: int, group_id: int) -> Response:
        study = selectors.study_get(user=request.user, pk=study_id)
        sharing.study_unshare(study=study, group_id=group_id, by=request.user)
        audit_record(request=request, action="unshare", study=study, detail=f"group {group_id}")
        return Response(status=204)
