"""The viewer in real Chromium: log in, upload, browse, view, window, measure, reload, cine.

Screenshots of every step are saved under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import base64
import io
import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings
from PIL import Image
from pydicom.uid import generate_uid

from viewer.tests.browser import UHD, open_session, skip_without_chromium
from viewer.tests.helpers import sample_path

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), skip_without_chromium]

ROW_SPACING, COLUMN_SPACING = 0.5, 0.8


def ct_series(tmp_path: Path, count: int = 3) -> list[Path]:
    """Real CT slices of one series with a known, non-square Pixel Spacing (row 0.5 mm,
    column 0.8 mm): the 512x512 corpus CT when present, else pydicom's CT_small."""
    corpus_ct = Path(settings.LIGHTBOX_SAMPLES_DIR) / "ct.0.dcm"
    base = pydicom.dcmread(corpus_ct if corpus_ct.exists() else sample_path("CT_small.dcm"))
    series_uid, study_uid = generate_uid(), generate_uid()
    paths = []
    for i in range(count):
        ds = base.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        ds.PixelSpacing = [ROW_SPACING, COLUMN_SPACING]
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.StudyDescription, ds.SeriesDescription = "CT CHEST", "AXIAL 5mm"
        ds.PatientName, ds.PatientID = "TEST^VIEWER", "VIEW-001"
        pixels = np.roll(base.pixel_array, shift=i * 12, axis=0)
        ds.PixelData = pixels.astype(base.pixel_array.dtype).tobytes()
        path = tmp_path / f"slice{i + 1}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def multiframe_path() -> Path:
    emri = Path(settings.LIGHTBOX_SAMPLES_DIR) / "emri_small.dcm"
    return emri if emri.exists() else sample_path("rtdose.dcm")


def image_canvas(page) -> np.ndarray:
    """The visible image canvas's pixels (gray) as the clinician's screen holds them."""
    data = page.evaluate(
        """() => { const c = document.querySelector('.viewport.active canvas.lb-image');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const gray = new Uint8Array(d.length / 4);
        for (let i = 0; i < gray.length; i++) gray[i] = d[i * 4];
        let s = ''; for (let i = 0; i < gray.length; i += 8192)
          s += String.fromCharCode.apply(null, gray.subarray(i, i + 8192));
        return {w: c.width, h: c.height, b64: btoa(s)}; }"""
    )
    raw = np.frombuffer(base64.b64decode(data["b64"]), dtype=np.uint8)
    return raw.reshape(data["h"], data["w"]).astype(np.int16)


def corner(page, name: str) -> str:
    return page.inner_text(f".viewport.active [data-corner={name}]")


def wait_for_image(page) -> None:
    page.wait_for_function(
        "() => { const v = window.lightbox && window.lightbox.active;"
        " return v && v.frame && !v.image.hidden; }"
    )


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel position (x, y) in the active viewport."""
    return tuple(
        page.evaluate(
            """([x, y]) => { const v = window.lightbox.active;
            const r = v.overlay.getBoundingClientRect();
            const [sx, sy] = v.toScreen([x, y]); return [r.left + sx, r.top + sy]; }""",
            [x, y],
        )
    )


def windowed(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 linear VOI, as the renderer and the browser apply it."""
    gray = np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1) * 255
    return np.rint(gray).astype(np.int16)


def pixels_of(page, image_id: int) -> np.ndarray:
    data = page.evaluate(
        """async (id) => { const r = await fetch(`/viewer/api/images/${id}/pixels/`);
        return {dtype: r.headers.get('X-Dtype'), rows: +r.headers.get('X-Rows'),
        cols: +r.headers.get('X-Columns'), b64: await new Promise((ok) => {
          const fr = new FileReader(); fr.onload = () => ok(fr.result.split(',')[1]);
          r.blob().then((b) => fr.readAsDataURL(b)); })}; }""",
        image_id,
    )
    dtype = "<i2" if data["dtype"] == "int16" else "<f4"
    raw = base64.b64decode(data["b64"])
    return np.frombuffer(raw, dtype=dtype).reshape(data["rows"], data["cols"]).astype(np.float64)


