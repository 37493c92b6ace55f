"""HTTP/1.1 for LocalPDP on asyncio streams: reading one request, writing one answer.

What Python's ``http.server`` accepts, it accepts (CRLF or bare LF line ends,
keep-alive by default on HTTP/1.1, ``Connection: keep-alive`` on HTTP/1.0,
``Expect: 100-continue``, chunked bodies), and it refuses what that refuses
with the same statuses, answered as JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

_MAX_LINE: Final = 65536
_MAX_HEADERS: Final = 100
_MAX_BODY: Final = 16 * 1024 * 1024
_MAX_TRAILERS: Final = 100
# The reader's buffer: a line longer than this is refused (414 / 431).
READ_LIMIT: Final = _MAX_LINE + 2
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BadRequest(Exception):
    """A request that cannot be read; answered, then the connection is closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Headers:
    """Request headers; ``get`` ignores case and answers the first value, as ``email`` does."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        self._values.setdefault(name.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._values.get(name.lower(), default)


@dataclass(slots=True, kw_only=True)
class Request:
    """A request's line and headers; its body is read next, with :func:`read_body`."""

    method: str
    target: str
    version: str
    headers: Headers
    keep_alive: bool


async def read_head(reader: asyncio.StreamReader) -> Request | None:
    """The next request's line and headers; None when the client closed the connection.

    Raises:
        BadRequest: For a request line or headers that ``http.server`` refuses.
    """
    try:
        raw = await reader.readline()
    except ValueError:  # longer than the reader's limit
        raise BadRequest(414, "Request-URI Too Long") from None
    if not raw:
        return None
    if len(raw) > _MAX_LINE:
        raise BadRequest(414, "Request-URI Too Long")
    line = raw.decode("iso-8859-1").rstrip("\r\n")
    words = line.split()
    if not words:
        return None  # a blank line where a request was expected: http.server closes too
    keep_alive = False
    version = "HTTP/0.9"
    if len(words) == 3:
        version = words[2]
        try:
            if not version.startswith("HTTP/"):
                raise ValueError(version)
            major, minor = version.split("/", 1)[1].split(".")
            if not (major.isdigit() and minor.isdigit()) or max(len(major), len(minor)) > 10:
                raise ValueError(version)
            number = (int(major), int(minor))
        except ValueError:
            raise BadRequest(400, f"Bad request version ({version!r})") from None
        if number >= (2, 0):
            raise BadRequest(505, f"Invalid HTTP version ({version[5:]})")
        keep_alive = number >= (1, 1)
    elif len(words) != 2:
        raise BadRequest(400, f"Bad request syntax ({line!r})")
    elif words[0] != "GET":
        raise BadRequest(400, f"Bad HTTP/0.9 request type ({words[0]!r})")
    headers = await _read_headers(reader)
    connection = (headers.get("Connection") or "").lower()
    if connection == "close":
        keep_alive = False
    elif connection == "keep-alive" and len(words) == 3:
        keep_alive = True
    target = words[1]
    if target.startswith("//"):
        target = "/" + target.lstrip("/")  # as http.server: never read as a host name
    return Request(
        method=words[0], target=target, version=version, headers=headers, keep_alive=keep_alive
    )


async def _read_headers(reader: asyncio.StreamReader) -> Headers:
    headers = Headers()
    name = ""
    for _ in range(_MAX_HEADERS + 1):
        try:
            raw = await reader.readline()
        except ValueError:
            raise BadRequest(431, "Line too long") from None
        if len(raw) > _MAX_LINE:
            raise BadRequest(431, "Line too long")
        if raw in (b"\r\n", b"\n", b""):
            return headers
        line = raw.decode("iso-8859-1").rstrip("\r\n")
        if line[:1] in (" ", "\t") and name:
            continue  # an obsolete folded line continues the previous header: ignored
        name, colon, value = line.partition(":")
        if colon:
            headers.add(name.strip(), value.strip())
    raise BadRequest(431, "Too many headers")


async def read_body(reader: asyncio.StreamReader, headers: Headers) -> bytes | None:
    """The request body; None if the client closed the connection before sending it all.

    Raises:
        BadRequest: For a length or chunk size that is not a number, or too large.
    """
    try:
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            return await _read_chunked(reader)
        header = headers.get("Content-Length")
        if header is None:
            return b""
        try:
            length = int(header)
        except ValueError:
            raise BadRequest(400, "Invalid Content-Length") from None
        if length < 0:
            raise BadRequest(400, "Invalid Content-Length")
        if length > _MAX_BODY:
            raise BadRequest(413, "Request body too large")
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    # Bounded: every pass reads a chunk of at least one byte, and the total is capped.
    while True:
        try:
            line = await reader.readline()
        except ValueError:
            raise BadRequest(400, "Invalid chunk size") from None
        if not line:
            return None
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest(400, "Invalid chunk size") from None
        if size < 0:
            raise BadRequest(400, "Invalid chunk size")
        if size == 0:
            for _ in range(_MAX_TRAILERS):
                trailer = await reader.readline()
                if trailer in (b"\r\n", b"\n", b""):
                    return b"".join(chunks)
            raise BadRequest(400, "Too many trailers")
        total += size
        if total > _MAX_BODY:
            raise BadRequest(413, "Request body too large")
        chunks.append(await reader.readexactly(size))
        await reader.readline()  # the CRLF closing the chunk


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The ``Date`` header's value, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, formatdate(now, usegmt=True))
    return _date[1]


def answer(status: int, body: bytes, content_type: str, *, close: bool, head: bool) -> bytes:
    """One whole answer, head and body, to be written in one piece.

    Args:
        status: The HTTP status.
        body: The body (left out, its length kept, when ``head``).
        content_type: Its ``Content-Type``.
        close: Whether to say ``Connection: close``.
        head: Whether this answers a ``HEAD`` request.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    closing = "Connection: close\r\n" if close else ""
    lines = (
        f"HTTP/1.1 {status} {phrase}\r\nServer: LocalPDP\r\nDate: {_http_date()}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{closing}\r\n"
    )
    return lines.encode("latin-1") + (b"" if head else body)
