"""Only the analysis routes, at their real paths (for tests while other apps are in flux)."""

from django.urls import include, path

urlpatterns = [path("viewer/api/", include("analysis.urls"))]
