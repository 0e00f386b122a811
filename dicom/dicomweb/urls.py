"""DICOMweb routes (PS3.18), mounted at ``/dicomweb/``."""

from __future__ import annotations

from django.urls import path

from dicom.dicomweb import views

app_name = "dicomweb"

S = "studies/<str:study>"
SE = S + "/series/<str:series>"
I = SE + "/instances/<str:instance>"  # noqa: E741

urlpatterns = [
    path("studies", views.StudiesView.as_view(), name="studies"),
    path("series", views.SeriesSearchView.as_view(), name="series"),
    path("instances", views.InstanceSearchView.as_view(), name="instances"),
    path(S, views.StudyStoreView.as_view(), name="study"),
    path(S + "/series", views.SeriesSearchView.as_view(), name="study-series"),
    path(S + "/instances", views.InstanceSearchView.as_view(), name="study-instances"),
    path(S + "/metadata", views.MetadataView.as_view(), name="study-metadata"),
    path(S + "/rendered", views.RenderedView.as_view(), name="study-rendered"),
    path(S + "/thumbnail", views.ThumbnailView.as_view(), name="study-thumbnail"),
    path(SE, views.SeriesRetrieveView.as_view(), name="series-retrieve"),
    path(SE + "/instances", views.InstanceSearchView.as_view(), name="series-instances"),
    path(SE + "/metadata", views.MetadataView.as_view(), name="series-metadata"),
    path(SE + "/rendered", views.RenderedView.as_view(), name="series-rendered"),
    path(SE + "/thumbnail", views.ThumbnailView.as_view(), name="series-thumbnail"),
    path(I, views.InstanceRetrieveView.as_view(), name="instance"),
    path(I + "/metadata", views.MetadataView.as_view(), name="instance-metadata"),
    path(I + "/rendered", views.RenderedView.as_view(), name="instance-rendered"),
    path(I + "/thumbnail", views.ThumbnailView.as_view(), name="instance-thumbnail"),
    path(I + "/frames/<str:frames>", views.FramesView.as_view(), name="frames"),
    path(I + "/frames/<str:frame>/rendered", views.RenderedView.as_view(), name="frame-rendered"),
    path(
        I + "/frames/<str:frame>/thumbnail", views.ThumbnailView.as_view(), name="frame-thumbnail"
    ),
    path(I + "/bulkdata/<path:path>", views.BulkdataView.as_view(), name="bulkdata"),
]
