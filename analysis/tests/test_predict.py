from __future__ import annotations

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from analysis.models import PredictionModel
from analysis.pixels import frame_load
from analysis.predict import model_register, prediction_input
from analysis.tests.factories import ingest_path, modality_values, pydicom_sample

pytestmark = [pytest.mark.django_db, pytest.mark.urls("analysis.tests.urls")]

LABELS = ["normal", "bright", "dark"]


def tiny_onnx(*, height: int, width: int, seed: int = 0) -> bytes:
    """A linear classifier built with the onnx helper API: Flatten → MatMul → Add."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.05, (height * width, len(LABELS))).astype(np.float32)
    bias = np.array([0.1, -0.2, 0.05], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["scores"]),
            helper.make_node("Add", ["scores", "b"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, len(LABELS)])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def register(name: str, *, height: int, width: int, **fields) -> PredictionModel:
    return model_register(
        name=name,
        content=tiny_onnx(height=height, width=width),
        version="2024.1",
        description="Test classifier",
        input_height=height,
        input_width=width,
        output_labels=LABELS,
        **fields,
    )


def ort_run(content: bytes, tensor: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(content, providers=["CPUExecutionProvider"])
    return session.run(None, {"image": tensor})[0].ravel().astype(np.float64)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def predict(client, image_id, **body):
    return client.post(f"/viewer/api/images/{image_id}/predict/", body, format="json")


def test_a_registered_model_predicts_what_onnxruntime_gives_on_the_same_input(owner, owner_client):
    path = pydicom_sample("CT_small.dcm")
    instance = ingest_path(path, owner=owner)
    model = register(
        "ct-tiny", height=128, width=128, window_center=40, window_width=400, mean=0.5, std=0.25
    )
    assert model.file.name.startswith("models/") and default_storage.exists(model.file.name)

    response = predict(owner_client, instance.pk, model="ct-tiny")

    assert response.status_code == 201, response.json()
    body = response.json()
    # Independent pre-processing: linear window of pixel_array * slope + intercept.
    hu = modality_values(path)
    windowed = np.clip((hu - (40 - 0.5)) / (400 - 1) + 0.5, 0, 1)
    tensor = ((windowed - 0.5) / 0.25).astype(np.float32)[np.newaxis, np.newaxis]
    expected = softmax(ort_run(tiny_onnx(height=128, width=128), tensor))
    prediction = body["prediction"]
    assert prediction["probabilities"] == pytest.approx(expected.tolist(), rel=1e-4)
    assert prediction["prediction"] == int(np.argmax(expected))
    assert prediction["label"] == LABELS[int(np.argmax(expected))]
    assert prediction["confidence"] == pytest.approx(expected.max(), rel=1e-4)
    assert body["model"] == {"name": "ct-tiny", "version": "2024.1"}
    assert body["disclaimer"]


def test_a_resized_input_gives_the_same_output_as_onnxruntime_on_that_tensor(owner, owner_client):
    instance = ingest_path(pydicom_sample("MR_small.dcm"), owner=owner)
    model = register("mr-16", height=16, width=16, normalization="min_max")

    body = predict(owner_client, instance.pk, model="mr-16").json()

    tensor = prediction_input(frame=frame_load(instance=instance), model=model)
    assert tensor.shape == (1, 1, 16, 16) and tensor.dtype == np.float32
    raw = ort_run(tiny_onnx(height=16, width=16), tensor)
    assert body["prediction"]["raw_output"] == pytest.approx(raw.tolist(), rel=1e-5)
    assert body["prediction"]["probabilities"] == pytest.approx(softmax(raw).tolist(), rel=1e-5)


def test_the_prediction_is_stored_and_listed(owner, owner_client):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)
    register("listed", height=8, width=8)

    predict(owner_client, instance.pk, model="listed")
    listed = owner_client.get(
        f"/viewer/api/images/{instance.pk}/analyses/", {"analysis_type": "prediction"}
    ).json()

    assert listed["count"] == 1
    row = listed["analyses"][0]
    assert row["parameters"] == {"model": "listed", "model_version": "2024.1"}
    assert "onnxruntime/" in row["code_version"]


@pytest.mark.parametrize(
    "body",
    [
        {"model_path": "/path/to/model"},
        {"model": "ct-tiny", "model_path": "/etc/passwd"},
        {"model": "/work/models/ct-tiny.onnx"},
        {"model": "../ct-tiny"},
        {"model": "models\\ct-tiny.onnx"},
    ],
)
def test_a_request_naming_a_path_is_refused(owner, owner_client, body):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)
    register("ct-tiny", height=8, width=8)

    response = predict(owner_client, instance.pk, **body)

    assert response.status_code == 400
    assert response.json()["code"] == "model_path_refused"


def test_an_unknown_model_is_a_404_listing_the_registered_names(owner, owner_client):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)
    register("alpha", height=8, width=8)
    register("beta", height=8, width=8)
    PredictionModel.objects.filter(name="beta").update(is_active=False)

    response = predict(owner_client, instance.pk, model="gamma")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_model"
    assert response.json()["available_models"] == ["alpha"]


def test_with_no_model_registered_predict_is_a_409_saying_so(owner, owner_client):
    instance = ingest_path(pydicom_sample("CT_small.dcm"), owner=owner)

    response = predict(owner_client, instance.pk, model="anything")

    assert response.status_code == 409
    assert response.json()["code"] == "no_model_registered"
    assert "administrator" in response.json()["error"]


def test_an_administrator_registers_a_model_in_the_admin(django_user_model, client):
    admin_user = django_user_model.objects.create_superuser(
        email="admin@example.com", password="pass-1234-word"
    )
    client.force_login(admin_user)
    form = {
        "name": "admin-tiny",
        "version": "1",
        "description": "from the admin",
        "input_width": 8,
        "input_height": 8,
        "input_channels": 1,
        "normalization": "window",
        "window_center": "",
        "window_width": "",
        "mean": 0,
        "std": 1,
        "output_activation": "softmax",
        "output_labels": '["normal", "bright", "dark"]',
        "is_active": "on",
    }
    good = SimpleUploadedFile("tiny.onnx", tiny_onnx(height=8, width=8))
    wrong_shape = SimpleUploadedFile("tiny.onnx", tiny_onnx(height=16, width=16))
    not_onnx = SimpleUploadedFile("tiny.onnx", b"not a model")

    refused_shape = client.post(
        "/admin/analysis/predictionmodel/add/", {**form, "file": wrong_shape}
    )
    refused_bytes = client.post("/admin/analysis/predictionmodel/add/", {**form, "file": not_onnx})
    accepted = client.post("/admin/analysis/predictionmodel/add/", {**form, "file": good})

    assert refused_shape.status_code == 200 and b"expects input" in refused_shape.content
    assert refused_bytes.status_code == 200 and b"cannot be loaded" in refused_bytes.content
    assert accepted.status_code == 302
    model = PredictionModel.objects.get(name="admin-tiny")
    assert model.file.name.startswith("models/")
    assert len(model.sha256) == 64


def test_changing_a_models_input_size_in_the_admin_rechecks_the_stored_file(
    django_user_model, client
):
    admin_user = django_user_model.objects.create_superuser(
        email="admin@example.com", password="pass-1234-word"
    )
    client.force_login(admin_user)
    model = register("resized", height=8, width=8)
    form = {
        "name": "resized",
        "version": "2",
        "description": "",
        "input_width": 16,
        "input_height": 16,
        "input_channels": 1,
        "normalization": "window",
        "window_center": "",
        "window_width": "",
        "mean": 0,
        "std": 1,
        "output_activation": "softmax",
        "output_labels": '["normal", "bright", "dark"]',
        "is_active": "on",
    }
    change = f"/admin/analysis/predictionmodel/{model.pk}/change/"

    refused = client.post(change, form)
    accepted = client.post(change, {**form, "input_width": 8, "input_height": 8})

    assert refused.status_code == 200 and b"expects input" in refused.content
    assert accepted.status_code == 302
    model.refresh_from_db()
    assert model.version == "2" and model.sha256 == register_sha(8, 8)


def register_sha(height: int, width: int) -> str:
    import hashlib

    return hashlib.sha256(tiny_onnx(height=height, width=width)).hexdigest()
