"""WADO-RS (PS3.18 §10.4): instances, metadata, bulk data, frames, rendered images.

Instances are streamed from storage in chunks (never buffered whole) in the transfer
syntax they were stored in when the client accepts it (``transfer-syntax=*``, no
parameter, or the stored UID). Explicit VR Little Endian is produced on request by
decoding with pydicom (+ pylibjpeg); any other syntax is answered with 406.
Series metadata is cached per series, keyed by its instance count and newest
``updated_at``, so an added or replaced instance invalidates it.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, QuerySet
from rest_framework import status as http

from dicom.dicomweb import json as dj
from dicom.dicomweb.multipart import MediaType, accept_parse
from dicom.errors import LightboxError, NotFound
from dicom.models import Instance, Series, Study
from dicom.storage import CHUNK, blob_open, blob_reader

logger = logging.getLogger(__name__)

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
NATIVE_LE = {EXPLICIT_LE, IMPLICIT_LE, DEFLATED}
METADATA_TTL = 24 * 3600
RETRIEVE_CHUNK = 4 * CHUNK  # fewer, larger writes: each chunk costs a thread hop under ASGI
# Media type of one compressed frame per transfer syntax (PS3.18 Table 8.7.3-5).
FRAME_MEDIA = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
RENDER_MEDIA = {"image/jpeg": "jpeg", "image/png": "png", "image/gif": "gif"}


class NotAcceptable(LightboxError):
    status = http.HTTP_406_NOT_ACCEPTABLE
    code = "not_acceptable"
    default_message = "None of the accepted media types can be produced."


# --- resolving --------------------------------------------------------------------------


def rendered_resolve(
    *, user: Any, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> Instance:
    """The instance a ``/rendered`` or ``/thumbnail`` shows: the one addressed, or for a
    study or series its representative image, the middle image of its first series (images
    with pixel data first). 404 when there is none (missing and not yours look the same).
    Three columns per instance to choose, then the one row."""
    qs = _visible_instances(user, study_uid, series_uid, sop_uid).order_by(*ORDER)
    rows = list(qs.values_list("pk", "series_id", "has_pixel_data"))
    if not rows:
        raise NotFound("No such study, series or instance.")
    images = [row for row in rows if row[2]] or rows
    first_series = [row for row in images if row[1] == images[0][1]]
    pk = first_series[len(first_series) // 2][0]
    return Instance.objects.select_related("series__study").defer("header").get(pk=pk)


@dataclass(frozen=True)
class StoredFile:
    """What a retrieve needs of one instance."""

    pk: int
    sop_instance_uid: str
    file_path: str
    transfer_syntax_uid: str


def files_resolve(
    *, user: Any, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> tuple[Study, list[StoredFile]]:
    """The study and the stored files of a retrieve, in instance order; 404 as
    :func:`rendered_resolve`. Four columns per instance instead of whole rows with their
    series and study: ~3 ms instead of ~30 ms for a 150-instance study."""
    qs = _visible_instances(user, study_uid, series_uid, sop_uid).order_by(*ORDER)
    rows = list(
        qs.values_list(
            "pk", "sop_instance_uid", "file_path", "transfer_syntax_uid", "series__study_id"
        )
    )
    if not rows:
        raise NotFound("No such study, series or instance.")
    study = Study(pk=rows[0][4], study_instance_uid=study_uid)  # for the audit record
    return study, [StoredFile(*row[:4]) for row in rows]


ORDER = ("series__series_number", "series_id", "instance_number", "id")


def _visible_instances(
    user: Any, study_uid: str, series_uid: str | None, sop_uid: str | None
) -> QuerySet[Instance]:
    qs = Instance.objects.filter(
        series__study__in=Study.objects.visible_to(user),
        series__study__study_instance_uid=study_uid,
    )
    if series_uid is not None:
        qs = qs.filter(series__series_instance_uid=series_uid)
    if sop_uid is not None:
        qs = qs.filter(sop_instance_uid=sop_uid)
    return qs


def instance_resolve(*, user: Any, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    qs = Instance.objects.filter(
        series__study__in=Study.objects.visible_to(user),
        series__study__study_instance_uid=study_uid,
        series__series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
    ).select_related("series__study")
    instance = qs.first()
    if instance is None:
        raise NotFound("No such instance.")
    return instance


# --- instances --------------------------------------------------------------------------


def dicom_accept(*, accept: str, accept_param: str = "") -> str:
    """The transfer syntax to answer with: a UID, or ``*`` for "as stored"."""
    media_types = accept_parse(accept_param or accept) or [MediaType("*/*")]
    for media in media_types:
        if media.mime in ("*/*", "multipart/*"):
            return "*"
        if media.mime == "multipart/related" and media.params.get(
            "type", "application/dicom"
        ).lower() in ("application/dicom", "application/*", "*/*"):
            return media.params.get("transfer-syntax", "*").strip() or "*"
    raise NotAcceptable('Instances are served as multipart/related; type="application/dicom".')


def dicom_parts_check(instances: list[StoredFile], transfer_syntax: str) -> None:
    if transfer_syntax in ("*", EXPLICIT_LE):
        return
    for instance in instances:
        if instance.transfer_syntax_uid != transfer_syntax:
            raise NotAcceptable(
                f"Transfer syntax {transfer_syntax} can't be produced; ask for "
                f"transfer-syntax=* (as stored) or {EXPLICIT_LE}."
            )


def dicom_parts(
    instances: list[StoredFile], transfer_syntax: str
) -> Iterator[tuple[dict[str, str], Iterator[bytes]]]:
    for instance in instances:
        stored = instance.transfer_syntax_uid or EXPLICIT_LE
        if transfer_syntax in ("*", stored):
            ts, chunks = stored, file_chunks(instance.file_path)
        else:
            ts, chunks = EXPLICIT_LE, iter([explicit_le_bytes(instance)])
        yield {"Content-Type": f"application/dicom; transfer-syntax={ts}"}, chunks


def file_chunks(name: str, size: int = RETRIEVE_CHUNK) -> Iterator[bytes]:
    fh = blob_reader(name)
    try:
        while chunk := fh.read(size):
            yield chunk
    finally:
        fh.close()


def explicit_le_bytes(instance: StoredFile | Instance) -> bytes:
    """The instance re-encoded as Explicit VR Little Endian (decoded when compressed)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    with blob_open(instance.file_path) as fh:
        ds = pydicom.dcmread(fh, force=True)
    ts = ds.file_meta.get("TransferSyntaxUID")
    try:
        if ts is not None and ts.is_compressed:
            ds.decompress()
        elif "PixelData" in ds and ts is not None and not ts.is_little_endian:
            arr = ds.pixel_array
            ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True, implicit_vr=False, little_endian=True)
    except Exception as exc:  # noqa: BLE001 - codec failures of every kind
        logger.warning("transcode failed instance=%s reason=%s", instance.pk, type(exc).__name__)
        raise NotAcceptable(
            "This instance can't be converted to Explicit VR Little Endian; ask for "
            "transfer-syntax=*."
        ) from None
    return out.getvalue()


