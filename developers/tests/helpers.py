"""Helpers that drive seed 003's routes with Django's test client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.data import get_testdata_file
from rest_framework.test import APIClient

PASSWORD = "securepassword123"
READ_URL = "/api/dicom/read/file/"


def sample_file(name: str) -> Path:
    """A DICOM file shipped with pydicom (always available, unlike the corpus)."""
    return Path(get_testdata_file(name))


def token_pair(client: APIClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/api/token/", {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(client: APIClient, access: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def read_file(
    client: APIClient,
    path: Path | None = None,
    *,
    data: bytes | None = None,
    name: str = "",
    **fields: str,
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    payload = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    upload = SimpleUploadedFile(name or (path.name if path else "upload.dcm"), payload)
    return client.post(READ_URL, {"file": upload, **fields}, format="multipart")
