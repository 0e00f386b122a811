"""Classical anomaly detection: regions that stand out from their own surroundings.

A visual aid, not a diagnosis. No learned model is involved; every step is below and in
``docs/analysis.md``:

1. **Body mask.** CT: values above -500 HU. Other images: Otsu's threshold when it
   separates the histogram well (effectiveness = between-class / total variance >= 0.8),
   else the whole frame. Connected parts smaller than 1 % of the frame are dropped, holes
   are filled.
2. **Smoothing and background.** Inside the mask, a Gaussian of 1 px (noise) and a Gaussian of
   ``background_sigma`` (surroundings) by normalised convolution, so that air outside the mask
   never pulls the local mean down.
3. **Z-score.** ``z = (smoothed - local mean) / local sd``. Local mean and sd are Gaussian
   estimates from the "quiet" part of the mask: iterative sigma clipping (3 passes) leaves
   out pixels with ``|z| > 2.5`` (dilated by 2 px), so that a bright spot never raises its
   own background. The local sd is floored at half the frame's robust sigma
   (1.4826 * MAD of the first-pass residual).
4. **Regions.** Connected pixels (8-connectivity) with ``z > z_threshold`` (bright), ``z <
   -z_threshold`` (dark) or either (both), of at least ``min_area``.
5. **Scores.** ``texture_score = s_in / (s_in + s_ring)``, the standard deviation of the raw
   values inside the region against that of a 3-pixel ring around it (0.5 = as heterogeneous
   as its surroundings). ``confidence = (1 - z_t / |mean_z|) * (1 - exp(-A / A_min))``: how far
   the region's mean z-score is above the threshold, times how far its area is above the
   minimum. It ranks regions; it is not a probability of disease.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.params import param_choice, param_integer, param_number, params_check
from analysis.pixels import Frame
from analysis.roi import mask_bbox

DISCLAIMER = "Visual aid only — not a diagnosis."
PARAMETERS = ("z_threshold", "min_area", "background_sigma", "polarity", "max_regions")
CT_BODY_THRESHOLD_HU = -500.0
OTSU_MIN_EFFECTIVENESS = 0.8
MIN_PART_FRACTION = 0.01
NOISE_SIGMA_PX = 1.0
RING_PX = 3
MAD_TO_SIGMA = 1.4826
CLIP_KAPPA = 2.5
CLIP_PASSES = 3
MIN_WEIGHT = 1e-3
DECIMATE_FROM_SIGMA = 8.0
DECIMATE_PER_SIGMA = 4.0


def anomaly_parameters(parameters: dict[str, Any], *, spacing_available: bool) -> dict[str, Any]:
    """Defaults: z 4, min area 20 mm² (20 px² without spacing), background sigma 10 mm (10 px)."""
    params_check(parameters, allowed=PARAMETERS)
    unit = "mm" if spacing_available else "px"
    return {
        "z_threshold": param_number(parameters, "z_threshold", default=4.0, low=1.0, high=50.0),
        "min_area": param_number(parameters, "min_area", default=20.0, low=1.0, high=1e7),
        "min_area_unit": f"{unit}²",
        "background_sigma": param_number(
            parameters, "background_sigma", default=10.0, low=1.0, high=500.0
        ),
        "background_sigma_unit": unit,
        "polarity": param_choice(
            parameters, "polarity", default="bright", choices=("bright", "dark", "both")
        ),
        "max_regions": param_integer(parameters, "max_regions", default=20, low=1, high=500),
    }


def anomaly_run(*, frame: Frame, parameters: dict[str, Any]) -> dict[str, Any]:
    values = frame.values.astype(np.float64)
    pixel_area = frame.spacing[0] * frame.spacing[1] if frame.spacing else 1.0
    mask, mask_method = body_mask(values=values, units=frame.units)
    sigma_px = _background_sigma_px(parameters["background_sigma"], frame.spacing)
    z, noise = z_scores(values=values, mask=mask, background_sigma_px=sigma_px)
    regions = _regions(
        values=values,
        mask=mask,
        z=z,
        parameters=parameters,
        pixel_area=pixel_area,
        units=frame.units,
        spacing=frame.spacing,
    )
    kept = regions[: parameters["max_regions"]]
    for index, region in enumerate(kept):
        region["id"] = index
    return {
        "anomalies_detected": bool(kept),
        "anomaly_regions": kept,
        "regions_found": len(regions),
        "confidence": max((r["confidence"] for r in kept), default=0.0),
        "method": "classical: body mask, Gaussian local background, robust z-score, "
        "connected components (docs/analysis.md)",
        "body_mask": {"method": mask_method, "fraction": round(float(mask.mean()), 4)},
        "noise_sigma": noise,
        "background_sigma_px": round(sigma_px, 3),
        "units": frame.units,
        "spacing_available": frame.spacing is not None,
        "disclaimer": DISCLAIMER,
    }


def _background_sigma_px(value: float, spacing: tuple[float, float] | None) -> float:
    if spacing is None:
        return value
    return value / math.sqrt(spacing[0] * spacing[1])


def body_mask(*, values: np.ndarray, units: str) -> tuple[np.ndarray, str]:
    from scipy import ndimage

    if units == "HU":
        mask, method = values > CT_BODY_THRESHOLD_HU, "ct_threshold_-500HU"
    else:
        threshold, effectiveness = _otsu(values)
        if threshold is None or effectiveness < OTSU_MIN_EFFECTIVENESS:
            return np.ones(values.shape, dtype=bool), "whole_frame"
        mask, method = values > threshold, "otsu"
    labels, count = ndimage.label(mask)
    if count:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = np.isin(labels, np.flatnonzero(sizes >= MIN_PART_FRACTION * values.size))
    return ndimage.binary_fill_holes(mask), method


def _otsu(values: np.ndarray) -> tuple[float | None, float]:
    """Otsu's threshold and its effectiveness η = sigma^2_between / sigma^2_total (0..1)."""
    total_var = float(values.var())
    if total_var == 0.0:
        return None, 0.0
    from skimage.filters import threshold_otsu

    threshold = float(threshold_otsu(values))
    above = values > threshold
    w1 = float(above.mean())
    if w1 in (0.0, 1.0):
        return None, 0.0
    between = w1 * (1.0 - w1) * (float(values[above].mean()) - float(values[~above].mean())) ** 2
    return threshold, between / total_var