# --- metadata ---------------------------------------------------------------------------


@dataclass
class MetadataPlan:
    series_ids: list[int]
    stamps: dict[int, str]
    etag: str


def metadata_plan(*, series_ids: list[int], studies_url: str) -> MetadataPlan:
    """One aggregate query: the cache key of each series and the ETag of the answer."""
    rows = (
        Instance.objects.filter(series_id__in=series_ids)
        .order_by()
        .values("series_id")
        .annotate(newest=Max("updated_at"), n=Count("id"))
    )
    stamps = {row["series_id"]: f"{row['newest'].timestamp():.6f}-{row['n']}" for row in rows}
    ordered = [sid for sid in series_ids if sid in stamps]
    digest = hashlib.sha1(studies_url.encode())
    for sid in ordered:
        digest.update(f"|{sid}:{stamps[sid]}".encode())
    return MetadataPlan(series_ids=ordered, stamps=stamps, etag=f'"{digest.hexdigest()}"')


def metadata_body(plan: MetadataPlan, *, studies_url: str) -> str:
    """The DICOM JSON array of every instance of the planned series, cached per series."""
    url_key = hashlib.sha1(studies_url.encode()).hexdigest()[:12]
    parts = []
    for sid in plan.series_ids:
        key = f"dweb-meta:{sid}:{plan.stamps[sid]}:{url_key}"
        part = cache.get(key)
        if part is None:
            part = series_metadata(series_id=sid, studies_url=studies_url)
            cache.set(key, part, METADATA_TTL)
        if part:
            parts.append(part)
    return "[" + ",".join(parts) + "]"


