#!/usr/bin/env python3
"""Peak server memory while uploading one large DICOM file (default 200 MB).

Samples the resident memory (VmRSS) of the server process tree every 20 ms while the
upload runs and reports idle, peak and peak minus idle. Usage::

    python bench/upload_memory.py --base-url http://127.0.0.1:8000 \
        --pid-file /tmp/lightbox-bench.pid --token "$(cat /tmp/lightbox-bench/token)"
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def big_dicom(path: Path, megabytes: int) -> Path:
    frames = max(1, megabytes * 1024 * 1024 // (512 * 512 * 2))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Rows = ds.Columns = 512
    ds.NumberOfFrames = frames
    pixels = np.random.default_rng(1).integers(0, 4000, (frames, 512, 512), dtype=np.uint16)
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def tree_rss_kb(pid: int) -> int:
    total = 0
    pids = [pid]
    for child in Path("/proc").glob(f"{pid}/task/*/children"):
        pids += [int(p) for p in child.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", default="http://127.0.0.1:8000")
    ap.add_argument("--pid-file", default="/tmp/lightbox-bench.pid")
    ap.add_argument("--token", required=True)
    ap.add_argument("--megabytes", type=int, default=200)
    ap.add_argument("--out")
    args = ap.parse_args()
    pid = int(Path(args.pid_file).read_text())
    path = big_dicom(Path(f"/tmp/lightbox-bench-{args.megabytes}mb.dcm"), args.megabytes)
    idle = tree_rss_kb(pid)
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    with path.open("rb") as fh:
        response = requests.post(
            f"{args.base_url}/viewer/api/upload/",
            headers={"Authorization": f"Bearer {args.token}"},
            files={"files": (path.name, fh)},
            timeout=600,
        )
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    result = {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "status": response.status_code,
        "seconds": round(elapsed, 2),
        "idle_rss_mb": round(idle / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "peak_minus_idle_mb": round((peak - idle) / 1024, 1),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    path.unlink()


if __name__ == "__main__":
    main()