def test_a_clinician_uploads_views_windows_measures_and_plays_cine(
    chromium, live_server, owner, tmp_path
):
    context, s = open_session(chromium, live_server, "workflow")
    page = s.page
    s.login(owner.email)
    s.shot("study-list-empty")

    # Upload a 3-slice CT series and a multi-frame image through the real file input.
    page.set_input_files("#file-input", [str(p) for p in ct_series(tmp_path)])
    page.wait_for_selector(".batch.done")
    page.set_input_files("#file-input", [str(multiframe_path())])
    page.wait_for_function("document.querySelectorAll('.batch.done').length === 2")
    page.wait_for_function("document.querySelectorAll('#study-table tbody tr').length === 2")
    s.shot("uploaded-and-listed")
    ct_row = page.locator("#study-table tbody tr", has_text="TEST, VIEWER")
    assert "CT CHEST" in ct_row.inner_text()
    assert re.search(r"\b1\s+3\b", ct_row.inner_text()), "1 series, 3 images"

    # Open the CT and check the overlays a clinician reads.
    ct_row.locator("a").click()
    page.wait_for_url(re.compile(r".*/viewer/studies/\d+/$"))
    wait_for_image(page)
    s.shot("ct-opened")
    assert "TEST, VIEWER" in corner(page, "tl")
    assert "Im: 1/3" in corner(page, "bl")
    assert "W: 400 L: 40" in corner(page, "br")

    # Neighbouring slices are prefetched while the first one is shown.
    page.wait_for_function("window.lightbox.cache.map.size >= 3")

    # Scroll with the scrollbar, back with the wheel... then with the keyboard.
    page.eval_on_selector(
        ".viewport.active .slice-bar",
        "(bar) => { bar.value = '2'; bar.dispatchEvent(new Event('input')); }",
    )
    page.wait_for_function("window.lightbox.active.pos === 2")
    page.keyboard.press("Home")
    box = page.locator(".viewport.active canvas.lb-overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 120)
    page.wait_for_function("window.lightbox.active.pos === 1 && window.lightbox.active.frame")
    page.keyboard.press("ArrowDown")
    page.wait_for_function(
        "document.querySelector('.viewport.active [data-corner=bl]').innerText.includes('Im: 3/3')"
    )
    wait_for_image(page)
    s.shot("scrolled-to-slice-3")

    image_id = page.evaluate("window.lightbox.active.current.image.id")
    values = pixels_of(page, image_id)
    np.testing.assert_array_equal(image_canvas(page), windowed(values, 40, 400))

    # Preset: CT lung (-600/1500) changes the canvas exactly as the VOI formula says.
    page.select_option("#preset-select", label="CT lung 1500/-600 [2]")
    page.wait_for_function(
        "document.querySelector('.viewport.active [data-corner=br]')"
        ".innerText.includes('W: 1500 L: -600')"
    )
    lung = image_canvas(page)
    np.testing.assert_array_equal(lung, windowed(values, -600, 1500))
    s.shot("preset-lung")

    # Right-drag: moving right widens the window, moving down raises the level.
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx + 60, cy + 40, steps=6)
    page.mouse.up(button="right")
    window = page.evaluate("window.lightbox.active.window")
    assert window["width"] > 1500 and window["center"] > -600
    dragged = image_canvas(page)
    assert not np.array_equal(dragged, lung)
    np.testing.assert_array_equal(dragged, windowed(values, window["center"], window["width"]))
    s.shot("dragged-window")

    # Length: 100 pixels across (x) is 80 mm, 100 down (y) is 50 mm with spacing (0.5, 0.8).
    page.keyboard.press("l")
    a = screen_point(page, 20, 30)
    b = screen_point(page, 120, 30)
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=8)
    page.mouse.up()
    c = screen_point(page, 20, 40)
    d = screen_point(page, 20, 140)
    page.mouse.move(*c)
    page.mouse.down()
    page.mouse.move(*d, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "document.querySelectorAll('#measurement-list [data-measurement-type=line]').length === 2"
        " && ![...document.querySelectorAll('#measurement-list li')]"
        ".some(li => !li.dataset.measurementId)"
    )
    listed = page.inner_text("#measurement-list")
    from viewer.models import Measurement

    saved = list(Measurement.objects.order_by("id"))
    assert [m.unit for m in saved] == ["mm", "mm"]
    for m in saved:
        (x0, y0), (x1, y1) = m.coordinates
        expected = math.hypot((x1 - x0) * COLUMN_SPACING, (y1 - y0) * ROW_SPACING)
        assert m.value == pytest.approx(expected, abs=0.01)
        assert f"{expected:.2f} mm" in listed
    assert saved[0].value == pytest.approx(80, abs=1.0)
    assert saved[1].value == pytest.approx(50, abs=1.0)
    s.shot("lengths-drawn")

    # A rectangle ROI reports HU statistics; then reload and see everything again.
    page.keyboard.press("r")
    page.mouse.move(*screen_point(page, 40, 60))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 80, 100), steps=5)
    page.mouse.up()
    page.wait_for_selector(
        "#measurement-list [data-measurement-type=rectangle]"
        "[data-measurement-id]:not([data-measurement-id=''])"
    )
    assert "HU" in page.inner_text("#measurement-list [data-measurement-type=rectangle]")
    page.reload()
    wait_for_image(page)
    page.keyboard.press("End")
    page.wait_for_function(
        "document.querySelectorAll('#measurement-list [data-measurement-type=line]').length === 2"
    )
    assert "80.0" in page.inner_text("#measurement-list")
    s.shot("reloaded-measurements-shown")

    # Metadata panel: every tag, searchable.
    page.click(".tab[data-tab=tags]")
    page.fill("#tag-search", "pixel spacing")
    page.wait_for_selector("#tag-tree .tag-row[data-tag='00280030']")
    assert "0.5 \\ 0.8" in page.inner_text("#tag-tree .tag-row[data-tag='00280030']")
    s.shot("metadata-search")

    # Help overlay (Escape leaves the search field first).
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    assert page.is_visible("#help-overlay")
    s.shot("help-overlay")
    page.keyboard.press("Escape")

    # Multi-frame: play cine and watch the frame counter advance.
    page.goto(live_server.url + "/viewer/")
    page.locator("#study-table tbody tr", has_text="CT CHEST").wait_for()
    page.locator("#study-table tbody tr").filter(has_not_text="CT CHEST").locator("a").click()
    wait_for_image(page)
    assert "Fr: 1/" in corner(page, "bl")
    page.click("#cine-toggle")
    page.wait_for_function(
        "!document.querySelector('.viewport.active [data-corner=bl]').innerText.includes('Fr: 1/')"
    )
    page.wait_for_function(
        "document.querySelector('.viewport.active [data-corner=bl]').innerText.includes('Fr: 4/')"
    )
    s.shot("cine-playing")
    page.keyboard.press(" ")
    assert "Play" in page.inner_text("#cine-toggle")

    assert s.errors == []
    context.close()


