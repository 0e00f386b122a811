from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Image analysis"

    def ready(self) -> None:
        # Registers the "series_analysis" job kind, in the web processes and the workers.
        from analysis import jobs  # noqa: F401
