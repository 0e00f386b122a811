"""The one ingest pipeline behind every entry point.

REST upload, ZIP upload, batches, STOW-RS, C-STORE and ``manage.py import_dicom`` all call
:func:`instance_ingest` (or :func:`staged_ingest` when the bytes are already staged). The
steps: stream to staging while hashing → parse the header without pixel data (a plain file in
one pass, :mod:`dicom.header_scan`; any other with pydicom) → validate →
de-duplicate → write Patient/Study/Series/Instance in one transaction (on PostgreSQL, one
statement for one more instance of a stored series of the uploader's own) and put the file at
``final/{sha256}/original.dcm`` before it commits. On any failure nothing remains: no row, no
staged file, no stored file.
"""

from __future__ import annotations

import logging
import mmap
import re
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from functools import cache, cached_property
from typing import IO, Any

import pydicom
from django.db import IntegrityError, transaction
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from dicom.dicom_json import dataset_json
from dicom.errors import (
    DuplicateInstanceConflict,
    InvalidDicomFile,
    LightboxError,
    MissingRequiredTag,
    StudyOwnershipConflict,
)
from dicom.header_scan import header_scan
from dicom.models import Instance, Patient, Series, Study
from dicom.rows import rows_insert_into_owned_series, rows_insert_linked, series_with_study
from dicom.storage import (
    StagedFile,
    blob_delete_tree,
    blob_put_keeps_name,
    blob_put_staged,
    original_name,
    staging_write,
)

logger = logging.getLogger(__name__)

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
REQUIRED_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
UNDEFINED_LENGTH = 0xFFFFFFFF
# pg_advisory_xact_lock(LOCK_STUDY, hashtext(StudyInstanceUID)): see _creation_lock
LOCK_STUDY = 0x4C42
ENCAPSULATED_PREFIX = "1.2.840.10008.1.2.4"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
DEFLATED = "1.2.840.10008.1.2.1.99"
DICOMDIR = "1.2.840.10008.1.3.10"
# Bulk values longer than this many base64 characters are stored as markers, not inline
BULK_THRESHOLD = 1024

MSG_EMPTY = "The file is empty."
MSG_NOT_DICOM = "The file is not DICOM: no DICM prefix and no readable dataset."
MSG_UNREADABLE = "The DICOM dataset could not be read: {reason}."
MSG_MISSING_UID = "Required attribute {keyword} is missing or empty."
MSG_BAD_UID = "Attribute {keyword} is not a valid UID."
MSG_TRUNCATED = "The DICOM dataset is truncated: element {tag} claims {length} bytes."
MSG_PIXELS_SHORT = (
    "The image declares {expected} bytes of pixel data but the file holds only {size} bytes."
)
MSG_CUT = "The DICOM dataset is truncated or damaged after byte {position}."
MSG_SERIES_ELSEWHERE = "SeriesInstanceUID already belongs to another study."
MSG_DICOMDIR = "A DICOMDIR is a media index, not an instance; upload the files it lists."

STATUS_STORED = "stored"
STATUS_DUPLICATE = "duplicate"
STATUS_OVERWRITTEN = "overwritten"


@dataclass
class IngestResult:
    instance: Instance
    status: str  # stored | duplicate | overwritten

    @property
    def created(self) -> bool:
        return self.status != STATUS_DUPLICATE


@dataclass
class IngestOutcome:
    """One file's outcome in a multi-file ingest: a result or an error."""

    filename: str
    result: IngestResult | None = None
    error: LightboxError | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def instance_ingest(
    *,
    stream: IO[bytes],
    owner: Any,
    source: str,
    filename: str = "",
    overwrite: bool = False,
    expected_study_uid: str | None = None,
) -> IngestResult:
    """Ingest one DICOM file read from ``stream``. Raises a :class:`LightboxError`."""
    staged = staging_write(stream, filename=filename)
    return staged_ingest(
        staged=staged,
        owner=owner,
        source=source,
        overwrite=overwrite,
        expected_study_uid=expected_study_uid,
    )


def staged_ingest(
    *,
    staged: StagedFile,
    owner: Any,
    source: str,
    overwrite: bool = False,
    expected_study_uid: str | None = None,
) -> IngestResult:
    """Ingest a file already in staging; the staged file is always consumed."""
    try:
        header = ingest_header_read(staged)
        if expected_study_uid is not None and header.uid("StudyInstanceUID") != expected_study_uid:
            raise StudyOwnershipConflict(
                "The instance belongs to another study than the one addressed.",
                code="study_uid_mismatch",
            )
        return _ingest_parsed(
            staged=staged, header=header, owner=owner, source=source, overwrite=overwrite
        )
    finally:
        staged.discard()


