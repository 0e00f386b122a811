"""``manage.py jobs_worker``: django-tasks-db's ``db_worker`` plus job recovery.

Before taking tasks it re-enqueues the jobs of dead workers (:mod:`jobs.recovery`); while
it runs, a watcher thread beats for the job in progress and repeats that recovery every
``LIGHTBOX_JOB_HEARTBEAT_SECONDS``. Its worker id is ``host:pid``, so a worker restarted on
the same host sees at once that the previous process is gone. Every ``db_worker`` option
works (``--batch``, ``--max-tasks``, ``--queue-name``...); autoreload is off by default.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from jobs.recovery import heartbeat_touch, jobs_recover

logger = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()[:50]}:{os.getpid()}"


class Command(DbWorkerCommand):
    help = "Run the background worker (db_worker) with recovery of jobs whose worker died."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        # Poll every 0.25 s (django-tasks' default is 1 s): a batch's parallel tasks start
        # together on several workers instead of one worker doing a short batch alone.
        parser.set_defaults(reload=False, worker_id=default_worker_id(), interval=0.25)

    def handle(self, *args: Any, **options: Any) -> None:
        self.configure_logging(options["verbosity"])
        recovered = jobs_recover()
        if recovered:
            self.stdout.write(f"Re-enqueued {len(recovered)} interrupted job(s).")
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(stop,), name="jobs-watch", daemon=True)
        watcher.start()
        try:
            super().handle(*args, **options)
        finally:
            stop.set()


def _watch(stop: threading.Event) -> None:
    interval = max(1, settings.LIGHTBOX_JOB_HEARTBEAT_SECONDS)
    while not stop.wait(interval):
        try:
            close_old_connections()
            heartbeat_touch()
            jobs_recover()
        except Exception:
            logger.exception("job watcher pass failed")
        finally:
            connection.close()
