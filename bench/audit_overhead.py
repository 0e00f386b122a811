"""What does one audit record cost? Prints microseconds per ``audit_record()`` call.

Runs against a fresh SQLite file in a temporary folder (WAL, synchronous=NORMAL, as
configured in settings), migrated from scratch, or against ``DATABASE_URL`` if you set it
(use a throw-away database: the bench writes rows).

    .venv/bin/python bench/audit_overhead.py [N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TMP = tempfile.mkdtemp(prefix="lightbox-audit-bench-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{TMP}/bench.sqlite3")
os.environ.setdefault("LIGHTBOX_VAR_DIR", TMP)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from accounts.models import User  # noqa: E402
from developers.audit import audit_record  # noqa: E402


def timed(fn, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def report(label: str, samples: list[float]) -> None:
    samples.sort()
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(
        f"{label:<38} mean {statistics.mean(samples):7.1f} µs   "
        f"median {statistics.median(samples):7.1f} µs   p99 {p99:7.1f} µs"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    call_command("migrate", verbosity=0)
    user = User.objects.create_user(email="bench@example.com", password="x")
    request = RequestFactory().get("/viewer/api/images/1/preview/", REMOTE_ADDR="192.0.2.1")
    request.user = user

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    def record() -> None:
        audit_record(request=request, action="render", detail="bench")

    def record_in_transaction() -> None:
        with transaction.atomic():
            audit_record(request=request, action="render", detail="bench")

    timed(record, 100)  # warm up
    print(f"database: {connection.vendor} ({connection.settings_dict['NAME']}), n={n}")
    report("SELECT 1 (baseline round trip)", timed(select_one, n))
    report("audit_record (autocommit)", timed(record, n))
    report("audit_record (inside a transaction)", timed(record_in_transaction, n))


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
