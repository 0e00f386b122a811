from __future__ import annotations

import numpy as np
import pytest

from analysis.tests.factories import (
    box_iou,
    hu_dataset,
    ingest_dataset,
    ingest_path,
    pydicom_sample,
    with_disc,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("analysis.tests.urls")]

DISCLAIMER = "Visual aid only — not a diagnosis."


def detect(client, image_id, **parameters):
    body = {"analysis_type": "anomaly_detection", "parameters": parameters}
    response = client.post(f"/viewer/api/images/{image_id}/analyze/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def best_match(regions, truth):
    return max((box_iou(r["bbox"], truth) for r in regions), default=0.0)


@pytest.mark.corpus
def test_a_bright_disc_inserted_into_a_real_ct_slice_is_found_where_it_was_put(
    corpus, owner, owner_client
):
    # ct.0.dcm: soft tissue of the left arm (~40 HU) at x=390, y=235; a 17 px disc at 400 HU.
    ds, truth = with_disc(corpus / "ct.0.dcm", cx=390, cy=235, radius=8, hu=400, seed="disc")
    instance = ingest_dataset(ds, owner=owner)

    body = detect(owner_client, instance.pk)

    results = body["results"]
    assert results["anomalies_detected"] is True
    assert best_match(results["anomaly_regions"], truth) > 0.5
    found = max(results["anomaly_regions"], key=lambda r: box_iou(r["bbox"], truth))
    assert found["mean_intensity"] > 250
    assert found["area_unit"] == "mm²" and found["units"] == "HU"
    assert 0 < found["confidence"] < 1 and 0 <= found["texture_score"] <= 1
    assert results["disclaimer"] == body["disclaimer"] == DISCLAIMER


def test_a_bright_disc_in_pydicoms_ct_small_is_found(owner, owner_client):
    ds, truth = with_disc(
        pydicom_sample("CT_small.dcm"), cx=90, cy=95, radius=5, hu=400, seed="small-disc"
    )
    instance = ingest_dataset(ds, owner=owner)

    results = detect(owner_client, instance.pk)["results"]

    assert best_match(results["anomaly_regions"], truth) > 0.5


def test_the_same_slice_without_the_disc_has_no_region_there(owner, owner_client):
    plain = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)
    truth = [85, 90, 11, 11]  # where the disc of the previous test goes

    results = detect(owner_client, plain.pk)["results"]

    assert best_match(results["anomaly_regions"], truth) < 0.1


@pytest.mark.parametrize("noise_hu", [0.0, 10.0])
def test_a_uniform_phantom_has_no_region(owner, owner_client, noise_hu):
    rng = np.random.default_rng(2024)
    values = 40.0 + rng.normal(0.0, noise_hu, (256, 256)) if noise_hu else np.full((256, 256), 40.0)
    instance = ingest_dataset(
        hu_dataset(values, spacing=(0.7, 0.7), seed=f"phantom-{noise_hu}"), owner=owner
    )

    body = detect(owner_client, instance.pk)

    assert body["results"]["anomalies_detected"] is False
    assert body["results"]["anomaly_regions"] == []
    assert body["results"]["confidence"] == 0.0
    assert body["disclaimer"] == DISCLAIMER


def test_parameters_are_validated_and_stored_with_the_defaults_filled_in(owner, owner_client):
    instance = ingest_dataset(
        hu_dataset(np.full((64, 64), 40.0), spacing=None, seed="params"), owner=owner
    )

    body = detect(owner_client, instance.pk, z_threshold=5)
    bad = owner_client.post(
        f"/viewer/api/images/{instance.pk}/analyze/",
        {"analysis_type": "anomaly_detection", "parameters": {"z_threshold": "high"}},
        format="json",
    )
    unknown = owner_client.post(
        f"/viewer/api/images/{instance.pk}/analyze/",
        {"analysis_type": "anomaly_detection", "parameters": {"sensitivity": 3}},
        format="json",
    )

    assert body["parameters"]["z_threshold"] == 5.0
    assert body["parameters"]["min_area_unit"] == "px²"
    assert body["parameters"]["polarity"] == "bright"
    assert body["code_version"].startswith("lightbox-analysis/")
    assert bad.status_code == 400 and bad.json()["code"] == "bad_parameter"
    assert unknown.status_code == 400 and "sensitivity" in unknown.json()["error"]
