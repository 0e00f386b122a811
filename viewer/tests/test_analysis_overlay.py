"""Image analysis in the study view, in real Chromium: anomaly boxes drawn over the image
(following zoom), the disclaimer, the overlay toggle, CLAHE shown in place of the frame,
ROI statistics of a drawn rectangle, stored results re-shown, and a whole-series job
followed to 100 %. Screenshots under ``test-artifacts/screenshots/``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from analysis.models import AnalysisResult
from jobs.tests.helpers import worker_drain
from viewer.tests.browser import open_session, skip_without_chromium
from viewer.tests.helpers import sample_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), skip_without_chromium]

DISC_X, DISC_Y, DISC_RADIUS, DISC_HU = 90, 95, 5, 400
TRUE_BOX = [DISC_X - DISC_RADIUS, DISC_Y - DISC_RADIUS, 2 * DISC_RADIUS + 1, 2 * DISC_RADIUS + 1]
BOX_RGB = (0xFF, 0x5A, 0x1F)  # BOX_COLOUR of static/viewer/js/analysis.js
DISCLAIMER = "Visual aid only — not a diagnosis."


def disc_series(tmp_path: Path, count: int = 3) -> list[Path]:
    """CT_small.dcm slices of one new series, each with a bright 400 HU disc painted into
    soft tissue (pixels whose centre is within 5 px of (90, 95))."""
    base = pydicom.dcmread(sample_path("CT_small.dcm"))
    stored = base.pixel_array.copy()
    rows, columns = np.ogrid[: stored.shape[0], : stored.shape[1]]
    disc = (columns - DISC_X) ** 2 + (rows - DISC_Y) ** 2 <= DISC_RADIUS**2
    slope, intercept = float(base.RescaleSlope), float(base.RescaleIntercept)
    stored[disc] = round((DISC_HU - intercept) / slope)
    study_uid, series_uid = generate_uid(), generate_uid()
    paths = []
    for number in range(1, count + 1):
        ds = base.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.PatientName, ds.PatientID = "TEST^ANALYSIS", "ANA-001"
        ds.StudyDescription = "CT DISC PHANTOM"
        ds.PixelData = stored.tobytes()
        path = tmp_path / f"disc{number}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def wait_for_frame(page) -> None:
    page.wait_for_function("window.lightbox?.active?.frame")


def screen_point(page, x: float, y: float) -> list[float]:
    """Page coordinates of image point (x, y) of the active viewport."""
    return page.evaluate(
        "([x, y]) => { const v = window.lightbox.active, r = v.overlay.getBoundingClientRect();"
        " const p = v.toScreen([x, y]); return [r.left + p[0], r.top + p[1]]; }",
        [x, y],
    )


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def shown_regions(page) -> list[dict]:
    return page.evaluate(
        """() => { const a = window.lightbox.analysis, cur = window.lightbox.active.current;
        const e = a.byImage.get(cur.image.id);
        const row = e && e.rows.get(e.shown.anomaly_detection);
        return row ? row.results.anomaly_regions : []; }"""
    )


def overlay_has_box_colour(page, x: float, y: float) -> bool:
    """Whether the overlay canvas holds the box colour within 2 px of image point (x, y)."""
    pixels = page.evaluate(
        """([x, y]) => { const v = window.lightbox.active, dpr = window.devicePixelRatio || 1;
        const [sx, sy] = v.toScreen([x, y]);
        const d = v.overlay.getContext('2d').getImageData(
          Math.round(sx * dpr) - 2, Math.round(sy * dpr) - 2, 5, 5).data;
        return Array.from(d); }""",
        [x, y],
    )
    rgba = np.array(pixels).reshape(-1, 4)
    close = (np.abs(rgba[:, :3] - np.array(BOX_RGB)).max(axis=1) <= 40) & (rgba[:, 3] >= 200)
    return bool(close.any())


def image_gray(page) -> np.ndarray:
    data = page.evaluate(
        """() => { const c = window.lightbox.active.image;
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data
          .filter((_, i) => i % 4 === 0)); }"""
    )
    return np.array(data, dtype=np.int16)


def test_anomaly_boxes_enhancement_roi_stats_and_a_series_job_in_the_viewer(
    chromium, live_server, owner, tmp_path
):
    context, s = open_session(chromium, live_server, "analysis")
    page = s.page
    s.login(owner.email)
    page.set_input_files("#file-input", [str(p) for p in disc_series(tmp_path)])
    page.wait_for_selector(".batch.done")
    page.locator("#study-table tbody tr", has_text="CT DISC PHANTOM").locator("a").click()
    page.wait_for_url(re.compile(r".*/viewer/studies/\d+/$"))
    wait_for_frame(page)

    # Detect anomalies from the Analyse menu: a labelled box over the disc, listed in the panel.
    assert page.is_hidden(".viewport.active .analysis-note")
    page.click("#analyse")
    s.shot("analyse-menu")
    page.click("[data-analysis=anomaly_detection]")
    page.wait_for_selector("#analysis-list li[data-analysis-type=anomaly_detection]")
    regions = shown_regions(page)
    best = max(regions, key=lambda r: iou(r["bbox"], TRUE_BOX))
    assert iou(best["bbox"], TRUE_BOX) > 0.5
    x, y, w, h = best["bbox"]
    panel = page.inner_text("#analysis-list")
    assert f"[{x}, {y}, {w}, {h}]" in panel and "conf" in panel
    assert page.is_visible(".viewport.active .analysis-note")
    assert page.inner_text(".viewport.active .analysis-note") == DISCLAIMER
    assert DISCLAIMER in page.inner_text(".analysis-disclaimer")
    assert overlay_has_box_colour(page, x, y + h / 2)  # left edge
    assert overlay_has_box_colour(page, x + w, y + h / 2)  # right edge
    assert not overlay_has_box_colour(page, x + w / 2, y + h / 2)  # the disc itself is clear
    s.shot("anomaly-box")

    # The box follows zoom like the measurements do.
    box = page.locator(".viewport.active canvas.lb-overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -500)
    page.keyboard.up("Control")
    assert page.evaluate("window.lightbox.active.view.scale") > 2
    assert overlay_has_box_colour(page, x, y + h / 2)
    s.shot("anomaly-box-zoomed")
    page.keyboard.press("f")

    # Overlays off: the box and the note are gone; on again with O.
    page.click("#analysis-toggle")
    assert not overlay_has_box_colour(page, x, y + h / 2)
    assert page.is_hidden(".viewport.active .analysis-note")
    s.shot("overlays-off")
    page.keyboard.press("o")
    assert overlay_has_box_colour(page, x, y + h / 2)

    # CLAHE: the enhanced image replaces the frame until overlays are toggled off.
    plain = image_gray(page)
    page.click("#analyse")
    page.click("[data-analysis=enhancement]")
    page.wait_for_selector("#analysis-list li[data-analysis-type=enhancement]")
    enhanced = image_gray(page)
    assert np.abs(enhanced - plain).mean() > 5
    s.shot("enhanced")
    page.click("#analysis-toggle")
    np.testing.assert_array_equal(image_gray(page), plain)
    page.click("#analysis-toggle")

    # ROI statistics of a drawn rectangle over the disc, in modality units (HU).
    page.keyboard.press("r")
    page.mouse.move(*screen_point(page, DISC_X - 2, DISC_Y - 2))
    page.mouse.down()
    page.mouse.move(*screen_point(page, DISC_X + 3, DISC_Y + 3), steps=6)
    page.mouse.up()
    page.wait_for_selector(
        '#measurement-list [data-measurement-type=rectangle]:not([data-measurement-id=""])',
        state="attached",
    )
    page.click("#analyse")
    page.click("[data-analysis=roi_measurement]")
    page.wait_for_selector("#analysis-list li[data-analysis-type=roi_measurement]")
    roi_text = page.inner_text("#analysis-list li[data-analysis-type=roi_measurement]")
    assert "Mean 400.0 HU" in roi_text and "SD 0.0" in roi_text
    s.shot("roi-stats")

    # A reload forgets the session; stored results are re-shown from GET /analyses/.
    page.reload()
    wait_for_frame(page)
    page.click("#analyse")
    page.click("[data-analysis=stored]")
    page.wait_for_selector("#analysis-list li[data-analysis-type=anomaly_detection]")
    assert page.locator("#analysis-list li").count() == 3
    assert overlay_has_box_colour(page, x, y + h / 2)

    # The whole series as a background job: progress reaches 100 % once a worker ran it.
    page.click("#analyse")
    page.click("[data-analysis=series]")
    page.wait_for_selector(".job .job-status:text-matches('queued|processing')")
    worker_drain()
    page.wait_for_selector(".job.done", timeout=15_000)
    assert page.eval_on_selector(".job.done progress", "p => p.value") == 100
    assert "completed 3/3" in page.inner_text(".job.done .job-status")
    assert AnalysisResult.objects.filter(analysis_type="anomaly_detection").count() == 4
    page.wait_for_function(
        "document.querySelectorAll('#analysis-list li[data-analysis-type=anomaly_detection]')"
        ".length === 2"
    )
    s.shot("series-job-done")

    # live_server speaks WSGI only: the progress WebSocket cannot connect, the viewer polls.
    assert [e for e in s.errors if not e.startswith("WebSocket connection to")] == []
    context.close()
