"""DICOM JSON (PS3.18 Annex F) built from the database.

QIDO results come from the indexed columns of Study/Series/Instance (no file is read);
metadata comes from :attr:`Instance.header`, whose ``bulk/GGGGEEEE`` markers become
absolute BulkDataURIs (nested ones carry the sequence path, ``GGGGEEEE/0/GGGGEEEE``).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from dicom.models import Instance, Series, Study

CHARSET_UTF8 = "ISO_IR 192"  # everything we emit is UTF-8 JSON
ENCAPSULATED_PREFIX = "1.2.840.10008.1.2.4"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
DEFLATED = "1.2.840.10008.1.2.1.99"
PIXEL_DATA = "7FE00010"


def element(vr: str, value: Any) -> dict[str, Any]:
    """One attribute; empty values keep only their VR (Annex F.2.5)."""
    if value is None or value == "" or value == []:
        return {"vr": vr}
    values = value if isinstance(value, list) else [value]
    if vr == "PN":
        values = [{"Alphabetic": v} for v in values]
    return {"vr": vr, "Value": values}


def da(value: date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def study_attributes(study: Study, *, studies_url: str) -> dict[str, dict[str, Any]]:
    """The study-level return keys of PS3.18 Table 6.7.1-2 (counts come annotated)."""
    return {
        "00080005": element("CS", CHARSET_UTF8),
        "00080020": element("DA", da(study.study_date)),
        "00080030": element("TM", study.study_time),
        "00080050": element("SH", study.accession_number),
        "00080061": element("CS", study.modality_list()),
        "00080090": element("PN", study.referring_physician_name),
        "00081030": element("LO", study.study_description),
        "00081190": element("UR", f"{studies_url}/{study.study_instance_uid}"),
        "00100010": element("PN", study.patient_name),
        "00100020": element("LO", study.patient_id),
        "00100030": element("DA", da(study.patient_birth_date)),
        "00100040": element("CS", study.patient_sex),
        "0020000D": element("UI", study.study_instance_uid),
        "00200010": element("SH", study.study_id),
        "00201206": element("IS", getattr(study, "series_count", None)),
        "00201208": element("IS", getattr(study, "instance_count", None)),
    }


def series_attributes(series: Series, *, studies_url: str) -> dict[str, dict[str, Any]]:
    """The series-level return keys of PS3.18 Table 6.7.1-2a."""
    study_uid = series.study.study_instance_uid
    return {
        "00080021": element("DA", da(series.series_date)),
        "00080031": element("TM", series.series_time),
        "00080060": element("CS", series.modality),
        "0008103E": element("LO", series.series_description),
        "00081190": element("UR", f"{studies_url}/{study_uid}/series/{series.series_instance_uid}"),
        "00180015": element("CS", series.body_part_examined),
        "0020000D": element("UI", study_uid),
        "0020000E": element("UI", series.series_instance_uid),
        "00200011": element("IS", series.series_number),
        "00201209": element("IS", getattr(series, "instance_count", None)),
        # Not indexed: filled from the representative header when present.
        "00400244": {"vr": "DA"},
        "00400245": {"vr": "TM"},
    }


def instance_attributes(instance: Instance, *, studies_url: str) -> dict[str, dict[str, Any]]:
    """The instance-level return keys of PS3.18 Table 6.7.1-2b."""
    series = instance.series
    url = (
        f"{studies_url}/{series.study.study_instance_uid}/series/"
        f"{series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )
    attrs = {
        "00080016": element("UI", instance.sop_class_uid),
        "00080018": element("UI", instance.sop_instance_uid),
        "00081190": element("UR", url),
        "00083002": element("UI", instance.transfer_syntax_uid),
        "00200013": element("IS", instance.instance_number),
        "00280010": element("US", instance.rows),
        "00280011": element("US", instance.columns),
        "00280100": element("US", instance.bits_allocated),
    }
    if instance.has_pixel_data:
        attrs["00280008"] = element("IS", instance.number_of_frames)
    return attrs


def instance_url(instance: Instance, *, studies_url: str) -> str:
    series = instance.series
    return (
        f"{studies_url}/{series.study.study_instance_uid}/series/"
        f"{series.series_instance_uid}/instances/{instance.sop_instance_uid}"
    )


def header_with_bulk_uris(header: dict[str, Any], *, url: str, path: str = "") -> dict[str, Any]:
    """A copy of a stored header whose bulk markers are absolute BulkDataURIs."""
    out: dict[str, Any] = {}
    for tag, elem in header.items():
        if "BulkDataURI" in elem:
            out[tag] = {"vr": elem.get("vr", "UN"), "BulkDataURI": f"{url}/bulkdata/{path}{tag}"}
        elif elem.get("vr") == "SQ" and elem.get("Value"):
            out[tag] = {
                "vr": "SQ",
                "Value": [
                    header_with_bulk_uris(item, url=url, path=f"{path}{tag}/{i}/")
                    for i, item in enumerate(elem["Value"])
                ],
            }
        else:
            out[tag] = elem
    return out


def instance_metadata(instance: Instance, *, studies_url: str) -> dict[str, Any]:
    """The whole header as DICOM JSON, with a PixelData BulkDataURI for images."""
    url = instance_url(instance, studies_url=studies_url)
    header = instance.header
    if isinstance(header, str):  # a backend that hands back raw JSON text
        header = json.loads(header)
    data = header_with_bulk_uris(header, url=url)
    data["00083002"] = element("UI", instance.transfer_syntax_uid)
    if instance.has_pixel_data and PIXEL_DATA not in data:
        ts = instance.transfer_syntax_uid
        encapsulated = ts.startswith(ENCAPSULATED_PREFIX) or ts == RLE_LOSSLESS
        vr = "OB" if encapsulated or (instance.bits_allocated or 16) <= 8 else "OW"
        data[PIXEL_DATA] = {"vr": vr, "BulkDataURI": f"{url}/bulkdata/{PIXEL_DATA}"}
    return dict(sorted(data.items()))


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
