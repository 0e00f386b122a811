"""``manage.py jobs_recover``: re-enqueue jobs whose worker died (see jobs.recovery)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from jobs.recovery import jobs_recover


class Command(BaseCommand):
    help = "Re-enqueue unfinished jobs whose worker is gone."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--stale-after",
            type=int,
            default=None,
            help="Seconds without heartbeat after which a worker is dead",
        )

    def handle(self, *args: Any, stale_after: int | None = None, **options: Any) -> None:
        recovered = jobs_recover(stale_after=stale_after)
        self.stdout.write(f"Re-enqueued {len(recovered)} job(s).")
        for job_id in recovered:
            self.stdout.write(f"  {job_id}")
