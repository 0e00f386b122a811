"""Validation of the ``parameters`` object of an analysis request."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from analysis.errors import BadAnalysisParameter

MSG_UNKNOWN = "Unknown parameter(s) {names}; this analysis accepts {allowed}."
MSG_NUMBER = "Parameter '{name}' must be a number between {low} and {high}."
MSG_INTEGER = "Parameter '{name}' must be an integer between {low} and {high}."
MSG_CHOICE = "Parameter '{name}' must be one of {choices}."


def params_check(parameters: Mapping[str, Any], *, allowed: Iterable[str]) -> None:
    allowed = sorted(allowed)
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        raise BadAnalysisParameter(
            MSG_UNKNOWN.format(names=", ".join(unknown), allowed=", ".join(allowed) or "none")
        )


def param_number(
    parameters: Mapping[str, Any], name: str, *, default: float, low: float, high: float
) -> float:
    value = parameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadAnalysisParameter(MSG_NUMBER.format(name=name, low=low, high=high))
    if not low <= value <= high:
        raise BadAnalysisParameter(MSG_NUMBER.format(name=name, low=low, high=high))
    return float(value)


def param_integer(
    parameters: Mapping[str, Any], name: str, *, default: int, low: int, high: int
) -> int:
    value = parameters.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadAnalysisParameter(MSG_INTEGER.format(name=name, low=low, high=high))
    return int(value)


def param_choice(
    parameters: Mapping[str, Any], name: str, *, default: str, choices: Iterable[str]
) -> str:
    options = list(choices)
    value = parameters.get(name, default)
    if value not in options:
        raise BadAnalysisParameter(MSG_CHOICE.format(name=name, choices=", ".join(options)))
    return str(value)


def param_window(parameters: Mapping[str, Any]) -> tuple[float, float] | None:
    """Optional ``window_center`` + ``window_width`` (both or neither)."""
    if "window_center" not in parameters and "window_width" not in parameters:
        return None
    center = param_number(parameters, "window_center", default=math.nan, low=-1e9, high=1e9)
    width = param_number(parameters, "window_width", default=math.nan, low=1e-6, high=1e9)
    return center, width
