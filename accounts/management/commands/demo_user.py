"""Create (or reset) the demo login of the embedded default set-up and print it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_EMAIL = "demo@lightbox.local"
DEMO_PASSWORD = "lightbox-demo"


class Command(BaseCommand):
    help = "Create the demo administrator login (development only) and print it."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_user only runs with DEBUG on; use createsuperuser.")
        user, _ = get_user_model().objects.get_or_create(email=DEMO_EMAIL)
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}  "
                "(viewer: http://127.0.0.1:8000/viewer/  admin: /admin/  API docs: /api/docs/)"
            )
        )
