"""The one anonymiser: DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile.

:func:`dataset_anonymize` returns a de-identified copy of a dataset. Every attribute of
Table E.1-1 (:mod:`dicom.anonymize_profile`) gets its basic-profile action wherever it
occurs, in the main dataset or nested in sequences; private attributes are removed; every
DA/DT/TM value not in the table is handled by its VR (Note 4 of E.1); every instance UID is
replaced; the File Meta Information and the preamble are rewritten; Pixel Data is never
touched. Options:

- ``keep_dates``: Retain Longitudinal Temporal Information with Full Dates Option
  (DCM 113106): the date and time attributes the option marks ``K`` are kept unchanged.
- ``keep_uid_structure``: one UID map for the whole job (``uid_map``), so the same input
  UID always becomes the same output UID and studies, series and references stay whole.
  Without it every instance gets fresh UIDs of its own.
- ``use_secure``: pseudonyms (UIDs, Patient ID/Name) are HMAC-SHA256 of the original value
  keyed with ``settings.LIGHTBOX_ANONYMIZATION_KEY``: stable across jobs for whoever holds
  the key, not reversible and not guessable by a dictionary attack without it. Without it
  pseudonyms are random (consistent only within the job).

Logs carry UIDs of the *output* and counts only, never a value of the source header.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import logging
import secrets
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import pydicom
from django.core.files import File
from django.core.files.base import ContentFile
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from dicom.anonymize_profile import PRIVATE_ACTION, rule_for
from dicom.errors import InvalidDicomFile, LightboxError, MissingRequiredTag
from dicom.models import Instance, Study
from dicom.storage import blob_open

logger = logging.getLogger(__name__)

# Lightbox's own Implementation Class UID (0002,0012): a fixed UUID-derived UID (2.25).
IMPLEMENTATION_CLASS_UID = "2.25.302948765227839916787430468931627251301"
IMPLEMENTATION_VERSION_NAME = "LIGHTBOX_ANON_1"
STANDARD_UID_ROOT = "1.2.840.10008."

MSG_UNREADABLE = "The DICOM file could not be read: {reason}."
MSG_NOT_DICOM = "The file is not DICOM: no DICM prefix and no readable dataset."
MSG_NO_SOP_UIDS = (
    "The file has no SOP Class UID or SOP Instance UID; it cannot be written as an "
    "anonymised DICOM file."
)

DUMMY_TEXT = "ANONYMIZED"
DUMMY_PERSON = "ANONYMOUS"
DUMMY_BY_VR: dict[str, Any] = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "PN": DUMMY_PERSON,
    "AS": "000D",
    "AE": DUMMY_PERSON,
    "IS": "0",
    "DS": "0",
    "CS": DUMMY_TEXT,
    "SH": DUMMY_TEXT,
    "LO": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "UT": DUMMY_TEXT,
    "UC": DUMMY_TEXT,
    "UR": "",
}
NUMERIC_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"}
BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
DATE_TIME_VRS = {"DA", "DT", "TM"}

# UI attributes naming a *kind* of thing (a class, a syntax, a coding scheme), not an
# instance: they identify nobody and must survive for the file to stay readable.
UID_KEEP_KEYWORDS = {
    "TransferSyntaxUID",
    "EncryptedContentTransferSyntaxUID",
    "CodingSchemeUID",
    "ContextUID",
    "MappingResourceUID",
    "ContextGroupExtensionCreatorUID",
}

PATIENT_ID_TAG = 0x00100020
PATIENT_NAME_TAG = 0x00100010

# (0012,0064) De-identification Method Code Sequence, CID 7050.
CODE_BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
CODE_FULL_DATES = ("113106", "Retain Longitudinal Temporal Information Full Dates Option")

BURNED_IN_YES = "yes"
BURNED_IN_UNKNOWN = "unknown"
# Modalities that commonly burn patient text into the pixels (PS3.15 E.1.1 note 5).
BURNED_IN_RISK_MODALITIES = {"US", "SC", "OT", "XC", "ES", "GM", "SM"}
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


@dataclass(frozen=True)
class AnonymizationOptions:
    keep_dates: bool = False
    keep_uid_structure: bool = True
    use_secure: bool = False

    def as_dict(self) -> dict[str, bool]:
        return {
            "keep_dates": self.keep_dates,
            "keep_uid_structure": self.keep_uid_structure,
            "use_secure": self.use_secure,
        }


def anonymization_secret() -> bytes:
    """The HMAC key of ``use_secure`` pseudonyms (``LIGHTBOX_ANONYMIZATION_KEY``)."""
    from django.conf import settings

    return str(settings.LIGHTBOX_ANONYMIZATION_KEY).encode()


def pseudonym_secret(*, options: AnonymizationOptions, salt: str) -> bytes:
    """The key of a job's pseudonyms: the server's key with ``use_secure`` (the same
    patient or UID gets the same pseudonym in every job), else the job's own random salt
    (pseudonyms unrelated to any other job's)."""
    return anonymization_secret() if options.use_secure else salt.encode()


def salt_new() -> str:
    return secrets.token_hex(32)


class _Pseudonyms:
    """Replacement values: HMAC-SHA256 of the original under the job's key.

    Deterministic for a given key, so a job re-run after a worker crash produces exactly
    the UIDs its first run did, and every instance of a job agrees on its study's UIDs.
    ``values`` caches "kind:original" → replacement.
    """

    def __init__(self, *, values: dict[str, str], secret: bytes) -> None:
        self.values, self.secret = values, secret

    def _digest(self, kind: str, original: str) -> bytes:
        return hmac.new(self.secret, f"{kind}:{original}".encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        key = f"uid:{original}"
        if key not in self.values:
            # 2.25.<128-bit integer>: a UUID-derived UID (PS3.5 B.2), at most 44 characters.
            number = int.from_bytes(self._digest("uid", original)[:16], "big")
            self.values[key] = f"2.25.{number}"
        return self.values[key]

    def patient_id(self, original: str) -> str:
        key = f"patient:{original}"
        if key not in self.values:
            self.values[key] = "ANON-" + self._digest("patient", original).hex()[:16].upper()
        return self.values[key]


def dataset_anonymize(
    *,
    ds: Dataset,
    options: AnonymizationOptions,
    uid_map: dict[str, str],
    secret: bytes | str,
) -> Dataset:
    """A de-identified copy of ``ds`` (the source is left untouched).

    Pseudonyms are keyed with ``secret`` (see :func:`pseudonym_secret`) and cached in
    ``uid_map``. With ``keep_uid_structure`` off, the key is mixed with the instance's own
    SOP Instance UID, so no two instances share a replacement UID.
    """
    key = secret.encode() if isinstance(secret, str) else secret
    scope = uid_map
    if not options.keep_uid_structure:
        key = key + b"|instance|" + str(ds.get("SOPInstanceUID", "") or "").encode()
        scope = {}
    names = _Pseudonyms(values=scope, secret=key)
    out = copy.deepcopy(ds)
    original_pid = str(ds.get("PatientID", "") or "")
    _clean(out, names=names, options=options)
    pseudonym = names.patient_id(original_pid)
    out.PatientID = pseudonym
    out.PatientName = f"{DUMMY_PERSON}^{pseudonym}"
    _mark_deidentified(out, options)
    _replace_file_meta(out, source=ds, names=names)
    return out


def _clean(ds: Dataset, *, names: _Pseudonyms, options: AnonymizationOptions) -> None:
    for tag in list(ds.keys()):
        elem = ds[tag]
        if tag.is_private:
            if PRIVATE_ACTION == "X":
                del ds[tag]
            continue
        if tag.element == 0x0000:
            # Group lengths (retired) would be wrong once attributes are removed.
            del ds[tag]
            continue
        action = _action_for(elem, options)
        _apply(ds, elem, action, names=names, options=options)


def _action_for(elem: DataElement, options: AnonymizationOptions) -> str:
    rule = rule_for(int(elem.tag))
    if rule is not None:
        if options.keep_dates and rule.keep_with_dates:
            return "K"
        return rule.applied
    if elem.VR in DATE_TIME_VRS:
        return "K" if options.keep_dates else "D"
    if elem.VR == "UI" and _uid_is_instance(elem):
        return "U"
    return "K"


def _uid_is_instance(elem: DataElement) -> bool:
    keyword = keyword_for_tag(elem.tag) or ""
    if keyword.endswith("ClassUID") or keyword in UID_KEEP_KEYWORDS:
        return False
    values = elem.value if elem.VM > 1 else [elem.value]
    return any(v and not str(v).startswith(STANDARD_UID_ROOT) for v in values)


def _apply(
    ds: Dataset,
    elem: DataElement,
    action: str,
    *,
    names: _Pseudonyms,
    options: AnonymizationOptions,
) -> None:
    if action == "X":
        del ds[elem.tag]
    elif action == "Z":
        elem.value = [] if elem.VR == "SQ" else None
    elif elem.VR == "SQ":  # K, C, D, U*: keep the items, apply the profile inside them
        for item in elem.value:
            _clean(item, names=names, options=options)
    elif action in ("U", "U*") and elem.VR == "UI":
        elem.value = _replaced_uids(elem, names)
    elif action in ("D", "U", "U*"):
        elem.value = _dummy(elem)


def _replaced_uids(elem: DataElement, names: _Pseudonyms) -> Any:
    if elem.value in (None, ""):
        return elem.value
    if elem.VM > 1:
        return [names.uid(str(v)) for v in elem.value]
    return names.uid(str(elem.value))


def _dummy(elem: DataElement) -> Any:
    if elem.VR in NUMERIC_VRS:
        return 0
    if elem.VR in BINARY_VRS:
        return b"\x00\x00"
    return DUMMY_BY_VR.get(elem.VR, DUMMY_TEXT)


def _mark_deidentified(ds: Dataset, options: AnonymizationOptions) -> None:
    """(0012,0062) YES, (0012,0063) and (0012,0064) naming profile and options (E.1.1 §6)."""
    ds.PatientIdentityRemoved = "YES"
    methods = ["DICOM PS3.15 E.1 Basic Profile (Lightbox)"]
    codes = [CODE_BASIC_PROFILE]
    if options.keep_dates:
        methods.append("Retain Full Dates Option")
        codes.append(CODE_FULL_DATES)
    methods.append("UIDs remapped per job" if options.keep_uid_structure else "UIDs per instance")
    methods.append("Keyed HMAC pseudonyms" if options.use_secure else "Random pseudonyms")
    ds.DeidentificationMethod = methods
    ds.DeidentificationMethodCodeSequence = [_code_item(value, meaning) for value, meaning in codes]
    # (0028,0303): whether dates and times still tell the true timeline.
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED" if options.keep_dates else "REMOVED"


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _replace_file_meta(out: Dataset, *, source: Dataset, names: _Pseudonyms) -> None:
    """A new File Meta Information and an empty preamble (E.1.1 §7): the old ones may
    carry identity (source AE titles, private meta, text in the preamble)."""
    old_meta = getattr(source, "file_meta", None) or FileMetaDataset()
    meta = FileMetaDataset()
    sop_class = out.get("SOPClassUID") or old_meta.get("MediaStorageSOPClassUID")
    sop_instance = out.get("SOPInstanceUID")
    if not sop_instance and old_meta.get("MediaStorageSOPInstanceUID"):
        sop_instance = names.uid(str(old_meta.MediaStorageSOPInstanceUID))
    if not sop_class or not sop_instance:
        raise MissingRequiredTag(MSG_NO_SOP_UIDS)
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = _transfer_syntax(source)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    out.file_meta = meta
    out.preamble = b"\x00" * 128  # type: ignore[attr-defined]


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(str(ts))
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian


def dataset_bytes(ds: Dataset) -> bytes:
    """Encode an anonymised dataset as a DICOM file (preamble, DICM, File Meta)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def burned_in_annotation_warning(ds: Dataset) -> str | None:
    """Whether pixels may carry burned-in identity, which this profile cannot remove.

    ``"yes"`` when (0028,0301) *Burned In Annotation* says YES; ``"unknown"`` when the
    attribute is absent and the modality or SOP class usually burns text in (ultrasound,
    secondary capture...); ``None`` otherwise.
    """
    value = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if value == "YES":
        return BURNED_IN_YES
    if value:
        return None
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if modality in BURNED_IN_RISK_MODALITIES or sop_class.startswith(SECONDARY_CAPTURE_PREFIX):
        return BURNED_IN_UNKNOWN
    return None


# --- reading sources ------------------------------------------------------------------------


def dataset_read(fh: BinaryIO) -> Dataset:
    """Parse a whole DICOM file (pixel data included) or raise :class:`InvalidDicomFile`.

    The bytes are read into memory (the anonymised copy is built in memory anyway), so the
    dataset holds no open file and copies cleanly.
    """
    data = fh.read()
    has_magic = len(data) >= 132 and data[128:132] == b"DICM"
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=not has_magic)
        keys = list(ds.keys())
    except (
        InvalidDicomError,
        EOFError,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
        OverflowError,
        UnicodeError,
        NotImplementedError,
    ) as exc:
        raise InvalidDicomFile(MSG_UNREADABLE.format(reason=type(exc).__name__)) from None
    # Without the DICM prefix, anything "parses": require a plausible dataset.
    if not has_magic and not (len(keys) >= 3 and any(t.group == 0x0008 for t in keys)):
        raise InvalidDicomFile(MSG_NOT_DICOM)
    return ds


def instance_dataset(instance: Instance) -> Dataset:
    with blob_open(instance.file_path) as fh:
        return dataset_read(fh)


@dataclass
class AnonymizedFile:
    data: bytes
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    burned_in_annotation: str | None

    @property
    def arcname(self) -> str:
        return f"{self.study_instance_uid}/{self.series_instance_uid}/{self.sop_instance_uid}.dcm"

    def summary(self) -> dict[str, Any]:
        return {
            "study_instance_uid": self.study_instance_uid,
            "series_instance_uid": self.series_instance_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "burned_in_annotation": self.burned_in_annotation,
            "warnings": [f"burned_in_annotation:{self.burned_in_annotation}"]
            if self.burned_in_annotation
            else [],
        }


def file_anonymize(*, ds: Dataset, options: AnonymizationOptions, secret: bytes) -> AnonymizedFile:
    """Anonymise one parsed file and encode it; the burned-in annotation risk is judged
    on the source (its Modality and SOP class survive anonymisation anyway)."""
    warning = burned_in_annotation_warning(ds)
    out = dataset_anonymize(ds=ds, options=options, uid_map={}, secret=secret)
    data = dataset_bytes(out)
    logger.info(
        "instance anonymised sop=%s study=%s bytes=%s",
        out.SOPInstanceUID,
        out.get("StudyInstanceUID", ""),
        len(data),
    )
    return AnonymizedFile(
        data=data,
        study_instance_uid=str(out.get("StudyInstanceUID", "") or "no-study"),
        series_instance_uid=str(out.get("SeriesInstanceUID", "") or "no-series"),
        sop_instance_uid=str(out.SOPInstanceUID),
        burned_in_annotation=warning,
    )


def instance_anonymize(
    *, instance: Instance, options: AnonymizationOptions, secret: bytes
) -> AnonymizedFile:
    return file_anonymize(ds=instance_dataset(instance), options=options, secret=secret)


# --- jobs: a study or a set of uploaded files → a ZIP ------------------------------------------

JOB_KIND = "anonymize"
SOURCE_STUDY = "study"
SOURCE_UPLOADS = "uploads"
REPORT_NAME = "anonymization_report.json"
MSG_EMPTY_STUDY = "The study holds no instances to anonymise."
MSG_NO_FILES = "Send one or more DICOM files in the multipart field 'files'."


def _job_params(options: AnonymizationOptions, **extra: Any) -> dict[str, Any]:
    return {"options": options.as_dict(), "salt": salt_new(), **extra}


def study_anonymize_start(*, study: Study, owner: Any, options: AnonymizationOptions) -> Any:
    """Queue a job anonymising every instance of ``study`` (one item per instance)."""
    from dicom.selectors import study_images
    from jobs.services import ItemSpec, job_create, job_enqueue

    ids = list(study_images(study=study).values_list("pk", flat=True))
    if not ids:
        raise LightboxError(MSG_EMPTY_STUDY, code="empty_study")
    job = job_create(
        kind=JOB_KIND,
        owner=owner,
        items=[ItemSpec(key=str(pk)) for pk in ids],
        params=_job_params(options, source=SOURCE_STUDY, study_id=study.pk),
    )
    job_enqueue(job=job)
    logger.info("anonymisation queued job=%s study=%s items=%s", job.pk, study.pk, len(ids))
    return job


def uploads_anonymize_start(
    *, uploads: list[Any], owner: Any, options: AnonymizationOptions
) -> Any:
    """Queue a job anonymising uploaded files; each is streamed to storage first."""
    from django.core.files.storage import default_storage

    from jobs.services import ItemSpec, job_create, job_dir, job_enqueue

    if not uploads:
        raise LightboxError(MSG_NO_FILES, code="no_files")
    job_id = uuid.uuid4()
    specs = []
    for index, upload in enumerate(uploads):
        name = default_storage.save(f"{job_dir(job_id)}/in/{index:05d}.dcm", File(upload))
        specs.append(
            ItemSpec(
                key=getattr(upload, "name", "") or f"file-{index}",
                input_name=name,
                input_size=getattr(upload, "size", None),
            )
        )
    job = job_create(
        kind=JOB_KIND,
        owner=owner,
        items=specs,
        job_id=job_id,
        params=_job_params(options, source=SOURCE_UPLOADS),
    )
    job_enqueue(job=job)
    logger.info("anonymisation queued job=%s uploads=%s", job.pk, len(specs))
    return job


def anonymize_item_run(*, job: Any, item: Any) -> dict[str, Any]:
    """One item: anonymise its instance or uploaded file into the job's folder.

    Idempotent: the pseudonyms are keyed by the job's salt, so a re-run writes the very
    same bytes under the very same name.
    """
    from django.core.files.storage import default_storage

    from dicom.selectors import instance_get
    from jobs.services import job_dir

    options = AnonymizationOptions(**job.params["options"])
    secret = pseudonym_secret(options=options, salt=job.params["salt"])
    if item.input_name:
        with default_storage.open(item.input_name, "rb") as fh:
            ds = dataset_read(fh)
    else:
        ds = instance_dataset(instance_get(user=job.owner, pk=item.key))
    anonymized = file_anonymize(ds=ds, options=options, secret=secret)
    name = f"{job_dir(job.pk)}/anon/{item.index:05d}.dcm"
    if default_storage.exists(name):
        default_storage.delete(name)
    stored = default_storage.save(name, ContentFile(anonymized.data))
    return {"file": stored, "arcname": anonymized.arcname, **anonymized.summary()}


def anonymize_finalize(*, job: Any) -> str | None:
    """Pack every anonymised file, plus a JSON report, into the job's ZIP."""
    from django.core.files.storage import default_storage

    from jobs.models import JobItem
    from jobs.services import job_dir

    items = list(job.items.order_by("index"))
    done = [i for i in items if i.status == JobItem.Status.DONE]
    if not done:
        return None
    name = f"{job_dir(job.pk)}/anonymized.zip"
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            used: set[str] = set()
            for item in done:
                arcname = _unique(item.result["arcname"], used)
                with (
                    default_storage.open(item.result["file"], "rb") as src,
                    zf.open(arcname, "w") as dst,
                ):
                    shutil.copyfileobj(src, dst, 1024 * 1024)
            zf.writestr(REPORT_NAME, json.dumps(_report(job, items), indent=2))
        tmp.seek(0)
        if default_storage.exists(name):
            default_storage.delete(name)
        stored = default_storage.save(name, File(tmp, name="anonymized.zip"))
    for item in done:
        default_storage.delete(item.result["file"])
    # The salt could help a dictionary attack on random pseudonyms: forget it.
    params = {k: v for k, v in job.params.items() if k != "salt"}
    type(job).objects.filter(pk=job.pk).update(params=params)
    return stored


def _unique(arcname: str, used: set[str]) -> str:
    candidate, n = arcname, 1
    while candidate in used:
        n += 1
        candidate = arcname.replace(".dcm", f"-{n}.dcm")
    used.add(candidate)
    return candidate


def _report(job: Any, items: list[Any]) -> dict[str, Any]:
    return {
        "profile": "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile",
        "options": job.params.get("options", {}),
        "total": len(items),
        "anonymized": sum(1 for i in items if i.status == "done"),
        "failed": [{"index": i.index, **i.error} for i in items if i.status == "failed"],
        "burned_in_annotation": [
            {
                "sop_instance_uid": i.result.get("sop_instance_uid"),
                "value": i.result.get("burned_in_annotation"),
            }
            for i in items
            if i.status == "done" and i.result.get("burned_in_annotation")
        ],
    }


def _register() -> None:
    from jobs.services import job_kind_register

    job_kind_register(name=JOB_KIND, item_run=anonymize_item_run, finalize=anonymize_finalize)


_register()
