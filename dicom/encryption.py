"""Optional encryption at rest of stored DICOM files (AES-256-GCM, streamed in chunks).

Off unless ``LIGHTBOX_ENCRYPTION_KEYS`` is set (``id1:<base64 32 bytes>,id2:...``); new
files use ``LIGHTBOX_ENCRYPTION_KEY_ID`` (default: the first key). Each file names its key
id in its header, so keys can rotate: old files stay readable while the key is listed.

File format::

    b"LBXE1" | key id length (1 byte) | key id | chunk size (4 bytes, big endian)
    then per chunk: nonce (12 bytes) | ciphertext + tag (16 bytes)

Each chunk is authenticated with its index and a last-chunk flag as associated data, so a
reordered, truncated or extended file fails to decrypt instead of yielding wrong bytes.
"""

from __future__ import annotations

import base64
import os
import struct
import tempfile
from dataclasses import dataclass
from typing import IO, BinaryIO

from django.conf import settings

MAGIC = b"LBXE1"
CHUNK = 1024 * 1024
NONCE = 12
TAG = 16
SPOOL_MAX = 8 * 1024 * 1024


class EncryptionError(Exception):
    """A stored file could not be decrypted (unknown key id, or tampered bytes)."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    current: str


def keyring() -> Keyring | None:
    raw = getattr(settings, "LIGHTBOX_ENCRYPTION_KEYS", "") or ""
    if not raw:
        return None
    keys = {}
    for entry in raw.replace(" ", "").split(","):
        key_id, _, encoded = entry.partition(":")
        key = base64.b64decode(encoded)
        if len(key) != 32 or not key_id or len(key_id) > 64:
            raise ValueError(f"Encryption key {key_id!r} must be 32 bytes, base64-encoded.")
        keys[key_id] = key
    current = getattr(settings, "LIGHTBOX_ENCRYPTION_KEY_ID", "") or next(iter(keys))
    if current not in keys:
        raise ValueError(f"LIGHTBOX_ENCRYPTION_KEY_ID {current!r} is not in the keyring.")
    return Keyring(keys=keys, current=current)


def enabled() -> bool:
    return keyring() is not None


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">Q?", index, last)


def encrypt_stream(src: IO[bytes], dst: IO[bytes]) -> None:
    """Encrypt ``src`` into ``dst`` with the current key, one chunk in memory at a time."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ring = keyring()
    assert ring is not None
    key_id = ring.current.encode()
    aes = AESGCM(ring.keys[ring.current])
    dst.write(MAGIC + bytes([len(key_id)]) + key_id + struct.pack(">I", CHUNK))
    index, chunk = 0, src.read(CHUNK)
    while True:
        following = src.read(CHUNK)
        last = not following
        nonce = os.urandom(NONCE)
        dst.write(nonce + aes.encrypt(nonce, chunk, _aad(index, last)))
        if last:
            return
        index, chunk = index + 1, following


def is_encrypted(fh: IO[bytes]) -> bool:
    start = fh.tell()
    head = fh.read(len(MAGIC))
    fh.seek(start)
    return head == MAGIC


def decrypt_stream(src: IO[bytes], dst: IO[bytes]) -> None:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if src.read(len(MAGIC)) != MAGIC:
        raise EncryptionError("not an encrypted Lightbox file")
    key_id = src.read(src.read(1)[0]).decode()
    ring = keyring()
    if ring is None or key_id not in ring.keys:
        raise EncryptionError(f"the key {key_id!r} of this file is not configured")
    (chunk_size,) = struct.unpack(">I", src.read(4))
    aes = AESGCM(ring.keys[key_id])
    index, block = 0, src.read(NONCE + chunk_size + TAG)
    while True:
        following = src.read(NONCE + chunk_size + TAG)
        last = not following
        try:
            dst.write(aes.decrypt(block[:NONCE], block[NONCE:], _aad(index, last)))
        except InvalidTag:
            raise EncryptionError("the file was altered or truncated") from None
        if last:
            return
        index, block = index + 1, following


def decrypted_copy(src: IO[bytes]) -> BinaryIO:
    """A seekable plaintext copy (memory up to 8 MB, then a temporary file)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX)  # noqa: SIM115 - returned open
    decrypt_stream(src, out)
    out.seek(0)
    return out  # type: ignore[return-value]