def series_metadata(*, series_id: int, studies_url: str) -> str:
    instances = (
        Instance.objects.filter(series_id=series_id)
        .select_related("series__study")
        .order_by("instance_number", "id")
    )
    return ",".join(dj.dumps(dj.instance_metadata(i, studies_url=studies_url)) for i in instances)


def series_ids_resolve(*, user: Any, study_uid: str, series_uid: str | None = None) -> list[int]:
    qs: QuerySet[Series] = Series.objects.filter(
        study__in=Study.objects.visible_to(user), study__study_instance_uid=study_uid
    )
    if series_uid is not None:
        qs = qs.filter(series_instance_uid=series_uid)
    ids = list(qs.order_by("series_number", "id").values_list("id", flat=True))
    if not ids:
        raise NotFound("No such study or series.")
    return ids


# --- bulk data and frames ---------------------------------------------------------------


def _dataset(instance: Instance) -> Any:
    import pydicom

    with blob_open(instance.file_path) as fh:
        return pydicom.dcmread(fh, force=True)


def bulkdata_value(instance: Instance, path: str) -> bytes:
    """The raw value of a bulk element addressed as ``GGGGEEEE`` or ``SSSSSSSS/i/GGGGEEEE``."""
    ds = _dataset(instance)
    steps = [p for p in path.strip("/").split("/") if p]
    try:
        node = ds
        while len(steps) > 1:
            seq_tag, index = int(steps.pop(0), 16), int(steps.pop(0))
            node = node[seq_tag].value[index]
        elem = node[int(steps[0], 16)]
    except (KeyError, IndexError, ValueError, TypeError):
        raise NotFound("No such bulk data element.") from None
    value = elem.value
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise NotFound("This element is not bulk data.")


@dataclass
class FrameAnswer:
    media_type: str
    transfer_syntax: str
    frames: list[bytes]


def frames_accept(accept: str, accept_param: str = "") -> tuple[set[str], str]:
    """Accepted frame media types and the requested transfer syntax (``*`` = as stored;
    ``""`` = uncompressed)."""
    media_types = accept_parse(accept_param or accept) or [MediaType("*/*")]
    accepted: set[str] = set()
    syntax = ""
    for media in media_types:
        inner = media.mime
        if media.mime == "multipart/related":
            inner = media.params.get("type", "application/octet-stream").lower()
        if inner in ("*/*", "multipart/*"):
            accepted.add("*/*")
        else:
            accepted.add(inner)
        ts = media.params.get("transfer-syntax", "")
        if ts == "*" or (ts and not syntax):
            syntax = ts
    return accepted, syntax


