from django.apps import AppConfig


class DevelopersConfig(AppConfig):
    name = "developers"
    verbose_name = "Developer platform"

    def ready(self) -> None:
        from developers import schema  # noqa: F401 - registers the OpenAPI auth scheme
