"""The DICOM SCP: C-ECHO, C-STORE and C-FIND (PS3.4 Annexes A, B, C) with pynetdicom.

C-STORE writes the received dataset (with the File Meta of its presentation context) to
staging and calls the one ingest pipeline; C-FIND runs the QIDO-RS matcher on the
database at PATIENT/STUDY/SERIES/IMAGE level for Patient Root and Study Root. The calling
AE title decides which user an association acts as (``DICOM_SCP_ALLOWED``); with a list
that has no ``*`` entry, other AE titles are rejected at association time.

pynetdicom runs each association in its own thread, so every handler gets the thread's
own Django connection; it is closed when the association ends.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from dicom.dicomweb import qido
from dicom.errors import (
    DuplicateInstanceConflict,
    FileTooLarge,
    InvalidDicomFile,
    LightboxError,
    MissingRequiredTag,
    StudyOwnershipConflict,
)
from dicom.ingest import staged_ingest
from dicom.storage import staging_write

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
PENDING = 0xFF00
OUT_OF_RESOURCES = 0xA700
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NOT_AUTHORIZED = 0x0124
FIND_IDENTIFIER_MISMATCH = 0xA900
FIND_UNABLE_TO_PROCESS = 0xC001
CANCEL = 0xFE00
LEVELS = {"PATIENT": None, "STUDY": qido.STUDY, "SERIES": qido.SERIES, "IMAGE": qido.INSTANCE}


@dataclass(frozen=True)
class ScpConfig:
    ae_title: str
    allowed: dict[str, str]  # calling AE title (or "*") -> user email

    @classmethod
    def from_settings(cls) -> ScpConfig:
        return cls(
            ae_title=settings.DICOM_SCP_AE_TITLE,
            allowed=allowed_parse(settings.DICOM_SCP_ALLOWED),
        )


def allowed_parse(value: str) -> dict[str, str]:
    """``"MODALITY1=owner@example.com,*=archive@example.com"`` → {AE: email}."""
    allowed = {}
    for item in value.replace(";", ",").split(","):
        ae, sep, email = item.partition("=")
        if sep and ae.strip() and email.strip():
            allowed[ae.strip()] = email.strip()
    return allowed


def calling_user(config: ScpConfig, ae_title: str) -> Any:
    """The user a calling AE acts as; None (staff-only visibility) when nothing is set."""
    email = config.allowed.get(ae_title.strip()) or config.allowed.get("*")
    if not email:
        return None
    return get_user_model().objects.filter(email__iexact=email, is_active=True).first()


def store_status(exc: Exception) -> int:
    """C-STORE failure status for an ingest error (PS3.4 B.2.3, PS3.7 C)."""
    if isinstance(exc, FileTooLarge | DatabaseError):
        return OUT_OF_RESOURCES
    if isinstance(exc, DuplicateInstanceConflict):
        return DUPLICATE_SOP_INSTANCE
    if isinstance(exc, StudyOwnershipConflict):
        return NOT_AUTHORIZED
    if isinstance(exc, MissingRequiredTag):
        return DATASET_MISMATCH
    if isinstance(exc, InvalidDicomFile):
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE


# --- handlers ---------------------------------------------------------------------------


def handle_echo(event: Any) -> int:
    return SUCCESS


def handle_store(event: Any, config: ScpConfig) -> int:
    calling = event.assoc.requestor.ae_title
    owner = calling_user(config, calling)
    if owner is None and config.allowed:
        logger.warning("c-store refused: no active user for calling ae=%s", calling)
        return NOT_AUTHORIZED
    try:
        staged = staging_write(
            io.BytesIO(event.encoded_dataset(include_meta=True)), filename="c-store"
        )
        staged_ingest(staged=staged, owner=owner, source="dimse")  # audited by the ingest
    except (LightboxError, DatabaseError) as exc:
        logger.info("c-store refused ae=%s code=%s", calling, getattr(exc, "code", "db"))
        return store_status(exc)
    return SUCCESS


def handle_find(event: Any, config: ScpConfig) -> Iterator[tuple[int, Dataset | None]]:
    identifier = event.identifier
    level = str(identifier.get("QueryRetrieveLevel", "")).upper()
    if level not in LEVELS:
        yield FIND_IDENTIFIER_MISMATCH, None
        return
    owner = calling_user(config, event.assoc.requestor.ae_title)
    try:
        datasets = find_datasets(identifier=identifier, level=level, user=owner)
    except LightboxError as exc:
        logger.info("c-find refused code=%s", exc.code)
        yield FIND_UNABLE_TO_PROCESS, None
        return
    for data in datasets:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, find_answer(identifier, data, level)


def _close_connections(event: Any) -> None:
    connections.close_all()


# --- C-FIND on the QIDO matcher ---------------------------------------------------------


def _query_params(identifier: Dataset) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for elem in identifier:
        if (
            elem.tag.group in (0x0000, 0x0002)
            or elem.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet")
            or elem.VR == "SQ"
        ):
            continue
        value = elem.value
        if value is None:
            text = ""
        elif isinstance(value, MultiValue | list | tuple):
            text = "\\".join(str(v) for v in value)
        else:
            text = str(value)
        params[f"{elem.tag:08X}"] = [text]
    params["limit"] = [str(qido.MAX_LIMIT)]
    return params


def find_datasets(*, identifier: Dataset, level: str, user: Any) -> list[dict[str, Any]]:
    query = qido.qido_query_parse(_query_params(identifier))
    url = "dicom:"  # RetrieveURL is not part of a C-FIND answer
    if level in ("PATIENT", "STUDY"):
        datasets = qido.studies_search(user=user, query=query, studies_url=url).datasets
        return _patients(datasets) if level == "PATIENT" else datasets
    if level == "SERIES":
        return qido.series_search(user=user, query=query, studies_url=url).datasets
    return qido.instances_search(user=user, query=query, studies_url=url).datasets


def _patients(studies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Patient-level answers: the studies grouped by Patient ID and name, with counts
    (0020,1200) (0020,1202) (0020,1204)."""
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for study in studies:
        key = (
            str(study.get("00100020", {}).get("Value", [""])[0]),
            str(study.get("00100010", {}).get("Value", [""])[0]),
        )
        entry = grouped.setdefault(
            key,
            {
                tag: study[tag]
                for tag in ("00100010", "00100020", "00100030", "00100040")
                if tag in study
            }
            | {"_studies": 0, "_series": 0, "_instances": 0},
        )
        entry["_studies"] += 1
        entry["_series"] += int(study.get("00201206", {}).get("Value", [0])[0])
        entry["_instances"] += int(study.get("00201208", {}).get("Value", [0])[0])
    answers = []
    for entry in grouped.values():
        answers.append(
            {k: v for k, v in entry.items() if not k.startswith("_")}
            | {
                "00201200": {"vr": "IS", "Value": [entry["_studies"]]},
                "00201202": {"vr": "IS", "Value": [entry["_series"]]},
                "00201204": {"vr": "IS", "Value": [entry["_instances"]]},
            }
        )
    return answers


