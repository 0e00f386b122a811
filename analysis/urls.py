from django.urls import path

from analysis import api

app_name = "analysis"

urlpatterns = [
    path("images/<int:image_id>/analyze/", api.AnalyzeView.as_view(), name="analyze"),
    path("images/<int:image_id>/analyses/", api.AnalysesListView.as_view(), name="analyses"),
    path("images/<int:image_id>/predict/", api.PredictView.as_view(), name="predict"),
]
