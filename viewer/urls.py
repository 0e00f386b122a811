from django.urls import path

from jobs.api import ExportImagesView
from viewer import annotations_api, anonymize_api, api, pixels_api, views

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
    path("images/", api.ImageLookupView.as_view(), name="image-lookup"),
    path("images/<int:image_id>/", api.ImageDetailView.as_view(), name="image"),
    path("images/<int:image_id>/data/", api.ImageDataView.as_view(), name="image-data"),
    path("images/<int:image_id>/preview/", api.ImagePreviewView.as_view(), name="image-preview"),
    path("images/<int:image_id>/header/", api.ImageHeaderView.as_view(), name="image-header"),
    path("images/<int:image_id>/file/", api.ImageFileView.as_view(), name="image-file"),
    path(
        "images/<int:image_id>/pixels/",
        pixels_api.ImagePixelsView.as_view(),
        name="image-pixels",
    ),
    path("dictionary/", pixels_api.DictionaryView.as_view(), name="dictionary"),
    path("export/images/", ExportImagesView.as_view(), name="export-images"),
    path(
        "measurements/save/",
        annotations_api.MeasurementSaveView.as_view(),
        name="measurement-save",
    ),
    path("measurements/", annotations_api.MeasurementListView.as_view(), name="measurements"),
    path(
        "measurements/<int:measurement_id>/",
        annotations_api.MeasurementDetailView.as_view(),
        name="measurement",
    ),
    path("annotations/save/", annotations_api.AnnotationSaveView.as_view(), name="annotation-save"),
    path("annotations/", annotations_api.AnnotationListView.as_view(), name="annotations"),
    path(
        "annotations/<int:annotation_id>/",
        annotations_api.AnnotationDetailView.as_view(),
        name="annotation",
    ),
]

urlpatterns = [
    path("", views.study_list, name="study-list"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("studies/<int:study_id>/", views.study_view, name="study-view"),
    *[path(f"api/{p.pattern}", p.callback, name=p.name) for p in api_urlpatterns],
]
