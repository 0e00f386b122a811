#!/usr/bin/env python3
"""Run the shared DICOM benchmark harness (``../shared/bench/dicombench.py``) against
Lightbox, completing its ``ours`` route table with the native preview.

The harness is imported, not copied: only the routes it cannot know are set here. The
preview route needs the image id of a SOP Instance UID, which Lightbox answers at
``GET /viewer/api/images/?sop_instance_uid=``. ``native_upload`` sends each instance as the
raw body (``Content-Type: application/dicom``), as the harness does for Orthanc's
``POST /instances``; ``form_upload`` is the same endpoint with the multipart field ``files``
(the harness's own table entry for ``native_upload`` until 2026-12-04). Every argument is
passed to the harness, e.g.::

    python bench/lightbox_bench.py --flavour ours --base-url http://127.0.0.1:8000 \
        --corpus /tmp/bench-corpus/large --header "Authorization: Bearer $TOKEN" ...
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HARNESS = Path(
    os.environ.get("BENCH_HARNESS", Path(__file__).resolve().parents[2] / "shared" / "bench")
)
sys.path.insert(0, str(HARNESS))

import dicombench  # noqa: E402

dicombench.ROUTES["ours"]["preview"] = dicombench.Route(
    "GET", "/viewer/api/images/{native_id}/preview/", accept="image/png"
)
dicombench.ROUTES["ours"]["form_upload"] = dicombench.ROUTES["ours"]["native_upload"]
dicombench.ROUTES["ours"]["native_upload"] = dicombench.Route(
    "POST", "/viewer/api/upload/", upload="raw"
)
dicombench.ROUTES["ours"]["native_id_lookup"] = dicombench.Route("GET", "/viewer/api/images/")


def _native_id(self, inst):  # type: ignore[no-untyped-def]
    route = self.client.route("native_id_lookup")
    resp = self.client.request(route, params={"sop_instance_uid": inst["sop_uid"]})
    resp.raise_for_status()
    return resp.json()[0]["id"]


dicombench.Bench.native_id = _native_id

if __name__ == "__main__":
    sys.exit(dicombench.main())
