"""Streaming ``multipart/related`` (RFC 2387) reading and writing.

The reader never holds more than one chunk plus one delimiter in memory: each part is
exposed as a file-like object whose ``read`` stops at the next boundary, so a STOW-RS part
goes straight into staging. The writer is a generator for ``StreamingHttpResponse``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from dicom.errors import LightboxError

CHUNK = 256 * 1024
MAX_HEADER_BYTES = 16 * 1024
_PARAM_RE = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')

MSG_NO_BOUNDARY = "The multipart/related Content-Type has no boundary parameter."
MSG_MALFORMED = "The multipart body is malformed: {reason}."


class MalformedMultipart(LightboxError):
    code = "malformed_multipart"
    default_message = "The multipart body is malformed."


@dataclass
class MediaType:
    """A parsed media type: ``type/subtype`` lower-cased plus its parameters."""

    mime: str
    params: dict[str, str] = field(default_factory=dict)


def media_type_parse(value: str) -> MediaType:
    """Parse ``multipart/related; type="application/dicom"; boundary=x`` (quoted or not)."""
    value = value or ""
    main, _, rest = value.partition(";")
    params = {}
    for name, raw in _PARAM_RE.findall(";" + rest):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"')
        params[name.lower()] = raw
    return MediaType(mime=main.strip().lower(), params=params)


def accept_parse(value: str) -> list[MediaType]:
    """Split an Accept header into media types (in order; q-values are ignored except 0)."""
    result = []
    for item in _split_outside_quotes(value or "", ","):
        if not item.strip():
            continue
        parsed = media_type_parse(item)
        if parsed.params.get("q", "1").strip() in ("0", "0.0", "0.00", "0.000"):
            continue
        result.append(parsed)
    return result


def _split_outside_quotes(value: str, sep: str) -> list[str]:
    parts, current, quoted = [], [], False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


class _PartStream:
    """File-like view of one part's body; ``read`` returns b"" at the boundary."""

    def __init__(self, reader: MultipartReader) -> None:
        self._reader = reader
        self.done = False

    def read(self, size: int = -1) -> bytes:
        if self.done:
            return b""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        data = self._reader.body_read(size)
        if not data:
            self.done = True
        return data


class MultipartReader:
    """Iterate over the parts of a multipart body read from ``stream`` in chunks."""

    def __init__(self, stream: IO[bytes], boundary: str, chunk: int = CHUNK) -> None:
        if not boundary:
            raise MalformedMultipart(MSG_NO_BOUNDARY)
        self._stream = stream
        self._chunk = chunk
        self._delim = b"\r\n--" + boundary.encode("latin-1")
        # A leading CRLF makes the first delimiter look like all the others.
        self._buf = bytearray(b"\r\n")
        self._eof = False
        self._finished = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._stream.read(self._chunk)
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    def parts(self) -> Iterator[tuple[dict[str, str], _PartStream]]:
        """Yield (headers, body stream) per part. Each body must be consumed (or it is
        skipped) before the next part is produced."""
        self._skip_to_delimiter()
        while self._after_delimiter():
            headers = self._read_headers()
            body = _PartStream(self)
            yield headers, body
            while body.read(CHUNK):
                pass
            self._consume(len(self._delim))

    def _skip_to_delimiter(self) -> None:
        while True:
            idx = self._buf.find(self._delim)
            if idx >= 0:
                del self._buf[: idx + len(self._delim)]
                return
            keep = len(self._delim)
            if len(self._buf) > keep:
                del self._buf[: len(self._buf) - keep]
            if not self._fill():
                raise MalformedMultipart(MSG_MALFORMED.format(reason="no boundary found"))

    def _consume(self, n: int) -> None:
        while len(self._buf) < n:
            if not self._fill():
                raise MalformedMultipart(MSG_MALFORMED.format(reason="unexpected end"))
        del self._buf[:n]

    def _after_delimiter(self) -> bool:
        """After a delimiter: ``--`` closes the body, otherwise padding and CRLF follow."""
        while len(self._buf) < 2 and self._fill():
            pass
        if self._buf[:2] == b"--":
            self._finished = True
            return False
        while True:
            idx = self._buf.find(b"\r\n")
            if idx >= 0:
                if self._buf[:idx].strip(b" \t"):
                    raise MalformedMultipart(MSG_MALFORMED.format(reason="junk after boundary"))
                del self._buf[: idx + 2]
                return True
            if len(self._buf) > 1024 or not self._fill():
                raise MalformedMultipart(MSG_MALFORMED.format(reason="unterminated boundary"))

    def _read_headers(self) -> dict[str, str]:
        while True:
            if self._buf.startswith(b"\r\n"):
                del self._buf[:2]
                return {}
            idx = self._buf.find(b"\r\n\r\n")
            if idx >= 0:
                raw = bytes(self._buf[:idx]).decode("latin-1")
                del self._buf[: idx + 4]
                headers = {}
                for line in raw.split("\r\n"):
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                return headers
            if len(self._buf) > MAX_HEADER_BYTES or not self._fill():
                raise MalformedMultipart(MSG_MALFORMED.format(reason="part headers too long"))

    def body_read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the current part; b"" once its delimiter is next."""
        while True:
            idx = self._buf.find(self._delim)
            if idx >= 0:
                n = min(idx, size)
                data = bytes(self._buf[:n])
                del self._buf[:n]
                return data
            safe = len(self._buf) - len(self._delim) + 1
            if safe >= min(size, self._chunk) or (safe > 0 and self._eof):
                n = min(safe, size)
                data = bytes(self._buf[:n])
                del self._buf[:n]
                return data
            if not self._fill():
                raise MalformedMultipart(MSG_MALFORMED.format(reason="missing closing boundary"))


def boundary_new() -> str:
    return f"lightbox-{secrets.token_hex(16)}"


def multipart_stream(
    parts: Iterable[tuple[dict[str, str], Iterable[bytes]]], *, boundary: str
) -> Iterator[bytes]:
    """Write parts given as (headers, chunks) lazily; one chunk in memory at a time."""
    delim = f"--{boundary}\r\n".encode()
    for headers, chunks in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        yield delim + head.encode("latin-1") + b"\r\n"
        yield from chunks
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode()


def multipart_content_type(*, part_type: str, boundary: str, transfer_syntax: str = "") -> str:
    value = f'multipart/related; type="{part_type}"; boundary={boundary}'
    if transfer_syntax:
        value += f"; transfer-syntax={transfer_syntax}"
    return value
