"""Where a native upload's time goes: wall time per upload of each ingest step.

Runs uploads in-process through Django's test client (no HTTP server, no uvicorn), against
the database, Redis and storage of ``bench/env.sh``, and times each step by wrapping the
function that does it. The client's own work (encoding the multipart body) is in the total.

    source bench/env.sh && bash bench/reset.sh
    .venv-bench/bin/python bench/ingest_breakdown.py --corpus /tmp/bench-corpus/large -n 300
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402
from rest_framework import request as drf_request  # noqa: E402
from rest_framework import views as drf_views  # noqa: E402

from dicom import ingest  # noqa: E402

spent: collections.Counter = collections.Counter()


def timed(owner: object, name: str, label: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    setattr(owner, name, wrapper)


STEPS = [
    (drf_request.Request, "_load_data_and_files", "multipart parsing and staging"),
    (drf_views.APIView, "perform_authentication", "authentication"),
    (drf_views.APIView, "check_throttles", "rate limits"),
    (ingest, "ingest_header_read", "header read and checks"),
    (ingest, "header_scan", "  of which the one-pass scan"),
    (ingest.pydicom, "dcmread", "  of which pydicom's read (files the scan leaves)"),
    (ingest, "header_json", "  of which their DICOM JSON"),
    (ingest, "series_with_study", "SQL: the series with its study"),
    (ingest, "rows_insert_linked", "SQL: the instance with its audit record"),
    (ingest, "rows_insert_into_owned_series", "SQL: both in one statement (a stored series)"),
    (ingest, "blob_put_staged", "flush and rename of the file"),
    (transaction.Atomic, "__exit__", "transaction ends (the commit)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="/tmp/bench-corpus/large")
    parser.add_argument("-n", type=int, default=300, help="uploads (new instances)")
    parser.add_argument("--token-file", default="/tmp/lightbox-bench/token")
    args = parser.parse_args()
    for owner, name, label in STEPS:
        timed(owner, name, label)
    token = Path(args.token_file).read_text().strip()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    files = sorted(Path(args.corpus).rglob("*.dcm"))[: args.n]
    total = 0.0
    for path in files:
        with path.open("rb") as fh:
            start = time.perf_counter()
            response = client.post("/viewer/api/upload/", {"files": fh}, SERVER_NAME="127.0.0.1")
            total += time.perf_counter() - start
        if response.status_code not in (200, 201):
            sys.exit(f"upload of {path.name} answered {response.status_code}")
    n = len(files)
    print(f"{n} uploads, {total / n * 1000:.2f} ms each")
    for _, _, label in STEPS:
        print(f"  {label:50s} {spent[label] / n * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
