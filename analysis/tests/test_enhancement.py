from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from analysis.tests.factories import (
    hu_dataset,
    ingest_dataset,
    ingest_path,
    modality_values,
    pydicom_sample,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("analysis.tests.urls")]


def enhance(client, image_id, **parameters):
    body = {"analysis_type": "enhancement", "parameters": parameters}
    return client.post(f"/viewer/api/images/{image_id}/analyze/", body, format="json")


def decoded(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :]))))


def test_clahe_raises_the_contrast_of_a_low_contrast_image_and_keeps_its_size(owner, owner_client):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)

    # A very wide window squeezes the slice into a few grey levels: low contrast.
    response = enhance(owner_client, instance.pk, window_center=0, window_width=6000)

    assert response.status_code == 201, response.json()
    results = response.json()["results"]
    image = decoded(results["enhanced_image"])
    assert image.shape == (128, 128)
    assert (results["width"], results["height"]) == (128, 128)
    before, after = results["contrast_before"], results["contrast_after"]
    assert after["rms"] > 1.5 * before["rms"]
    assert after["p2_p98_spread"] > 1.5 * before["p2_p98_spread"]
    assert np.unique(image).size > 100
    assert results["enhancement_type"] == "clahe"


def test_the_enhanced_image_is_clahe_of_the_linearly_windowed_modality_values(owner, owner_client):
    path = pydicom_sample("CT_small.dcm")
    instance = ingest_path(path, owner=owner)

    results = enhance(
        owner_client,
        instance.pk,
        window_center=40,
        window_width=400,
        clip_limit=0.02,
        kernel_size=32,
    ).json()["results"]

    from skimage.exposure import equalize_adapthist

    hu = modality_values(path)
    windowed = np.clip((hu - (40 - 0.5)) / (400 - 1) + 0.5, 0, 1)
    expected = equalize_adapthist(windowed, kernel_size=32, clip_limit=0.02, nbins=256)
    assert (
        np.abs(
            decoded(results["enhanced_image"]).astype(int) - np.rint(expected * 255).astype(int)
        ).max()
        <= 1
    )


def test_the_files_window_is_used_by_default_and_the_parameters_are_stored(owner, owner_client):
    instance = ingest_dataset(
        hu_dataset(np.tile(np.linspace(-100, 100, 64), (64, 1)), spacing=None, seed="ramp"),
        owner=owner,
    )

    body = enhance(owner_client, instance.pk).json()
    listed = owner_client.get(f"/viewer/api/images/{instance.pk}/analyses/").json()

    assert body["results"]["window"] == {"center": 40.0, "width": 400.0, "source": "file"}
    assert body["parameters"] == {"clip_limit": 0.01, "nbins": 256, "kernel_size": None}
    stored = listed["analyses"][0]
    assert stored["parameters"] == body["parameters"]
    assert "enhanced_image" not in stored["results"]
    assert stored["results"]["image_stored"] is False


def test_bad_enhancement_parameters_are_a_400(owner, owner_client):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)

    too_high = enhance(owner_client, instance.pk, clip_limit=5)
    half_window = enhance(owner_client, instance.pk, window_center=40)

    assert too_high.status_code == 400 and too_high.json()["code"] == "bad_parameter"
    assert half_window.status_code == 400
