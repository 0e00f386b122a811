"""Seed 003's routes, at the root of the site, and study sharing under the viewer API
(``/viewer/api/studies/<id>/share/``; those views live in :mod:`viewer.sharing_api`)."""

from django.urls import path

from developers import views
from viewer import sharing_api

urlpatterns = [
    path("api/token/", views.TokenView.as_view(), name="token"),
    path("api/token/refresh/", views.TokenRefresh.as_view(), name="token-refresh"),
    path("api/developer/profiles/", views.ProfileView.as_view(), name="developer-profile"),
    path(
        "api/developer/profiles/activity-summary/",
        views.ActivitySummaryView.as_view(),
        name="developer-activity-summary",
    ),
    path("api-keys/", views.ApiKeyListView.as_view(), name="api-keys"),
    path("api-keys/delete/<str:pk>/", views.ApiKeyDeleteView.as_view(), name="api-key-delete"),
    path("api/dicom/read/file/", views.ReadFileView.as_view(), name="dicom-read-file"),
    path(
        "viewer/api/studies/<int:study_id>/share/",
        sharing_api.StudyShareView.as_view(),
        name="study-share",
    ),
    path(
        "viewer/api/studies/<int:study_id>/share/<int:group_id>/",
        sharing_api.StudyUnshareView.as_view(),
        name="study-unshare",
    ),
]
