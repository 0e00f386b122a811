from __future__ import annotations

import pytest

from conftest import corpus_rows
from dicom.errors import LightboxError
from dicom.ingest import instance_ingest

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.corpus,
    pytest.mark.urls("analysis.tests.urls"),
]

REQUESTS = [
    {"analysis_type": "anomaly_detection"},
    {"analysis_type": "enhancement"},
    {
        "analysis_type": "roi_measurement",
        "roi": {"type": "ellipse", "cx": 20, "cy": 20, "rx": 10, "ry": 8},
    },
]


def test_every_corpus_image_gets_a_result_or_a_clear_4xx_never_a_500(corpus, owner, owner_client):
    answered = {}
    for row in corpus_rows():
        with (corpus / row["file"]).open("rb") as fh:
            try:
                instance = instance_ingest(stream=fh, owner=owner, source="test").instance
            except LightboxError:
                continue
        for body in REQUESTS:
            response = owner_client.post(
                f"/viewer/api/images/{instance.pk}/analyze/", body, format="json"
            )
            assert response.status_code < 500, (row["file"], body, response.content[:300])
            if response.status_code >= 400:
                assert response.json()["error"], row["file"]
            answered[(row["file"], body["analysis_type"])] = response.status_code
    assert answered[("ct.0.dcm", "anomaly_detection")] == 201
    assert answered[("CT_small.dcm", "roi_measurement")] == 201