def test_another_user_gets_404_on_the_study_page(chromium, live_server, owner, outsider, tmp_path):
    from rest_framework.test import APIClient

    from viewer.tests.helpers import upload

    api = APIClient()
    api.force_authenticate(owner)
    study_id = upload(api, sample_path("CT_small.dcm"))["study_id"]
    context, s = open_session(chromium, live_server, "outsider")
    s.login(outsider.email)
    response = s.goto(f"/viewer/studies/{study_id}/")
    assert response.status == 404
    s.shot("outsider-404")
    context.close()


RENDER_SAMPLES = [
    "CT_small.dcm",  # signed CT, file window
    "MR_small.dcm",  # unsigned MR, file window
    "corpus:dx_image.dcm",  # MONOCHROME1: inverted display
    "corpus:parametric_map_float.dcm",  # Float Pixel Data: LINEAR_EXACT, min/max window
    "corpus:emri_small.dcm",  # enhanced MR: window from the functional groups
    "corpus:ct.0.dcm",  # 512x512 CT without a window: min/max
]


def render_sample(name: str) -> Path:
    if not name.startswith("corpus:"):
        return sample_path(name)
    path = Path(settings.LIGHTBOX_SAMPLES_DIR) / name.removeprefix("corpus:")
    if not path.exists():
        pytest.skip(f"dicom-samples corpus not found at {path.parent} (set LIGHTBOX_SAMPLES_DIR)")
    return path


@pytest.mark.parametrize("name", RENDER_SAMPLES)
def test_the_canvas_matches_the_server_render_at_the_default_window(
    chromium, live_server, owner, name
):
    from rest_framework.test import APIClient

    from viewer.tests.helpers import upload

    api = APIClient()
    api.force_authenticate(owner)
    uploaded = upload(api, render_sample(name))
    context, s = open_session(chromium, live_server, f"render-{name}")
    s.login(owner.email)
    s.goto(f"/viewer/studies/{uploaded['study_id']}/")
    wait_for_image(s.page)
    canvas = image_canvas(s.page)
    png = api.get(f"/viewer/api/images/{uploaded['uploaded_files'][0]['image_id']}/preview/")
    server = np.asarray(Image.open(io.BytesIO(png.content)).convert("L"), dtype=np.int16)
    assert canvas.shape == server.shape
    assert np.abs(canvas - server).max() <= 1
    s.shot("default-window")
    assert s.errors == []
    context.close()