def find_answer(identifier: Dataset, data: dict[str, Any], level: str) -> Dataset:
    """The requested keys only (PS3.4 C.2.2.1.2), filled from one match."""
    source = Dataset.from_json({k: v for k, v in data.items() if k != "00081190"})
    answer = Dataset()
    answer.SpecificCharacterSet = "ISO_IR 192"
    for elem in identifier:
        if elem.keyword == "SpecificCharacterSet":
            continue
        if elem.tag in source:
            answer.add(source[elem.tag])
        else:
            answer.add_new(elem.tag, elem.VR, None)
    answer.QueryRetrieveLevel = level
    answer.RetrieveAETitle = settings.DICOM_SCP_AE_TITLE
    return answer


# --- the application entity -------------------------------------------------------------


def scp_ae(config: ScpConfig) -> AE:
    ae = AE(ae_title=config.ae_title)
    ae.maximum_associations = settings.DICOM_SCP_MAX_ASSOCIATIONS
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    for sop_class in (
        Verification,
        PatientRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelFind,
    ):
        ae.add_supported_context(sop_class, ALL_TRANSFER_SYNTAXES)
    if config.allowed and "*" not in config.allowed:
        ae.require_calling_aet = list(config.allowed)
    return ae


def scp_start(*, host: str, port: int, config: ScpConfig | None = None) -> Any:
    """Start the SCP in background threads; returns the server (call ``shutdown()``)."""
    config = config or ScpConfig.from_settings()
    handlers = [
        (evt.EVT_C_ECHO, handle_echo),
        (evt.EVT_C_STORE, handle_store, [config]),
        (evt.EVT_C_FIND, handle_find, [config]),
        (evt.EVT_RELEASED, _close_connections),
        (evt.EVT_ABORTED, _close_connections),
    ]
    server = scp_ae(config).start_server((host, port), block=False, evt_handlers=handlers)
    logger.info("dicom scp listening ae=%s host=%s port=%s", config.ae_title, host, port)
    return server
