#!/usr/bin/env python3
"""Load test: N uploaders and N readers against a running Lightbox for a fixed time.

Uploaders send distinct CT instances (CT_small with fresh UIDs, so every upload stores a
new instance); readers cycle through the study list, a study's images, a preview of a
random image, a DICOMweb QIDO search and an original download. Every request is bounded
by a timeout and the run stops by itself. Reports throughput, p50/p95 per operation and
every non-2xx/exception as an error. Usage::

    python bench/load_test.py --base-url http://127.0.0.1:8000 \
        --token "$(cat /tmp/lightbox-bench/token)" --uploaders 16 --readers 16 --seconds 300
"""

from __future__ import annotations

import argparse
import io
import json
import random
import threading
import time
from collections import defaultdict
from pathlib import Path

import pydicom
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

TEMPLATE = Path(get_testdata_file("CT_small.dcm")).read_bytes()


def instance_bytes(study: str, series: str) -> bytes:
    # A fresh parse per upload: Dataset.copy() is shallow, and threads sharing one
    # element dictionary would send each other's UIDs.
    ds = pydicom.dcmread(io.BytesIO(TEMPLATE))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.image_ids: list[int] = []
        self.study_ids: list[int] = []

    def record(self, op: str, seconds: float, error: str | None = None) -> None:
        with self.lock:
            if error:
                self.errors[op].append(error)
            else:
                self.latency[op].append(seconds)


def timed(stats: Stats, op: str, session: requests.Session, method: str, url: str, **kw):
    started = time.perf_counter()
    try:
        response = session.request(method, url, timeout=60, **kw)
        if response.status_code >= 300:
            stats.record(op, 0, f"HTTP {response.status_code}: {response.text[:120]}")
            return None
        response.content  # noqa: B018 - read the whole body
        stats.record(op, time.perf_counter() - started)
        return response
    except requests.RequestException as exc:
        stats.record(op, 0, type(exc).__name__)
        return None


def uploader(base: str, headers: dict, stats: Stats, stop: float) -> None:
    session = requests.Session()
    session.headers.update(headers)
    study, series = generate_uid(), generate_uid()
    sent = 0
    while time.monotonic() < stop:
        if sent % 20 == 0:
            study, series = generate_uid(), generate_uid()
        files = {"files": ("ct.dcm", instance_bytes(study, series))}
        response = timed(
            stats, "upload", session, "POST", f"{base}/viewer/api/upload/", files=files
        )
        sent += 1
        if response is not None:
            body = response.json()["uploaded_files"][0]
            with stats.lock:
                stats.image_ids.append(body["image_id"])
                stats.study_ids.append(body["study_id"])


def reader(base: str, headers: dict, stats: Stats, stop: float, seed: int) -> None:
    session = requests.Session()
    session.headers.update(headers)
    rng = random.Random(seed)
    while time.monotonic() < stop:
        with stats.lock:
            image = rng.choice(stats.image_ids) if stats.image_ids else None
            study = rng.choice(stats.study_ids) if stats.study_ids else None
        op = rng.choice(["list", "images", "preview", "qido", "file"])
        if op == "list":
            timed(
                stats, op, session, "GET", f"{base}/viewer/api/studies/", params={"page_size": 50}
            )
        elif op == "qido":
            timed(
                stats,
                op,
                session,
                "GET",
                f"{base}/dicomweb/studies",
                params={"PatientName": "Compressed*", "limit": 50},
                headers={"Accept": "application/dicom+json"},
            )
        elif study is None or image is None:
            time.sleep(0.05)
        elif op == "images":
            timed(stats, op, session, "GET", f"{base}/viewer/api/studies/{study}/images/")
        elif op == "preview":
            timed(stats, op, session, "GET", f"{base}/viewer/api/images/{image}/preview/")
        else:
            timed(stats, op, session, "GET", f"{base}/viewer/api/images/{image}/file/")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", default="http://127.0.0.1:8000")
    ap.add_argument("--token", required=True)
    ap.add_argument("--uploaders", type=int, default=16)
    ap.add_argument("--readers", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--label", default="")
    ap.add_argument("--out")
    args = ap.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"}
    stats = Stats()
    stop = time.monotonic() + args.seconds
    threads = [
        threading.Thread(target=uploader, args=(args.base_url, headers, stats, stop))
        for _ in range(args.uploaders)
    ]
    threads += [
        threading.Thread(target=reader, args=(args.base_url, headers, stats, stop, i))
        for i in range(args.readers)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    ops = sorted(set(stats.latency) | set(stats.errors))
    result = {
        "label": args.label,
        "seconds": round(wall, 1),
        "uploaders": args.uploaders,
        "readers": args.readers,
        "errors": sum(len(v) for v in stats.errors.values()),
        "error_samples": {op: stats.errors[op][:5] for op in stats.errors},
        "operations": {
            op: {
                "count": len(stats.latency[op]),
                "per_second": round(len(stats.latency[op]) / wall, 1),
                "p50_ms": round((percentile(stats.latency[op], 50) or 0) * 1000, 1),
                "p95_ms": round((percentile(stats.latency[op], 95) or 0) * 1000, 1),
                "errors": len(stats.errors[op]),
            }
            for op in ops
        },
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
