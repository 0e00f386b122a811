"""Write ``docs/anonymization.md`` from the profile data (``dicom.anonymize_profile``).

``manage.py anonymization_table`` prints the page; ``--write`` replaces the file. A test
fails when the checked-in page and the data disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from dicom.anonymize_profile import COMPOSITE_RESOLUTION, PRIVATE_ACTION, RULES

DOC_PATH = Path(settings.BASE_DIR) / "docs" / "anonymization.md"

ACTION_WORDS = {
    "D": "dummy value",
    "Z": "emptied",
    "X": "removed",
    "K": "kept",
    "U": "new UID",
    "U*": "sequence kept, UIDs inside replaced",
}

INTRO = """\
# Anonymisation (DICOM PS3.15 Annex E)

Lightbox de-identifies DICOM files with the **Basic Application Level Confidentiality
Profile** of DICOM PS3.15 Annex E. The same anonymiser (`dicom/anonymize.py`) serves every
entry point:

- `POST /viewer/api/studies/{id}/anonymize/` (JSON options): a job anonymising every
  instance of a study you may see;
- `POST /viewer/api/anonymize/batch/` (multipart `files` + options): a job anonymising
  uploaded files, which are not stored in the archive;
- `GET /upload/{id}/preprocessed-dicom`: the anonymised copy of one stored instance
  (`application/dicom`), made on the fly.

Both jobs answer `202` with the job (`job_id`, `status`, `percentage`...). Follow it at
`GET /jobs/{job_id}/` (or the `/ws/processing/` WebSocket) and download the ZIP from its
`result_url` once `completed`. The ZIP holds `{StudyUID}/{SeriesUID}/{SOPUID}.dcm` (new UIDs)
and `anonymization_report.json` (options, counts, failed files, burned-in annotation
warnings).

## Options

{options}

## What every output file gets

- Every attribute of Table E.1-1 is handled by its basic-profile action, wherever it occurs
  (main dataset and every sequence item, recursively).
- Private attributes (odd groups) are removed, everywhere.
- Dates and times not in the table are handled by their VR (PS3.15 E.1 Note 4): DA, DT and
  TM values become `19000101`, `19000101000000`, `000000` (kept with `keep_dates`).
- Every UID value that identifies an instance is replaced, also when its attribute is not
  in the table; UIDs naming a kind of thing (SOP classes, transfer syntaxes, coding
  schemes) are kept, as is every UID under the DICOM root `1.2.840.10008`.
- Patient ID becomes `ANON-<16 hex digits>` and Patient's Name `ANONYMOUS^ANON-<...>`
  (PS3.15 allows a dummy value for Z attributes; one patient keeps one pseudonym in a job).
- Patient Identity Removed (0012,0062) = `YES`; De-identification Method (0012,0063) names
  the profile and options; De-identification Method Code Sequence (0012,0064) holds DCM
  113100 (and 113106 with `keep_dates`). UIDs are *replaced*, so the Retain UIDs Option
  (113110) is never claimed. Longitudinal Temporal Information Modified (0028,0303) is
  `REMOVED`, or `UNMODIFIED` with `keep_dates`.
- The File Meta Information and the 128-byte preamble are replaced (zeros; Lightbox's
  Implementation Class UID); the transfer syntax is unchanged.
- Pixel Data is never modified, byte for byte. **Burned-in text is not removed**: when
  Burned In Annotation (0028,0301) says `YES`, or is absent on ultrasound, secondary
  capture and other camera-like images, the job result and the report carry a
  `burned_in_annotation` warning (`yes` or `unknown`). Review those images before sharing.
- The output is valid DICOM that Lightbox itself ingests.

## Composite actions

The standard's composite actions depend on the IOD's attribute type, which an archive-wide
anonymiser does not know; Lightbox resolves them so that the output stays conformant and
keeps nothing identifying:

| action in the standard | Lightbox applies | why |
|---|---|---|
"""

OPTIONS = [
    (
        "keep_dates",
        "false",
        "*Retain Longitudinal Temporal Information with Full Dates Option*: the attributes "
        "marked `K` under *with keep_dates* below, and every other DA/DT/TM value, are kept "
        "unchanged; DCM 113106 is added to the method codes.",
    ),
    (
        "keep_uid_structure",
        "true",
        "One UID map for the whole job: the same original UID always becomes the same new "
        "UID, so a study stays one study, its series stay series and every reference "
        "(Referenced SOP Instance UID, Frame of Reference...) still points at the right "
        "instance. With `false`, every instance gets UIDs of its own.",
    ),
    (
        "use_secure",
        "false",
        "Pseudonyms (new UIDs, Patient ID and Name) are HMAC-SHA256 of the original value "
        "keyed with the server secret `LIGHTBOX_ANONYMIZATION_KEY`: the same patient gets the "
        "same pseudonym in every job, yet nobody without the key can reverse or guess them. "
        "Without it the key is a random salt made for the job and forgotten when the job "
        "ends: pseudonyms are random and unrelated to any other job's.",
    ),
]

WHY = {
    "Z/D": "Content Date/Time and similar are Type 1 in some IODs: a dummy keeps them valid.",
    "X/Z": "An empty value is valid whether the attribute is Type 2 or Type 3.",
    "X/D": "These are Type 3 in the common image IODs; removing them leaves nothing.",
    "X/Z/D": "Empty keeps Type 2 attributes (Institution Name, Station Name...) valid.",
    "X/Z/U*": "The referencing sequences stay, so references survive, with new UIDs.",
}


def table_markdown() -> str:
    options = "\n".join(
        ["| option | default | effect |", "|---|---|---|"]
        + [f"| `{name}` | `{default}` | {effect} |" for name, default, effect in OPTIONS]
    )
    lines = [INTRO.replace("{options}", options).rstrip("\n")]
    for composite, applied in COMPOSITE_RESOLUTION.items():
        lines.append(f"| {composite} | {applied} ({ACTION_WORDS[applied]}) | {WHY[composite]} |")
    lines += [
        "",
        "## Table E.1-1, attribute by attribute",
        "",
        f"{len(RULES)} attributes, plus private attributes (action {PRIVATE_ACTION}). "
        "*Standard*: the Basic Profile column of PS3.15 Table E.1-1. *Lightbox*: the action "
        "applied. *With keep_dates*: `K` when the Full Dates Option keeps the attribute.",
        "",
        "| tag | attribute | standard | Lightbox | with keep_dates |",
        "|---|---|---|---|---|",
    ]
    for rule in sorted(RULES, key=lambda r: r.name.lower()):
        tag = f"({rule.tag[:4]},{rule.tag[4:]})"
        applied = f"{rule.applied} ({ACTION_WORDS[rule.applied]})"
        dates = "K" if rule.keep_with_dates else ""
        lines.append(f"| {tag} | {rule.name} | {rule.action} | {applied} | {dates} |")
    lines.append(
        f"| (gggg,eeee), gggg odd | Private attributes | X | {PRIVATE_ACTION} "
        f"({ACTION_WORDS[PRIVATE_ACTION]}) | |"
    )
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Print (or --write) docs/anonymization.md from the PS3.15 profile data."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--write", action="store_true", help=f"Write {DOC_PATH}.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = table_markdown()
        if options["write"]:
            DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
            DOC_PATH.write_text(text)
            self.stdout.write(f"Wrote {DOC_PATH} ({len(RULES)} attributes).")
        else:
            self.stdout.write(text, ending="")
