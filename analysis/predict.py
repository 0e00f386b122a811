"""Prediction with ONNX models that an administrator registered (never a client path).

Pre-processing (documented per model in the admin and in ``docs/analysis.md``):

1. the frame's modality values (HU for CT; luminance for colour frames);
2. ``normalization``: ``window`` → the linear VOI function to 0..1 with the model's window
   (or the file's when the model has none); ``min_max`` → ``(v - min) / (max - min)``;
   ``none`` → the values as they are;
3. ``(x - mean) / std`` with the model's mean and std;
4. bilinear resize (with anti-aliasing) to ``input_height`` * ``input_width``;
5. a float32 tensor of shape (1, ``input_channels``, H, W), grey repeated per channel.

The first output is flattened and turned into probabilities by the model's
``output_activation`` (softmax, sigmoid or none). ``prediction`` is the index of the largest
probability, ``confidence`` that probability.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.db.models import QuerySet

from analysis.errors import ModelNotFound, ModelPathRefused, ModelUnusable, NoModelRegistered
from analysis.models import MODEL_NAME_PATTERN, Normalization, OutputActivation, PredictionModel
from analysis.pixels import Frame, window_unit

logger = logging.getLogger(__name__)

PATH_KEYS = ("model_path", "path", "file", "model_file", "url")
MSG_NAME = "Send 'model' with the name of a registered model."
MSG_UNKNOWN = "No active prediction model is named {name!r}."
MSG_OUTPUTS = "The model gives {count} output value(s) but has {labels} label(s) registered."
MSG_SHAPE = "The model expects input {expected}; it is registered as {registered}."
MSG_LOAD = "The ONNX file cannot be loaded: {reason}"
SESSION_CACHE_SIZE = 4

_sessions: dict[tuple[int, str], Any] = {}
_sessions_lock = threading.Lock()


def models_active() -> QuerySet[PredictionModel]:
    return PredictionModel.objects.filter(is_active=True).order_by("name")


def model_resolve(*, request_data: dict[str, Any]) -> PredictionModel:
    """The active model a request names; refuses anything that looks like a path."""
    for key in PATH_KEYS:
        if key in request_data:
            raise ModelPathRefused()
    name = request_data.get("model")
    if not isinstance(name, str) or not name.strip():
        raise ModelPathRefused(MSG_NAME, code="model_required")
    name = name.strip()
    if "/" in name or "\\" in name or ".." in name or ":" in name:
        raise ModelPathRefused()
    active = list(models_active())
    if not active:
        raise NoModelRegistered()
    if re.fullmatch(MODEL_NAME_PATTERN, name):
        for model in active:
            if model.name == name:
                return model
    raise ModelNotFound(MSG_UNKNOWN.format(name=name), available_models=[m.name for m in active])


def model_session(*, model: PredictionModel) -> Any:
    """An onnxruntime CPU session for ``model``, cached per process by (id, sha256)."""
    key = (model.pk, model.sha256)
    with _sessions_lock:
        session = _sessions.get(key)
    if session is not None:
        return session
    with model.file.open("rb") as fh:
        session = session_from_bytes(fh.read())
    with _sessions_lock:
        if len(_sessions) >= SESSION_CACHE_SIZE:
            _sessions.pop(next(iter(_sessions)))
        _sessions[key] = session
    return session


def session_from_bytes(data: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(
            data, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise ModelUnusable(MSG_LOAD.format(reason=str(exc)[:300])) from None


def model_check(*, data: bytes, input_channels: int, input_height: int, input_width: int) -> None:
    """Refuse an ONNX file that cannot load or whose fixed input shape differs."""
    session = session_from_bytes(data)
    _check_shape(session, (1, input_channels, input_height, input_width))


def _check_shape(session: Any, registered: tuple[int, int, int, int]) -> None:
    shape = session.get_inputs()[0].shape
    fixed = len(shape) == 4 and all(
        not isinstance(dim, int) or dim == want for dim, want in zip(shape, registered, strict=True)
    )
    if not fixed:
        raise ModelUnusable(MSG_SHAPE.format(expected=list(shape), registered=list(registered)))


def model_register(*, name: str, content: bytes, **fields: Any) -> PredictionModel:
    """Check and store an ONNX file under ``models/`` and create its row (admin, tests)."""
    model = PredictionModel(name=name, **fields)
    model_check(
        data=content,
        input_channels=model.input_channels,
        input_height=model.input_height,
        input_width=model.input_width,
    )
    model.sha256 = hashlib.sha256(content).hexdigest()
    model.full_clean(exclude=["file"])
    model.file.save(f"{name}.onnx", ContentFile(content), save=False)
    model.save()
    logger.info("prediction model registered id=%s name=%s", model.pk, model.name)
    return model


def prediction_input(*, frame: Frame, model: PredictionModel) -> np.ndarray:
    """The (1, C, H, W) float32 tensor that ``model`` receives for ``frame``."""
    values = frame.values.astype(np.float64)
    if model.normalization == Normalization.WINDOW:
        if model.window_center is not None and model.window_width is not None:
            center, width = model.window_center, model.window_width
        else:
            center, width = frame.window
        scaled = window_unit(values, center, width)
    elif model.normalization == Normalization.MIN_MAX:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    else:
        scaled = values
    scaled = (scaled - model.mean) / model.std
    from skimage.transform import resize

    resized = resize(
        scaled,
        (model.input_height, model.input_width),
        order=1,
        mode="edge",
        anti_aliasing=True,
        preserve_range=True,
    )
    tensor = np.repeat(resized[np.newaxis, np.newaxis], model.input_channels, axis=1)
    return tensor.astype(np.float32)


def probabilities_from(raw: np.ndarray, activation: str) -> np.ndarray:
    values = raw.astype(np.float64).ravel()
    if activation == OutputActivation.SOFTMAX:
        shifted = np.exp(values - values.max())
        return shifted / shifted.sum()
    if activation == OutputActivation.SIGMOID:
        return 1.0 / (1.0 + np.exp(-values))
    return values


def prediction_run(*, frame: Frame, model: PredictionModel) -> dict[str, Any]:
    session = model_session(model=model)
    _check_shape(session, (1, model.input_channels, model.input_height, model.input_width))
    tensor = prediction_input(frame=frame, model=model)
    try:
        outputs = session.run(None, {session.get_inputs()[0].name: tensor})
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
        raise ModelUnusable(f"The model failed to run: {str(exc)[:300]}") from None
    raw = np.asarray(outputs[0])
    probabilities = probabilities_from(raw, model.output_activation)
    labels = list(model.output_labels or [])
    if labels and len(labels) != probabilities.size:
        raise ModelUnusable(MSG_OUTPUTS.format(count=probabilities.size, labels=len(labels)))
    index = int(np.argmax(probabilities))
    return {
        "prediction": index,
        "label": labels[index] if labels else None,
        "confidence": float(probabilities[index]),
        "probabilities": [float(p) for p in probabilities],
        "labels": labels,
        "raw_output": [float(v) for v in raw.astype(np.float64).ravel()],
    }
