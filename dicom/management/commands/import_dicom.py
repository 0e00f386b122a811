"""``manage.py import_dicom PATH...``: files, folders (recursively) and ZIP archives,
through the one ingest pipeline, with a progress bar and a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from dicom.archives import archive_extract, is_zip
from dicom.errors import LightboxError
from dicom.ingest import staged_ingest
from dicom.storage import staging_write

SKIPPED_NAMES = {"MANIFEST.tsv", "README.md", "LICENSES.md", "DECODE_ENV.txt", ".DS_Store"}


class Command(BaseCommand):
    help = "Import DICOM files, folders and ZIP archives into Lightbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--owner", help="Email of the user who will own the studies")
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="Replace instances whose SOP Instance UID exists with other bytes",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = _owner(options.get("owner"))
        files = list(_walk(options["paths"]))
        counts: Counter[str] = Counter()
        rejected: list[tuple[str, str]] = []
        progress = tqdm(files, unit="file", disable=options["no_progress"], file=self.stderr)
        for path in progress:
            for name, outcome in _import_path(path, owner=owner, overwrite=options["overwrite"]):
                if isinstance(outcome, LightboxError):
                    counts["rejected"] += 1
                    rejected.append((name, outcome.message))
                else:
                    counts[outcome] += 1
        for name, message in rejected:
            self.stdout.write(f"rejected {name}: {message}")
        self.stdout.write(
            self.style.SUCCESS(
                f"stored {counts['stored'] + counts['overwritten']}, "
                f"duplicate {counts['duplicate']}, rejected {counts['rejected']}"
            )
        )


def _owner(email: str | None) -> Any:
    if not email:
        return None
    try:
        return get_user_model().objects.get(email__iexact=email)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user with email {email}") from None


def _walk(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and _wanted(p))
        else:
            yield path


def _wanted(path: Path) -> bool:
    return path.name not in SKIPPED_NAMES and not path.name.startswith(".")


def _import_path(
    path: Path, *, owner: Any, overwrite: bool
) -> Iterator[tuple[str, str | LightboxError]]:
    try:
        if is_zip(path):
            members = archive_extract(path)
        else:
            with path.open("rb") as fh:
                members = [staging_write(fh, filename=str(path))]
    except LightboxError as exc:
        yield str(path), exc
        return
    for staged in members:
        name = staged.filename
        try:
            result = staged_ingest(staged=staged, owner=owner, source="import", overwrite=overwrite)
            yield name, result.status
        except LightboxError as exc:
            yield name, exc
