"""Shared helpers for the viewer tests: store real DICOM files through the real upload API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.data import get_testdata_file


def sample_path(name: str) -> Path:
    return Path(get_testdata_file(name))


def upload(client: Any, *paths: Path) -> dict:
    handles = [path.open("rb") for path in paths]
    try:
        response = client.post("/viewer/api/upload/", {"files": handles}, format="multipart")
    finally:
        for handle in handles:
            handle.close()
    assert response.status_code in (200, 201), response.content
    return response.json()
