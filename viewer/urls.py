from django.urls import path

from jobs.api import ExportImagesView
from viewer import anonymize_api, api

app_name = "viewer"

api_urlpatterns = [
    path("upload/", api.UploadView.as_view(), name="upload"),
    path(
        "studies/<int:study_id>/anonymize/",
        anonymize_api.StudyAnonymizeView.as_view(),
        name="study-anonymize",
    ),
    path("anonymize/batch/", anonymize_api.BatchAnonymizeView.as_view(), name="anonymize-batch"),
    path("studies/", api.StudyListView.as_view(), name="studies"),
    path("studies/<int:study_id>/", api.StudyDetailView.as_view(), name="study"),
    path("studies/<int:study_id>/images/", api.StudyImagesView.as_view(), name="study-images"),
    path("studies/<int:study_id>/series/", api.StudySeriesView.as_view(), name="study-series"),
    path("series/<int:series_id>/images/", api.SeriesImagesView.as_view(), name="series-images"),
    path("images/<int:image_id>/", api.ImageDetailView.as_view(), name="image"),
    path("images/<int:image_id>/data/", api.ImageDataView.as_view(), name="image-data"),
    path("images/<int:image_id>/preview/", api.ImagePreviewView.as_view(), name="image-preview"),
    path("images/<int:image_id>/header/", api.ImageHeaderView.as_view(), name="image-header"),
    path("images/<int:image_id>/file/", api.ImageFileView.as_view(), name="image-file"),
    path("export/images/", ExportImagesView.as_view(), name="export-images"),
]

urlpatterns = [
    *[path(f"api/{p.pattern}", p.callback, name=p.name) for p in api_urlpatterns],
]
