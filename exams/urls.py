"""Seed 002's routes, at the root of the site (no trailing slashes, as the seed writes them)."""

from django.urls import path

from exams import api

urlpatterns = [
    path("examens-medicaux/images", api.ExamImageCreateView.as_view(), name="exam-image-create"),
    path(
        "examens-medicaux/images/<str:image_id>",
        api.ExamImageDetailView.as_view(),
        name="exam-image",
    ),
    path("examens-medicaux/<str:exam_id>/images", api.ExamImagesView.as_view(), name="exam-images"),
    path("dicom/upload", api.DicomUploadView.as_view(), name="dicom-upload"),
]