@dataclass(frozen=True)
class Header:
    """What the ingest reads of a file: its header as DICOM JSON (bulk values as
    ``bulk/GGGGEEEE`` markers, see :func:`header_json`) and two UIDs of its file meta."""

    json: dict[str, Any]
    transfer_syntax_uid: str
    media_storage_sop_class_uid: str

    @classmethod
    def of_dataset(cls, ds: Dataset) -> Header:
        """The header of a dataset read by :func:`header_read`."""
        meta = getattr(ds, "file_meta", None)
        return cls(
            json=ds.lightbox_header,  # type: ignore[attr-defined]
            transfer_syntax_uid=str(getattr(meta, "TransferSyntaxUID", "") or ""),
            media_storage_sop_class_uid=str(getattr(meta, "MediaStorageSOPClassUID", "") or ""),
        )

    @cached_property
    def values(self) -> _HeaderValues:
        return _HeaderValues(self.json)

    def uid(self, keyword: str) -> str:
        return str(self.values.get(keyword) or "").strip()


def ingest_header_read(staged: StagedFile) -> Header:
    """The header of a staged file to store, with every check of :func:`header_read`.

    A plain file (explicit VR little endian, nothing unusual) is read in one pass straight
    to its DICOM JSON by :func:`dicom.header_scan.header_scan`, the same JSON pydicom's read
    gives; any other file, hostile ones included, is read by pydicom (:func:`header_read`)."""
    if staged.size == 0:
        raise InvalidDicomFile(MSG_EMPTY)
    with staged.path.open("rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as fh:
        scanned = header_scan(fh, staged.size, bulk_threshold=BULK_THRESHOLD, bulk_marker=_bulk_uri)
    if scanned is None:
        return _dataset_read(staged, require_uids=True)[1]
    header = Header(
        json=scanned.json,
        transfer_syntax_uid=scanned.transfer_syntax_uid,
        media_storage_sop_class_uid=scanned.media_storage_sop_class_uid,
    )
    _check_header(header, staged.size, require_uids=True)
    return header


def header_read(staged: StagedFile, *, require_uids: bool = True) -> Dataset:
    """Parse and validate the header of a staged file without reading pixel data.

    Hostile-input checks: an empty file, no DICM prefix and no plausible dataset, a file cut
    inside an element, declared lengths beyond the file, sequences nested too deep, an image
    size the pixel data cannot hold. ``require_uids`` adds what the archive needs to *store*
    a file (the three UIDs, not a DICOMDIR); reading one (``read/file``) needs none. The
    DICOM JSON of the header (bulk values as markers) is attached as ``lightbox_header``.
    """
    return _dataset_read(staged, require_uids=require_uids)[0]


def _dataset_read(staged: StagedFile, *, require_uids: bool) -> tuple[Dataset, Header]:
    """:func:`header_read`, giving the checked :class:`Header` too."""
    if staged.size == 0:
        raise InvalidDicomFile(MSG_EMPTY)
    # Read through a memory map: pydicom asks the file its position at every element, and
    # a file object answers each time with a system call (some 150 per CT header).
    with staged.path.open("rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as fh:
        preamble = fh.read(132)
        has_magic = len(preamble) == 132 and preamble[128:132] == b"DICM"
        fh.seek(0)
        try:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=not has_magic)
            _check_consumed(fh, ds, staged.size)
            _check_raw_lengths(ds, staged.size)
            # Convert every element now, so that bad values fail here, not in a view.
            header = header_json(ds)
        except LightboxError:
            raise
        except RecursionError:
            raise InvalidDicomFile(MSG_UNREADABLE.format(reason="sequences nested too deep"))
        except Exception as exc:  # noqa: BLE001 - any parse failure is "not readable DICOM"
            raise InvalidDicomFile(MSG_UNREADABLE.format(reason=type(exc).__name__))
    if not has_magic and not _looks_like_dicom(ds):
        raise InvalidDicomFile(MSG_NOT_DICOM)
    ds.lightbox_header = header  # type: ignore[attr-defined]
    # The checks read the converted header: no element is converted again.
    checked = Header.of_dataset(ds)
    _check_header(checked, staged.size, require_uids=require_uids)
    return ds, checked


def _check_header(header: Header, file_size: int, *, require_uids: bool) -> None:
    if require_uids:
        _check_storable(header)
    try:
        _check_pixel_size(header, file_size)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidDicomFile(MSG_UNREADABLE.format(reason=type(exc).__name__))


def _check_storable(header: Header) -> None:
    if header.media_storage_sop_class_uid == DICOMDIR:
        raise InvalidDicomFile(MSG_DICOMDIR, code="dicomdir")
    for keyword in REQUIRED_UIDS:
        value = header.uid(keyword)
        if not value:
            raise MissingRequiredTag(MSG_MISSING_UID.format(keyword=keyword), tag=keyword)
        if len(value) > 64 or not UID_RE.match(value):
            raise MissingRequiredTag(MSG_BAD_UID.format(keyword=keyword), tag=keyword)


PIXEL_TAG_BYTES = frozenset(
    (tag >> 16).to_bytes(2, order) + (tag & 0xFFFF).to_bytes(2, order)
    for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float, Double Float
    for order in ("little", "big")
)


def _check_consumed(fh: mmap.mmap, ds: Dataset, size: int) -> None:
    """pydicom stops quietly at an element cut inside its 8-byte header: the last element
    read must end where the header read stopped (end of file or the pixel data tag)."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and str(meta.get("TransferSyntaxUID", "")) == DEFLATED:
        return  # pydicom parsed an inflated copy: positions in ``fh`` don't apply
    position = fh.tell()
    if position < size and fh.read(4) not in PIXEL_TAG_BYTES:
        raise InvalidDicomFile(MSG_CUT.format(position=position))
    if not ds._dict:
        return
    last = ds._dict[max(ds._dict)]
    value_tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if value_tell is None or length is None or length == UNDEFINED_LENGTH:
        return
    if value_tell + length < position:
        raise InvalidDicomFile(MSG_CUT.format(position=value_tell + length))


def header_json(ds: Dataset) -> dict[str, Any]:
    """The header as DICOM JSON, bulk values as ``bulk/GGGGEEEE`` markers; an element
    whose value cannot be converted is left out. :func:`dicom.dicom_json.dataset_json`
    reads the simple elements' bytes itself (~1 ms for a CT header instead of ~9 ms) and
    leaves the rest to pydicom, element by element, with the same result.

    Not ``Dataset.to_json_dict(suppress_invalid_tags=True)``: that switches pydicom's
    *global* reading validation to "raise" while it runs, which makes reads in other
    threads (concurrent requests) fail on values they would otherwise accept.
    """
    return dataset_json(ds, bulk_threshold=BULK_THRESHOLD, bulk_marker=_bulk_marker)


def _bulk_marker(elem: Any) -> str:
    return _bulk_uri(elem.tag)


def _bulk_uri(tag: int) -> str:
    return f"bulk/{tag:08X}"


def _looks_like_dicom(ds: Dataset) -> bool:
    """A file without the DICM prefix is accepted only if it parsed into plausible
    DICOM: at least a few elements, all in ascending tag order of known groups."""
    tags = list(ds.keys())
    return len(tags) >= 3 and any(t.group == 0x0008 for t in tags)


def _check_raw_lengths(ds: Dataset, file_size: int) -> None:
    """Reject elements whose declared length exceeds what the file holds."""
    for elem in ds._dict.values():  # raw elements: not yet converted
        length = getattr(elem, "length", 0) or 0
        if length != UNDEFINED_LENGTH and length > file_size:
            raise InvalidDicomFile(MSG_TRUNCATED.format(tag=str(elem.tag), length=length))
        value = getattr(elem, "value", None)
        if isinstance(value, bytes) and length != UNDEFINED_LENGTH and len(value) < length:
            raise InvalidDicomFile(MSG_TRUNCATED.format(tag=str(elem.tag), length=length))


def _check_pixel_size(header: Header, file_size: int) -> None:
    """Native pixel data can't be larger than the file: reject impossible image sizes."""
    values = header.values
    rows, columns = _int(values, "Rows"), _int(values, "Columns")
    if rows is None or columns is None:
        return
    ts = header.transfer_syntax_uid
    if ts.startswith(ENCAPSULATED_PREFIX) or ts in (RLE_LOSSLESS, DEFLATED):
        return
    frames = max(1, _int(values, "NumberOfFrames") or 1)
    bits = _int(values, "BitsAllocated") or 8
    samples = _int(values, "SamplesPerPixel") or 1
    if _text(values, "PhotometricInterpretation", 32) == "YBR_FULL_422":
        samples = 2  # two chroma samples shared by each pair of pixels
    expected = rows * columns * frames * samples * bits // 8
    if expected > file_size:
        raise InvalidDicomFile(MSG_PIXELS_SHORT.format(expected=expected, size=file_size))


# --- writing ---------------------------------------------------------------------------


def _ingest_parsed(
    *, staged: StagedFile, header: Header, owner: Any, source: str, overwrite: bool
) -> IngestResult:
    sop_uid = header.uid("SOPInstanceUID")
    stored = _Stored()
    try:
        # The common case is a new instance: write it, and let the unique SOP Instance UID
        # say when it is not (no row is written; a file already put is handled below).
        try:
            return _write_new(
                staged=staged, header=header, owner=owner, source=source, stored=stored
            )
        except IntegrityError:
            existing = (
                Instance.objects.select_related("series__study")
                .filter(sop_instance_uid=sop_uid)
                .first()
            )
            if existing is None:
                raise
        _check_study_access(existing.series.study, owner)
        if existing.sha256 == staged.sha256:
            return IngestResult(existing, STATUS_DUPLICATE)
        if not overwrite:
            raise DuplicateInstanceConflict(sop_instance_uid=sop_uid)
        try:
            return _write(
                staged=staged,
                header=header,
                owner=owner,
                source=source,
                replace=existing,
                stored=stored,
            )
        except IntegrityError:
            # A concurrent upload stored this SOP Instance UID again: decide once more.
            existing = Instance.objects.filter(sop_instance_uid=sop_uid).first()
            if existing is not None and existing.sha256 == staged.sha256:
                return IngestResult(existing, STATUS_DUPLICATE)
            raise DuplicateInstanceConflict(sop_instance_uid=sop_uid) from None
    except BaseException:
        # Nothing stays: the stored file goes unless a row (a duplicate's) names it.
        if stored.name is not None and not Instance.objects.filter(sha256=staged.sha256).exists():
            blob_delete_tree(staged.sha256)
        raise


@dataclass
class _Stored:
    """Where the staged file was put in storage, once it was (it is moved only once)."""

    name: str | None = None

    def put(self, staged: StagedFile) -> str:
        if self.name is None:
            self.name = blob_put_staged(staged)
        return self.name


def _write_new(
    *, staged: StagedFile, header: Header, owner: Any, source: str, stored: _Stored
) -> IngestResult:
    """A new instance: on PostgreSQL, of a series already stored in a study of the
    uploader's own, in one statement (:func:`_write_owned_series`); otherwise, and when
    that statement found nothing to write into, in a transaction (:func:`_write`)."""
    args = {"staged": staged, "header": header, "owner": owner, "source": source, "stored": stored}
    if _owned_series_write_possible(owner):
        result = _write_owned_series(**args)
        if result is not None:
            return result
    return _write(**args, replace=None)


def _owned_series_write_possible(owner: Any) -> bool:
    """PostgreSQL, an uploader who can own a study, and a storage where putting the same
    content twice lands on the same name (the file is put before the row is known new)."""
    return (
        getattr(owner, "pk", None) is not None
        and transaction.get_connection().vendor == "postgresql"
        and blob_put_keeps_name()
    )


def _write_owned_series(
    *, staged: StagedFile, header: Header, owner: Any, source: str, stored: _Stored
) -> IngestResult | None:
    """One statement, one commit: the series read with its study and, when the study is
    the uploader's own and has the instance's Study Instance UID, the instance inserted
    with its audit record (:func:`dicom.rows.rows_insert_into_owned_series`). The file
    is put in place first, so that a row never names a file that is not stored. None when
    the statement wrote nothing: a new series, another owner's study, another study."""
    instance = _instance_new(staged=staged, header=header, owner=owner, source=source)
    instance.file_path = stored.put(staged)
    audit = _audit_store(instance, owner, source)
    audit.study_uid = header.uid("StudyInstanceUID")[:64]
    connection = transaction.get_connection()
    # Alone, the statement is its own transaction; inside another one, a savepoint lets a
    # unique violation roll back only this.
    with nullcontext() if connection.get_autocommit() else transaction.atomic():
        series = rows_insert_into_owned_series(
            instance,
            audit,
            series_uid=header.uid("SeriesInstanceUID"),
            study_uid=header.uid("StudyInstanceUID"),
            owner_id=owner.pk,
        )
    if series is None:
        return None
    _stored_log(instance, source, staged.size)
    return IngestResult(instance, STATUS_STORED)


def _write(
    *,
    staged: StagedFile,
    header: Header,
    owner: Any,
    source: str,
    replace: Instance | None,
    stored: _Stored,
) -> IngestResult:
    """One transaction, one commit: the rows, the stored file and the audit record.

    On PostgreSQL it serves a new series or study, another owner's (shared) study and
    overwrites; see :func:`_write_owned_series` for the common case."""
    old_sha = replace.sha256 if replace is not None else None
    with transaction.atomic():
        study, series, series_created = _study_series_get_or_create(header, owner=owner)
        if replace is not None:
            Instance.objects.filter(pk=replace.pk).delete()
        instance = _instance_new(staged=staged, header=header, owner=owner, source=source)
        instance.series = series
        rows_insert_linked(instance, _audit_store(instance, owner, source), link="instance_id")
        if series_created or replace is not None:  # the study's modalities may change
            study_refresh_modalities(study, lock=True)
        stored_name = stored.put(staged)
        if stored_name != instance.file_path:  # object storage may pick another name
            instance.file_path = stored_name
            instance.save(update_fields=["file_path"])
    if old_sha and old_sha != staged.sha256:
        transaction.on_commit(lambda: _blob_release(old_sha))
    _stored_log(instance, source, staged.size)
    return IngestResult(instance, STATUS_OVERWRITTEN if replace else STATUS_STORED)


def _instance_new(*, staged: StagedFile, header: Header, owner: Any, source: str) -> Instance:
    return Instance(
        sha256=staged.sha256,
        file_size=staged.size,
        file_path=original_name(staged.sha256),
        original_filename=staged.filename[:255],
        source=source,
        uploaded_by=owner if getattr(owner, "pk", None) else None,
        header=header.json,
        **instance_columns(header),
    )


def _stored_log(instance: Instance, source: str, size: int) -> None:
    series = instance.series
    logger.info(
        "instance stored sop=%s series=%s study=%s source=%s bytes=%s",
        instance.sop_instance_uid,
        series.series_instance_uid,
        series.study.study_instance_uid,
        source,
        size,
    )


SOURCE_PROTOCOLS = {"stow": "dicomweb", "dimse": "dimse", "import": "cli"}


def _audit_store(instance: Instance, owner: Any, source: str) -> Any:
    """The audit record of a store, written with the instance: no instance without it."""
    from developers.audit import audit_event

    return audit_event(
        user=owner if getattr(owner, "pk", None) else None,
        action="store",
        instance=instance,
        protocol=SOURCE_PROTOCOLS.get(source, "http"),
        detail=source,
    )


def _blob_release(sha256: str) -> None:
    if not Instance.objects.filter(sha256=sha256).exists():
        blob_delete_tree(sha256)


def _check_study_access(study: Study, owner: Any) -> None:
    if owner is None or getattr(owner, "is_staff", False):
        return
    if study.owner_id is not None and study.owner_id == getattr(owner, "pk", None):
        return  # the owner: no query
    if not Study.objects.visible_to(owner).filter(pk=study.pk).exists():
        raise StudyOwnershipConflict()


def _study_series_get_or_create(header: Header, *, owner: Any) -> tuple[Study, Series, bool]:
    """The study and series rows of an instance, created when new; ``True`` when the
    series was created.

    The common case is one more instance of a stored series: its row, its study's row and
    whether the study is shared (the upload event needs that) come in one statement."""
    series = series_with_study(header.uid("SeriesInstanceUID"))
    if series is None and _creation_lock(header.uid("StudyInstanceUID")):
        series = series_with_study(header.uid("SeriesInstanceUID"))  # made while we waited?
    if series is None:
        study = _study_get_or_create(header, owner=owner)
        series, created = _series_get_or_create(header, study=study)
        return study, series, created
    study = series.study
    if study.study_instance_uid != header.uid("StudyInstanceUID"):
        raise InvalidDicomFile(MSG_SERIES_ELSEWHERE, code="series_study_mismatch")
    _check_study_access(study, owner)
    return study, series, False


def _creation_lock(study_uid: str) -> bool:
    """On PostgreSQL, take the study's creation lock until the transaction ends and say
    so: writers that all found a series missing (the first instances of a new series,
    arriving together) then create it one after the other, and the later ones find it made
    instead of racing for the unique constraint (a failed INSERT, a rolled-back savepoint
    and a second read each). Other writers serialise anyway (SQLite) or do not need it."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_STUDY, study_uid])
    return True


def _study_get_or_create(header: Header, *, owner: Any) -> Study:
    """The study row, created with its patient when new. A concurrent creator of the same
    study wins the unique constraint; we then use theirs."""
    uid = header.uid("StudyInstanceUID")
    study = Study.objects.filter(study_instance_uid=uid).first()
    if study is None:
        patient = _patient_get_or_create(header)
        try:
            with transaction.atomic():  # a savepoint: the race below must not sink the rest
                study = Study.objects.create(
                    study_instance_uid=uid, patient_record=patient, **_study_columns(header, owner)
                )
            study.is_shared = False
            return study
        except IntegrityError:
            study = Study.objects.get(study_instance_uid=uid)
    _check_study_access(study, owner)
    return study


def _patient_get_or_create(header: Header) -> Patient:
    values = header.values
    patient, _ = Patient.objects.get_or_create(
        patient_id=_text(values, "PatientID", 64),
        issuer_of_patient_id=_text(values, "IssuerOfPatientID", 64),
        defaults={
            "patient_name": _text(values, "PatientName", 324),
            "birth_date": _date(values, "PatientBirthDate"),
            "sex": _text(values, "PatientSex", 16),
        },
    )
    return patient


def _study_columns(header: Header, owner: Any) -> dict[str, Any]:
    values = header.values
    return {
        "owner": owner if getattr(owner, "pk", None) else None,
        "patient_name": _text(values, "PatientName", 324),
        "patient_id": _text(values, "PatientID", 64),
        "patient_birth_date": _date(values, "PatientBirthDate"),
        "patient_sex": _text(values, "PatientSex", 16),
        "study_date": _date(values, "StudyDate"),
        "study_time": _text(values, "StudyTime", 32),
        "accession_number": _text(values, "AccessionNumber", 64),
        "study_id": _text(values, "StudyID", 16),
        "study_description": _text(values, "StudyDescription", 256),
        "referring_physician_name": _text(values, "ReferringPhysicianName", 324),
    }


def _series_get_or_create(header: Header, *, study: Study) -> tuple[Series, bool]:
    values = header.values
    series, created = Series.objects.get_or_create(
        series_instance_uid=header.uid("SeriesInstanceUID"),
        defaults={
            "study": study,
            "modality": _text(values, "Modality", 16),
            "series_number": _int(values, "SeriesNumber"),
            "series_description": _text(values, "SeriesDescription", 256),
            "series_date": _date(values, "SeriesDate"),
            "series_time": _text(values, "SeriesTime", 32),
            "body_part_examined": _text(values, "BodyPartExamined", 64),
            "frame_of_reference_uid": _text(values, "FrameOfReferenceUID", 64),
        },
    )
    if not created and series.study_id != study.pk:
        raise InvalidDicomFile(MSG_SERIES_ELSEWHERE, code="series_study_mismatch")
    series.study = study  # the locked row: later readers (events) need no query
    return series, created


def study_refresh_modalities(study: Study, *, lock: bool = False) -> None:
    """Recompute ModalitiesInStudy from the study's series. ``lock`` first takes the
    study's row lock, so that writers adding series to one study concurrently each see
    the others' committed series (only series creation takes it: instances of known
    series are stored without waiting for each other)."""
    if lock:
        locked = Study.objects.select_for_update().filter(pk=study.pk)
        study.modalities_in_study = locked.values_list("modalities_in_study", flat=True).get()
    modalities = sorted(
        {m for m in Series.objects.filter(study=study).values_list("modality", flat=True) if m}
    )
    value = "\\".join(modalities)[:128]
    if value != study.modalities_in_study:
        Study.objects.filter(pk=study.pk).update(modalities_in_study=value)
        study.modalities_in_study = value


def instance_columns(header: Header) -> dict[str, Any]:
    """The indexed Instance columns read from a header (pixel data never touched).

    The values come from the header's DICOM JSON, where every element is already
    converted."""
    ts = header.transfer_syntax_uid
    sop_uid = header.uid("SOPInstanceUID")
    values = header.values
    spacing = _floats(values, "PixelSpacing") or _floats(values, "ImagerPixelSpacing")
    return {
        "sop_instance_uid": sop_uid,
        "sop_class_uid": _text(values, "SOPClassUID", 64) or header.media_storage_sop_class_uid,
        "instance_number": _int(values, "InstanceNumber"),
        "transfer_syntax_uid": ts[:64],
        "rows": _int(values, "Rows"),
        "columns": _int(values, "Columns"),
        "number_of_frames": max(1, _int(values, "NumberOfFrames") or 1),
        "samples_per_pixel": _int(values, "SamplesPerPixel"),
        "bits_allocated": _int(values, "BitsAllocated"),
        "bits_stored": _int(values, "BitsStored"),
        "pixel_representation": _int(values, "PixelRepresentation"),
        "photometric_interpretation": _text(values, "PhotometricInterpretation", 32),
        "has_pixel_data": _has_pixels(values),
        "pixel_spacing_row": spacing[0] if len(spacing) >= 2 else None,
        "pixel_spacing_column": spacing[1] if len(spacing) >= 2 else None,
        "window_center": (_floats(values, "WindowCenter") or [None])[0],
        "window_width": (_floats(values, "WindowWidth") or [None])[0],
        "rescale_slope": (_floats(values, "RescaleSlope") or [None])[0],
        "rescale_intercept": (_floats(values, "RescaleIntercept") or [None])[0],
        "acquisition_date": _date(values, "AcquisitionDate"),
        "content_date": _date(values, "ContentDate"),
        "image_comments": _text(values, "ImageComments", 1024),
    }


class _HeaderValues:
    """Element values read from a header's DICOM JSON as ``Dataset.get`` gives them: None,
    one value, or a list of several; a person name as its text (``str(PersonName)``)."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.header = header

    def get(self, keyword: str) -> Any:
        entry = self.header.get(_json_key(keyword))
        values = entry.get("Value") if entry else None
        if not values:
            return None
        if entry.get("vr") == "PN":
            values = ["=".join(name.values()) for name in values]
        return values[0] if len(values) == 1 else values

    def __contains__(self, keyword: str) -> bool:
        return _json_key(keyword) in self.header


