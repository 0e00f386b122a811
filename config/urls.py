from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz, readyz
from viewer.anonymize_api import PreprocessedDicomView

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/health/", healthz),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("viewer/", include("viewer.urls")),
    path("viewer/api/", include("analysis.urls")),
    path("dicomweb/", include("dicom.dicomweb.urls")),
    path("", include("developers.urls")),
    path("", include("jobs.urls")),
    path("", include("exams.urls")),
    path(
        "upload/<int:upload_id>/preprocessed-dicom",
        PreprocessedDicomView.as_view(),
        name="upload-preprocessed-dicom",
    ),
    path("", RedirectView.as_view(url="/viewer/", permanent=False)),
]
