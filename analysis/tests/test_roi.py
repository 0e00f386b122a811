from __future__ import annotations

import numpy as np
import pydicom
import pytest

from analysis.tests.factories import (
    hu_dataset,
    ingest_dataset,
    ingest_path,
    modality_values,
    pydicom_sample,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("analysis.tests.urls")]


def analyze(client, image_id, **body):
    return client.post(f"/viewer/api/images/{image_id}/analyze/", body, format="json")


def test_rectangle_statistics_equal_numpy_on_the_rescaled_pixel_array(owner, owner_client):
    path = pydicom_sample("CT_small.dcm")
    instance = ingest_path(path, owner=owner)
    roi = {"type": "rectangle", "x": 30, "y": 40, "width": 50, "height": 25}

    response = analyze(owner_client, instance.pk, analysis_type="roi_measurement", roi=roi)

    assert response.status_code == 201, response.json()
    results = response.json()["results"]
    expected = modality_values(path)[40:65, 30:80]
    assert results["pixel_count"] == expected.size == 1250
    assert results["units"] == "HU"
    assert results["mean"] == pytest.approx(expected.mean(), rel=1e-9)
    assert results["std"] == pytest.approx(expected.std(), rel=1e-9)
    assert results["min"] == expected.min()
    assert results["max"] == expected.max()
    assert results["median"] == pytest.approx(np.median(expected))
    counts, edges = np.histogram(expected, bins=32)
    assert results["histogram"]["counts"] == counts.tolist()
    assert results["histogram"]["bin_edges"] == pytest.approx(edges.tolist())


def test_area_is_the_pixel_count_times_row_and_column_spacing(owner, owner_client):
    path = pydicom_sample("CT_small.dcm")
    row_mm, column_mm = (float(v) for v in pydicom.dcmread(path).PixelSpacing)
    instance = ingest_path(path, owner=owner)
    roi = {"type": "ellipse", "cx": 64, "cy": 60, "rx": 20, "ry": 12}

    results = analyze(owner_client, instance.pk, analysis_type="roi_measurement", roi=roi).json()[
        "results"
    ]

    rows, columns = np.ogrid[:128, :128]
    mask = ((columns - 64) / 20) ** 2 + ((rows - 60) / 12) ** 2 <= 1
    assert results["pixel_count"] == int(mask.sum())
    assert results["area"] == pytest.approx(mask.sum() * row_mm * column_mm)
    assert results["area_unit"] == "mm²"
    assert results["spacing_available"] is True
    assert results["mean"] == pytest.approx(modality_values(path)[mask].mean(), rel=1e-9)


def test_unequal_spacing_uses_row_spacing_times_column_spacing(owner, owner_client):
    values = np.zeros((40, 60))
    instance = ingest_dataset(hu_dataset(values, spacing=(0.5, 2.0), seed="aniso"), owner=owner)
    roi = {"type": "rectangle", "x": 0, "y": 0, "width": 10, "height": 4}

    results = analyze(owner_client, instance.pk, analysis_type="roi_measurement", roi=roi).json()[
        "results"
    ]

    assert results["pixel_count"] == 40
    assert results["area"] == pytest.approx(40 * 0.5 * 2.0)
    assert results["pixel_spacing"] == [0.5, 2.0]


def test_without_pixel_spacing_the_area_is_in_square_pixels_and_says_so(owner, owner_client):
    values = np.full((32, 32), 40.0)
    instance = ingest_dataset(hu_dataset(values, spacing=None, seed="nospacing"), owner=owner)
    roi = {"type": "polygon", "points": [[2, 2], [12, 2], [12, 12], [2, 12]]}

    results = analyze(owner_client, instance.pk, analysis_type="roi_measurement", roi=roi).json()[
        "results"
    ]

    assert results["spacing_available"] is False
    assert results["area_unit"] == "px²"
    assert results["area"] == results["pixel_count"] == 121
    assert results["mean"] == pytest.approx(40.0)


def test_an_roi_outside_the_image_or_malformed_is_a_400(owner, owner_client):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)

    outside = analyze(
        owner_client,
        instance.pk,
        analysis_type="roi_measurement",
        roi={"type": "rectangle", "x": 500, "y": 500, "width": 5, "height": 5},
    )
    malformed = analyze(
        owner_client, instance.pk, analysis_type="roi_measurement", roi={"type": "circle", "r": 3}
    )
    missing = analyze(owner_client, instance.pk, analysis_type="roi_measurement")

    assert outside.status_code == 400 and outside.json()["code"] == "empty_roi"
    assert malformed.status_code == 400 and malformed.json()["code"] == "bad_roi"
    assert missing.status_code == 400 and missing.json()["code"] == "bad_roi"


def test_roi_statistics_of_an_mr_image_are_in_its_own_units(owner, owner_client):
    path = pydicom_sample("MR_small.dcm")
    instance = ingest_path(path, owner=owner)
    roi = {"type": "rectangle", "x": 10, "y": 10, "width": 20, "height": 20}

    results = analyze(owner_client, instance.pk, analysis_type="roi_measurement", roi=roi).json()[
        "results"
    ]

    assert results["units"] != "HU"
    assert results["mean"] == pytest.approx(modality_values(path)[10:30, 10:30].mean())