@cache
def _json_key(keyword: str) -> str:
    return f"{tag_for_keyword(keyword):08X}"


def _has_pixels(values: _HeaderValues) -> bool:
    # The header holds no pixel data element; an image has Rows/Columns.
    return "Rows" in values and "Columns" in values


def _text(values: _HeaderValues, keyword: str, max_length: int) -> str:
    value = values.get(keyword)
    if value is None:
        return ""
    if isinstance(value, list):
        value = "\\".join("" if v is None else str(v) for v in value)
    return str(value).strip().replace("\x00", "")[:max_length]


def _int(values: _HeaderValues, keyword: str) -> int | None:
    try:
        value = values.get(keyword)
        if isinstance(value, list):
            value = value[0]
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None


def _floats(values: _HeaderValues, keyword: str) -> list[float]:
    try:
        value = values.get(keyword)
        if value in (None, ""):
            return []
        numbers = value if isinstance(value, list) else [value]
        return [float(v) for v in numbers]
    except (TypeError, ValueError, OverflowError):
        return []


def _date(values: _HeaderValues, keyword: str) -> date | None:
    raw = _text(values, keyword, 32).replace(".", "").replace("-", "")
    if len(raw) < 8 or not raw[:8].isdigit():
        return None
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None


# --- many files: uploads and ZIP archives -----------------------------------------------


def outcomes_ingest(
    *,
    staged_files: Iterator[StagedFile] | list[StagedFile],
    owner: Any,
    source: str,
    overwrite: bool = False,
) -> list[IngestOutcome]:
    """Ingest several staged files; one file's failure never stops the others."""
    outcomes = []
    for staged in staged_files:
        try:
            result = staged_ingest(staged=staged, owner=owner, source=source, overwrite=overwrite)
            outcomes.append(IngestOutcome(filename=staged.filename, result=result))
        except LightboxError as exc:
            logger.info("upload rejected code=%s source=%s", exc.code, source)
            outcomes.append(IngestOutcome(filename=staged.filename, error=exc))
    return outcomes
