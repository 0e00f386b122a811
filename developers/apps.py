from django.apps import AppConfig


class DevelopersConfig(AppConfig):
    name = "developers"
    verbose_name = "Developer platform"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save

        from developers import schema  # noqa: F401 - registers the OpenAPI auth scheme
        from developers.authentication import user_cache_forget

        post_save.connect(user_cache_forget, sender=get_user_model())
        post_delete.connect(user_cache_forget, sender=get_user_model())
