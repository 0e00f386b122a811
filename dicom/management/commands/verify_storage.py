"""``manage.py verify_storage``: re-hash every stored original and report missing, corrupt
and orphan files (``--fix-orphans`` removes orphans). Exit status 1 when anything is wrong,
so it can run from cron or a monitoring check."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandParser

from dicom.encryption import EncryptionError
from dicom.models import Instance
from dicom.storage import CHUNK, blob_delete_tree, blob_open


class Command(BaseCommand):
    help = "Verify stored DICOM files against the database (hash, presence, orphans)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix-orphans",
            action="store_true",
            help="Delete stored files that no instance references",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        missing, corrupt = self._check_instances()
        orphans = sorted(_stored_hashes() - set(Instance.objects.values_list("sha256", flat=True)))
        for name in missing:
            self.stdout.write(f"missing {name}")
        for name in corrupt:
            self.stdout.write(f"corrupt {name}")
        for sha256 in orphans:
            self.stdout.write(f"orphan final/{sha256}/")
            if options["fix_orphans"]:
                blob_delete_tree(sha256)
        fixed = " (removed)" if options["fix_orphans"] and orphans else ""
        summary = (
            f"checked {Instance.objects.count()} instance(s): {len(missing)} missing, "
            f"{len(corrupt)} corrupt, {len(orphans)} orphan(s){fixed}"
        )
        if missing or corrupt or (orphans and not options["fix_orphans"]):
            self.stdout.write(self.style.ERROR(summary))
            raise SystemExit(1)
        self.stdout.write(self.style.SUCCESS(summary))

    def _check_instances(self) -> tuple[list[str], list[str]]:
        missing, corrupt = [], []
        for instance in Instance.objects.only("file_path", "sha256").iterator(chunk_size=500):
            if not default_storage.exists(instance.file_path):
                missing.append(instance.file_path)
            elif _hash(instance.file_path) != instance.sha256:
                corrupt.append(instance.file_path)
        return missing, corrupt


def _hash(name: str) -> str:
    """SHA-256 of the plaintext ("" when an encrypted file fails to decrypt)."""
    digest = hashlib.sha256()
    try:
        with blob_open(name) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except EncryptionError:
        return ""
    return digest.hexdigest()


def _stored_hashes() -> set[str]:
    try:
        folders, _files = default_storage.listdir("final")
    except (FileNotFoundError, NotADirectoryError):
        return set()
    return {f for f in folders if len(f) == 64}
