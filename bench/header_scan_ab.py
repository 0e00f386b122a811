"""The one-pass header scan against pydicom's read, uploads alternating one by one.

Uploads go in-process through Django's test client (as ``ingest_breakdown.py``) against the
database, Redis and storage of ``bench/env.sh``; every other upload has the scan switched off
(``dicom.ingest.header_scan`` answering None, so that pydicom reads the file), which cancels
the machine's drift between the two.

    source bench/env.sh && bash bench/reset.sh
    .venv-bench/bin/python bench/header_scan_ab.py --corpus /tmp/bench-corpus/large --start 0 -n 600
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.test import Client  # noqa: E402

from dicom import ingest  # noqa: E402


def scan_off(*args: object, **kwargs: object) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="/tmp/bench-corpus/large")
    parser.add_argument("--start", type=int, default=0, help="first file (sorted by path)")
    parser.add_argument("-n", type=int, default=600, help="uploads (new instances)")
    parser.add_argument("--warm-up", type=int, default=20, help="first uploads not counted")
    parser.add_argument("--token-file", default="/tmp/lightbox-bench/token")
    args = parser.parse_args()
    token = Path(args.token_file).read_text().strip()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    files = sorted(Path(args.corpus).rglob("*.dcm"))[args.start : args.start + args.n]
    readers = {"scan": ingest.header_scan, "pydicom": scan_off}
    wall: dict[str, list[float]] = {name: [] for name in readers}
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    for i, path in enumerate(files):
        name = "scan" if i % 2 == 0 else "pydicom"
        ingest.header_scan = readers[name]
        with path.open("rb") as fh:
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.post("/viewer/api/upload/", {"files": fh}, SERVER_NAME="127.0.0.1")
            if i >= args.warm_up:  # the first requests import and warm what the rest reuse
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        if response.status_code not in (200, 201) or response.json().get("stored") != 1:
            sys.exit(f"upload of {path.name} answered {response.status_code}: not stored")
    for name in readers:
        print(
            f"{name:8s} {len(wall[name])} uploads: wall median"
            f" {statistics.median(wall[name]) * 1000:.2f} ms, mean"
            f" {statistics.mean(wall[name]) * 1000:.2f} ms; CPU mean"
            f" {statistics.mean(cpu[name]) * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
