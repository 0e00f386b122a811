"""The analysis routes at their real paths, plus the admin and the OpenAPI schema.

The analysis tests use this URLconf so that they do not depend on every other app's routes
importing cleanly; ``config/urls.py`` mounts ``analysis.urls`` at the same prefix.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("viewer/api/", include("analysis.urls")),
]
