"""Seed 001's upload service at the site root, and the jobs API."""

from django.urls import path

from jobs import api

urlpatterns = [
    path("upload", api.UploadView.as_view(), name="upload-single"),
    path("upload/batch", api.BatchUploadView.as_view(), name="upload-batch"),
    path(
        "upload/batch/<str:batch_id>/status",
        api.BatchStatusView.as_view(),
        name="upload-batch-status",
    ),
    path(
        "upload/batch/<str:batch_id>/files", api.BatchFilesView.as_view(), name="upload-batch-files"
    ),
    path("upload/<int:upload_id>/details", api.UploadDetailsView.as_view(), name="upload-details"),
    path("user/<int:user_id>/batches", api.UserBatchesView.as_view(), name="user-batches"),
    path("user/<int:user_id>/uploads", api.UserUploadsView.as_view(), name="user-uploads"),
    path("stats", api.StatsView.as_view(), name="upload-stats"),
    path("jobs/", api.JobListView.as_view(), name="jobs"),
    path("jobs/<str:job_id>/", api.JobDetailView.as_view(), name="job"),
    path("jobs/<str:job_id>/result/", api.JobResultView.as_view(), name="job-result"),
]