def test_the_viewer_fills_a_4k_screen_and_rejects_non_dicom_with_a_reason(
    chromium, live_server, owner, tmp_path
):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a DICOM file")
    context, s = open_session(chromium, live_server, "uhd", viewport=UHD)
    s.login(owner.email)
    s.page.set_input_files("#file-input", [str(junk), str(sample_path("MR_small.dcm"))])
    s.page.wait_for_selector("#upload-rejected:not([hidden])")
    assert "notes.txt" in s.page.inner_text("#upload-rejected")
    s.page.wait_for_selector("#study-table tbody tr")
    s.shot("list-4k")
    s.page.locator("#study-table tbody tr a").first.click()
    wait_for_image(s.page)
    s.page.click("[data-layout='1x2']")
    s.page.wait_for_function("document.querySelectorAll('.viewport').length === 2")
    s.shot("study-4k-1x2")
    scale = s.page.evaluate("window.lightbox.active.view.scale")
    assert scale > 5, "a 64x64 MR fills most of a 4K viewport"
    assert s.errors == []
    context.close()


def drag(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def test_angle_ellipse_text_invert_zoom_and_layout_tools_work(chromium, live_server, owner):
    from rest_framework.test import APIClient

    from viewer.models import Annotation, Measurement
    from viewer.tests.helpers import upload

    api = APIClient()
    api.force_authenticate(owner)
    study_id = upload(api, sample_path("CT_small.dcm"))["study_id"]
    context, s = open_session(chromium, live_server, "tools")
    page = s.page
    s.login(owner.email)
    s.goto(f"/viewer/studies/{study_id}/")
    wait_for_image(page)

    # Angle: first arm by dragging (p1 -> vertex), third point by a click: a right angle.
    page.keyboard.press("a")
    drag(page, screen_point(page, 30, 30), screen_point(page, 60, 30))
    page.mouse.move(*screen_point(page, 60, 70), steps=4)
    page.mouse.down()
    page.mouse.up()
    # Ellipse ROI with HU statistics.
    page.keyboard.press("e")
    drag(page, screen_point(page, 70, 70), screen_point(page, 110, 100))
    page.wait_for_function(
        "document.querySelectorAll('#measurement-list [data-measurement-id]"
        ':not([data-measurement-id=""])\').length === 2'
    )
    angle = Measurement.objects.get(measurement_type="angle")
    assert angle.value == pytest.approx(90, abs=0.5)
    assert angle.unit == "deg"
    assert "90.0°" in page.inner_text("#measurement-list")
    ellipse_text = page.inner_text("#measurement-list [data-measurement-type=ellipse]")
    assert "HU" in ellipse_text and "mm²" in ellipse_text

    # Text annotation through the inline input.
    page.keyboard.press("t")
    page.mouse.click(*screen_point(page, 20, 110))
    page.fill(".viewport.active .text-input", "Suspicious area")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelectorAll('#measurement-list [data-annotation-id]').length === 1"
    )
    assert Annotation.objects.get().text == "Suspicious area"
    s.shot("angle-ellipse-text")

    # Drag the angle's last point onto the first arm's line: the edit is saved (PATCH).
    with page.expect_response(lambda r: r.request.method == "PATCH") as patched:
        drag(page, screen_point(page, 60, 70), screen_point(page, 90, 30))
    assert patched.value.status == 200
    page.wait_for_function(
        "document.querySelector('#measurement-list [data-measurement-type=angle]')"
        ".innerText.includes('180.0°')"
    )
    angle.refresh_from_db()
    assert angle.coordinates[2] == pytest.approx([90, 30], abs=0.05)
    assert angle.value == pytest.approx(180, abs=0.5)

    # Delete the angle from the side panel.
    page.click("#measurement-list [data-measurement-type=angle] button")
    page.wait_for_function(
        "!document.querySelector('#measurement-list [data-measurement-type=angle]')"
    )
    assert not Measurement.objects.filter(measurement_type="angle").exists()

    # Invert flips every displayed pixel.
    before = image_canvas(page)
    page.keyboard.press("i")
    np.testing.assert_array_equal(image_canvas(page), 255 - before)
    assert "Inverted" in corner(page, "br")

    # Ctrl+wheel zooms, the pan tool moves, F fits again.
    box = page.locator(".viewport.active canvas.lb-overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    fitted = page.evaluate("window.lightbox.active.view.scale")
    page.keyboard.down("Control")
    page.mouse.wheel(0, -400)
    page.keyboard.up("Control")
    assert page.evaluate("window.lightbox.active.view.scale") > fitted
    page.keyboard.press("p")
    tx = page.evaluate("window.lightbox.active.view.tx")
    drag(page, (box["x"] + 300, box["y"] + 300), (box["x"] + 380, box["y"] + 330))
    assert page.evaluate("window.lightbox.active.view.tx") == pytest.approx(tx + 80, abs=2)
    s.shot("zoomed-panned")
    page.keyboard.press("f")
    assert page.evaluate("window.lightbox.active.view.scale") == pytest.approx(fitted)

    # Two viewports side by side; the download link serves the original.
    page.keyboard.press("Shift+2")
    page.wait_for_function("document.querySelectorAll('.viewport canvas.lb-image').length === 2")
    wait_for_image(page)
    href = page.get_attribute("#download", "href")
    status = page.evaluate("async (u) => (await fetch(u)).status", href)
    assert href.endswith("/file/") and status == 200
    s.shot("layout-1x2")

    # Export the series: a small export streams back as a ZIP download.
    with page.expect_download() as download_info:
        page.click("#export")
    page.wait_for_selector(".job.done")
    with zipfile.ZipFile(download_info.value.path()) as zf:
        names = zf.namelist()
    assert any(n.startswith("images/") and n.endswith(".png") for n in names)

    # Anonymise: the study job is queued and its progress row appears (no worker runs here).
    page.click("#anonymize")
    page.wait_for_function(
        "[...document.querySelectorAll('.job .job-status')]"
        ".some(s => /queued|processing|completed/.test(s.textContent))"
    )
    s.shot("export-and-anonymise")
    # live_server speaks WSGI only, so the progress WebSocket cannot connect here; the
    # viewer falls back to polling /jobs/<id>/. Every other console error still fails.
    assert [e for e in s.errors if not e.startswith("WebSocket connection to")] == []
    context.close()


def test_the_study_list_searches_sorts_and_accepts_a_dropped_zip(
    chromium, live_server, owner, tmp_path
):
    archive = tmp_path / "two-studies.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(sample_path("CT_small.dcm"), "a/CT_small.dcm")
        zf.write(sample_path("MR_small.dcm"), "b/MR_small.dcm")
    context, s = open_session(chromium, live_server, "list")
    page = s.page
    s.login(owner.email)
    payload = base64.b64encode(archive.read_bytes()).decode()
    page.evaluate(
        """(b64) => { const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'two-studies.zip', {type: 'application/zip'}));
        const zone = document.getElementById('drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true})); }""",
        payload,
    )
    page.wait_for_selector(".batch.done")
    page.wait_for_function("document.querySelectorAll('#study-table tbody tr').length === 2")
    assert "2 stored" in page.inner_text(".batch.done")
    s.shot("zip-dropped")

    page.select_option("select[name=modality]", "MR")
    page.click("#search-form button[type=submit]")
    page.wait_for_function("document.querySelectorAll('#study-table tbody tr').length === 1")
    assert "MR" in page.inner_text("#study-table tbody")
    page.click("#search-form button[type=reset]")
    page.wait_for_function("document.querySelectorAll('#study-table tbody tr').length === 2")

    page.click("th[data-sort=patient_name]")
    page.wait_for_selector("th[data-sort=patient_name].sorted-desc")
    page.click("th[data-sort=patient_name]")
    page.wait_for_selector("th[data-sort=patient_name].sorted-asc")
    names = page.locator("#study-table tbody tr td:first-child").all_inner_texts()
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    s.shot("sorted-by-name")
    assert "Page 1 of 1" in page.inner_text("#page-info")
    assert s.errors == []
    context.close()


def test_a_colour_image_is_shown_from_the_server_render(chromium, live_server, owner):
    from rest_framework.test import APIClient

    from viewer.tests.helpers import upload

    api = APIClient()
    api.force_authenticate(owner)
    uploaded = upload(api, sample_path("SC_rgb_rle_2frame.dcm"))
    context, s = open_session(chromium, live_server, "colour")
    s.login(owner.email)
    s.goto(f"/viewer/studies/{uploaded['study_id']}/")
    wait_for_image(s.page)
    assert "W/L: n/a (colour)" in corner(s.page, "br")
    png = api.get(f"/viewer/api/images/{uploaded['uploaded_files'][0]['image_id']}/preview/")
    server = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"), dtype=np.int16)
    assert np.abs(image_canvas(s.page) - server[..., 0]).max() <= 1
    s.page.keyboard.press("ArrowDown")
    s.page.wait_for_function(
        "document.querySelector('.viewport.active [data-corner=bl]').innerText.includes('Fr: 2/2')"
    )
    s.shot("colour-frame-2")
    assert s.errors == []
    context.close()