def frames_get(
    instance: Instance, numbers: list[int], accept: str, accept_param: str = ""
) -> FrameAnswer:
    if not instance.has_pixel_data:
        raise NotFound("This instance has no pixel data.")
    for n in numbers:
        if not 1 <= n <= max(1, instance.number_of_frames):
            raise NotFound(
                f"Frame {n} does not exist; the instance has {instance.number_of_frames} frame(s)."
            )
    accepted, syntax = frames_accept(accept, accept_param)
    stored = instance.transfer_syntax_uid or EXPLICIT_LE
    compressed_media = FRAME_MEDIA.get(stored)
    wants_octets = bool(accepted & {"*/*", "application/octet-stream"})
    pass_through = compressed_media is not None and (
        (syntax in ("*", stored) and (wants_octets or compressed_media in accepted))
        or compressed_media in accepted
    )
    ds = _dataset(instance)
    if pass_through:
        from pydicom.encaps import generate_frames

        nframes = max(1, instance.number_of_frames)
        all_frames = list(generate_frames(ds.PixelData, number_of_frames=nframes))
        frames = [all_frames[n - 1] for n in numbers]
        media = compressed_media if compressed_media in accepted else "application/octet-stream"
        return FrameAnswer(media, stored, frames)
    if not wants_octets or syntax not in ("", "*", EXPLICIT_LE):
        raise NotAcceptable(
            "Frames are served as application/octet-stream (uncompressed) or, with "
            "transfer-syntax=*, in their stored compressed form."
        )
    return FrameAnswer(
        "application/octet-stream",
        EXPLICIT_LE,
        [_frame_native(ds, instance, n - 1) for n in numbers],
    )


def _frame_native(ds: Any, instance: Instance, index: int) -> bytes:
    ts = str(ds.file_meta.get("TransferSyntaxUID", IMPLICIT_LE))
    bits = instance.bits_allocated or 0
    if ts in NATIVE_LE and bits >= 8 and "PixelData" in ds:
        samples = instance.samples_per_pixel or 1
        size = (instance.rows or 0) * (instance.columns or 0) * samples * bits // 8
        if str(ds.get("PhotometricInterpretation", "")) == "YBR_FULL_422":
            size = size * 2 // 3
        data = ds.PixelData[index * size : (index + 1) * size]
        if len(data) == size:
            return bytes(data)
    from pydicom.pixels import pixel_array

    try:
        arr = pixel_array(ds, index=index)
    except Exception as exc:  # noqa: BLE001 - codec failures of every kind
        logger.warning("frame decode failed instance=%s reason=%s", instance.pk, type(exc).__name__)
        raise NotAcceptable(
            "This frame can't be decoded here; ask for transfer-syntax=* to get it as stored."
        ) from None
    return arr.astype(arr.dtype.newbyteorder("<")).tobytes()


# --- rendered ---------------------------------------------------------------------------


def rendered_accept(accept: str, accept_param: str = "") -> str:
    """``jpeg`` (the default), ``png`` or ``gif``; 406 for anything else."""
    media_types = accept_parse(accept_param or accept) or [MediaType("*/*")]
    for media in media_types:
        if media.mime in ("*/*", "image/*"):
            return "jpeg"
        if media.mime in RENDER_MEDIA:
            return RENDER_MEDIA[media.mime]
    raise NotAcceptable("Rendered images are served as image/jpeg, image/png or image/gif.")


def render_params(params: Any) -> dict[str, Any]:
    """``window=center,width[,linear]``, ``viewport=vw,vh``, ``quality=1..100``."""
    options: dict[str, Any] = {"window": None, "size": None, "quality": 90}
    window = params.get("window")
    if window:
        parts = window.split(",")
        try:
            center, width = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            raise LightboxError("window must be center,width[,shape].", code="bad_window") from None
        if width <= 0 or (len(parts) > 2 and parts[2].strip().lower() not in ("linear", "")):
            raise LightboxError(
                "window width must be positive and shape linear.", code="bad_window"
            )
        options["window"] = (center, width)
    viewport = params.get("viewport")
    if viewport:
        try:
            vw, vh = (int(v) for v in viewport.split(",")[:2])
        except ValueError:
            raise LightboxError("viewport must be vw,vh.", code="bad_viewport") from None
        if not (0 < vw <= 4096 and 0 < vh <= 4096):
            raise LightboxError("viewport must be between 1 and 4096.", code="bad_viewport")
        options["size"] = (vw, vh)
    quality = params.get("quality")
    if quality:
        try:
            options["quality"] = int(quality)
        except ValueError:
            raise LightboxError("quality must be 1..100.", code="bad_quality") from None
        if not 1 <= options["quality"] <= 100:
            raise LightboxError("quality must be 1..100.", code="bad_quality")
    return options
