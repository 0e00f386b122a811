"""``manage.py dicom_scp``: run the DICOM C-ECHO/C-STORE/C-FIND SCP until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from dicom.dimse.scp import ScpConfig, scp_start


class Command(BaseCommand):
    help = "Run the DICOM SCP (C-ECHO, C-STORE, C-FIND) on DICOM_SCP_HOST:DICOM_SCP_PORT."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.DICOM_SCP_HOST)
        parser.add_argument("--port", type=int, default=settings.DICOM_SCP_PORT)
        parser.add_argument("--ae-title", default=settings.DICOM_SCP_AE_TITLE)

    def handle(self, *args: Any, **options: Any) -> None:
        base = ScpConfig.from_settings()
        config = ScpConfig(ae_title=options["ae_title"], allowed=base.allowed)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server = scp_start(host=options["host"], port=options["port"], config=config)
        self.stdout.write(
            f"DICOM SCP {config.ae_title} listening on {options['host']}:{options['port']}"
        )
        self.stdout.flush()
        while not stop.wait(0.5):
            pass
        server.shutdown()
        self.stdout.write("DICOM SCP stopped")
        self.stdout.flush()
