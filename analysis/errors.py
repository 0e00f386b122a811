"""Analysis errors: subclasses of the one vocabulary in :mod:`dicom.errors`."""

from __future__ import annotations

from rest_framework import status as http

from dicom.errors import LightboxError, NotFound


class BadAnalysisParameter(LightboxError):
    code = "bad_parameter"
    default_message = "An analysis parameter is invalid."


class UnsupportedImage(LightboxError):
    status = http.HTTP_422_UNPROCESSABLE_ENTITY
    code = "unsupported_image"
    default_message = "This analysis cannot run on this image."


class ModelNotFound(NotFound):
    code = "unknown_model"
    default_message = "No prediction model has this name."


class NoModelRegistered(LightboxError):
    status = http.HTTP_409_CONFLICT
    code = "no_model_registered"
    default_message = (
        "No prediction model is registered; an administrator must register an ONNX model "
        "in the admin first."
    )


class ModelPathRefused(LightboxError):
    code = "model_path_refused"
    default_message = "Models are chosen by their registered name; a file path is never accepted."


class ModelUnusable(LightboxError):
    status = http.HTTP_422_UNPROCESSABLE_ENTITY
    code = "model_unusable"
    default_message = "The registered model could not be run on this image."
