from django.urls import path

from analysis import api

app_name = "analysis"

urlpatterns = [
    path("images/<int:image_id>/analyze/", api.AnalyzeView.as_view(), name="analyze"),
    path("images/<int:image_id>/analyses/", api.AnalysesListView.as_view(), name="analyses"),
    path("images/<int:image_id>/predict/", api.PredictView.as_view(), name="predict"),
    path("series/<int:series_id>/analyze/", api.SeriesAnalyzeView.as_view(), name="series-analyze"),
    path("analysis-jobs/<str:job_id>/", api.AnalysisJobView.as_view(), name="analysis-job"),
]