def _masked_gaussian(
    values: np.ndarray, mask: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian mean of ``values`` over ``mask`` only (normalised convolution) and its
    weight (the masked fraction of the kernel).

    Wide kernels (sigma >= 8 px) run on a grid decimated by ``k = sigma // 4`` (block sums)
    and are interpolated back: the cost no longer grows with sigma, and the extra blur of
    the k-pixel blocks is a few percent of sigma.
    """
    from scipy import ndimage

    factor = int(sigma // DECIMATE_PER_SIGMA) if sigma >= DECIMATE_FROM_SIGMA else 1
    weights = mask.astype(np.float64)
    sums = np.where(mask, values, 0.0)
    if factor > 1:
        weights, sums = _block_sum(weights, factor), _block_sum(sums, factor)
    weight = ndimage.gaussian_filter(weights, sigma / factor, mode="constant", truncate=3.0)
    total = ndimage.gaussian_filter(sums, sigma / factor, mode="constant", truncate=3.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(weight > MIN_WEIGHT, total / weight, 0.0)
    if factor > 1:
        weight = _upsample(weight / factor**2, values.shape, factor)
        mean = _upsample(mean, values.shape, factor)
    return mean, weight


def _block_sum(image: np.ndarray, factor: int) -> np.ndarray:
    rows, columns = image.shape
    padded = np.pad(image, ((0, -rows % factor), (0, -columns % factor)))
    shape = (padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return padded.reshape(shape).sum(axis=(1, 3))


def _upsample(image: np.ndarray, shape: tuple[int, ...], factor: int) -> np.ndarray:
    """Separable bilinear interpolation of a ``factor``-block grid back to ``shape``: block
    ``i`` covers pixels ``[i k, (i + 1) k)``, so pixel ``r`` sits at ``(r + 0.5) / k - 0.5``."""
    rows = _interpolate_axis(image, shape[0], factor, axis=0)
    return _interpolate_axis(rows, shape[1], factor, axis=1)


def _interpolate_axis(image: np.ndarray, size: int, factor: int, axis: int) -> np.ndarray:
    last = image.shape[axis] - 1
    position = np.clip((np.arange(size) + 0.5) / factor - 0.5, 0, last)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, last)
    weight = position - low
    shape = [1, 1]
    shape[axis] = size
    weight = weight.reshape(shape)
    return np.take(image, low, axis=axis) * (1 - weight) + np.take(image, high, axis=axis) * weight


def _robust_sigma(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))


def z_scores(
    *, values: np.ndarray, mask: np.ndarray, background_sigma_px: float
) -> tuple[np.ndarray, float]:
    """z-score map (0 outside the mask) and the frame's robust residual sigma.

    Iterative sigma clipping (``CLIP_PASSES`` passes): each pass estimates the local mean
    and local standard deviation from the "quiet" part of the mask, then marks as outliers
    the pixels with ``|z| > 2.5`` (dilated by 2 px) and leaves them out of the next pass, so
    that a bright spot never raises its own background. The local sigma is floored at half the
    frame's robust sigma (1.4826 * MAD of the first-pass residual).
    """
    from scipy import ndimage

    if not mask.any():
        return np.zeros(values.shape), 0.0
    smoothed, _ = _masked_gaussian(values, mask, NOISE_SIGMA_PX)
    first, _ = _masked_gaussian(smoothed, mask, background_sigma_px)
    sigma = _robust_sigma((smoothed - first)[mask])
    if sigma <= 1e-9 * max(1.0, float(np.abs(values[mask]).max())):
        return np.zeros(values.shape), 0.0
    quiet = mask & ~ndimage.binary_dilation(
        np.abs(smoothed - first) > CLIP_KAPPA * sigma, iterations=2
    )
    z = np.zeros(values.shape)
    for _ in range(CLIP_PASSES):
        background, weight = _masked_gaussian(smoothed, quiet, background_sigma_px)
        background = np.where(weight > MIN_WEIGHT, background, first)
        residual = smoothed - background
        variance, _ = _masked_gaussian(residual**2, quiet, background_sigma_px)
        local = np.maximum(np.sqrt(np.maximum(variance, 0.0)), 0.5 * sigma)
        z = np.where(mask, residual / local, 0.0)
        quiet = mask & ~ndimage.binary_dilation(np.abs(z) > CLIP_KAPPA, iterations=2)
    return z, sigma


def _regions(
    *,
    values: np.ndarray,
    mask: np.ndarray,
    z: np.ndarray,
    parameters: dict[str, Any],
    pixel_area: float,
    units: str,
    spacing: tuple[float, float] | None,
) -> list[dict[str, Any]]:
    from scipy import ndimage

    z_t = parameters["z_threshold"]
    polarity = parameters["polarity"]
    if polarity == "bright":
        candidates = z > z_t
    elif polarity == "dark":
        candidates = z < -z_t
    else:
        candidates = np.abs(z) > z_t
    labels, _count = ndimage.label(candidates & mask, structure=np.ones((3, 3)))
    regions = []
    for index, window in enumerate(ndimage.find_objects(labels), start=1):
        if window is None:
            continue
        region = _region(values, mask, z, labels, index, window, parameters, pixel_area)
        if region is not None:
            region["units"] = units
            region["area_unit"] = "mm²" if spacing else "px²"
            regions.append(region)
    regions.sort(key=lambda r: (-r["confidence"], -r["area"]))
    return regions


def _region(
    values: np.ndarray,
    mask: np.ndarray,
    z: np.ndarray,
    labels: np.ndarray,
    index: int,
    window: tuple[slice, slice],
    parameters: dict[str, Any],
    pixel_area: float,
) -> dict[str, Any] | None:
    from scipy import ndimage

    pad = RING_PX + 1
    rows = slice(max(window[0].start - pad, 0), window[0].stop + pad)
    columns = slice(max(window[1].start - pad, 0), window[1].stop + pad)
    inside = labels[rows, columns] == index
    pixels = int(inside.sum())
    area = pixels * pixel_area
    min_area = parameters["min_area"]
    if area < min_area:
        return None
    ring = ndimage.binary_dilation(inside, iterations=RING_PX) & ~inside & mask[rows, columns]
    crop = values[rows, columns]
    mean_z = float(z[rows, columns][inside].mean())
    inner_std = float(crop[inside].std())
    ring_std = float(crop[ring].std()) if ring.any() else 0.0
    ring_mean = float(crop[ring].mean()) if ring.any() else float("nan")
    z_t = parameters["z_threshold"]
    confidence = max(0.0, 1.0 - z_t / abs(mean_z)) * (1.0 - math.exp(-area / min_area))
    x, y, width, height = mask_bbox(inside)
    return {
        "bbox": [x + columns.start, y + rows.start, width, height],
        "area": round(area, 3),
        "area_px": pixels,
        "mean_intensity": round(float(crop[inside].mean()), 3),
        "surrounding_mean_intensity": None if math.isnan(ring_mean) else round(ring_mean, 3),
        "mean_z": round(mean_z, 3),
        "peak_z": round(float(np.abs(z[rows, columns][inside]).max()), 3),
        "texture_score": round(inner_std / (inner_std + ring_std), 4)
        if inner_std + ring_std > 0
        else 0.0,
        "confidence": round(confidence, 4),
    }
