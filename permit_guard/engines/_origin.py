"""Keep-alive HTTP/1.1 connections to one origin: the PDP of PermitPDPEngine.

That engine is on the path of every guarded call. This pool writes each
request in one piece from a prepared head and reads the answer without
aiohttp's per-request URL, cookie, payload and timer objects: about half of
aiohttp's CPU per check on loopback. It reads what HTTP/1.1 servers send
(a length, chunks, a 100 first, or to the end of the stream), within bounds,
and every answer it cannot read is an :class:`EngineError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import weakref
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from permit_guard.engines._pool import NO_BODY, Answer, json_body
from permit_guard.exceptions import EngineError

# Bounds on what a decision point may answer: a bulk answer of 10,000
# decisions is a few megabytes.
_MAX_HEAD: Final = 1024 * 1024
_MAX_BODY: Final = 256 * 1024 * 1024
_MAX_INFORMATIONAL: Final = 10
_MAX_CHUNKS: Final = 1_000_000


class _Malformed(Exception):
    """An answer that is not HTTP/1.1 as this client reads it."""


class _Unanswered(ConnectionError):
    """The connection ended before any of the answer came: the request may be sent again."""


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Connections:
    """One event loop's keep-alive connections of an :class:`OriginPool`.

    Attributes:
        closed: Whether the pool was closed; no connection is kept after that.
    """

    def __init__(self, limit: int) -> None:
        self.closed = False
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)

    def close(self) -> None:
        """Close the idle connections; those in use close when their answer is read."""
        self.closed = True
        idle, self.idle = self.idle, []
        for _, writer in idle:
            writer.close()


class OriginPool:
    """Keep-alive HTTP/1.1 connections to the one origin of ``url``, per event loop.

    Requests carry ``headers`` and a ``Content-Length``; answers are read with
    ``Content-Length``, chunked or (closing the connection) to the end.
    Redirects are not followed and no proxy is used.

    Args:
        url: The base URL (``http`` or ``https``); request paths are appended.
        headers: Sent with every request.
        timeout: Seconds for one whole request and its answer, a wait for a
            free connection included.
        max_connections: Connections open at once, per event loop.

    Raises:
        ValueError: If a header name or value holds a line break.
    """

    def __init__(
        self, url: str, *, headers: Mapping[str, str], timeout: float, max_connections: int
    ) -> None:
        parts = urlsplit(url)
        for name, value in headers.items():
            if any(c in f"{name}{value}" for c in "\r\n\0"):
                raise ValueError(f"HTTP header {name!r} must not hold a line break")
        self.timeout = timeout
        self.max_connections = max_connections
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        try:
            self._port = parts.port or (443 if self._tls else 80)
        except ValueError:  # a port that is not a number
            self._host = None
            self._port = 0
        self._path = parts.path.rstrip("/")
        lines = [f"Host: {parts.netloc}", "User-Agent: permit-guard"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = "\r\n".join(lines)
        self._ssl: ssl.SSLContext | None = None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Connections] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def current(self) -> Connections | None:
        """The running loop's connections, if it has any (for tests and inspection)."""
        try:
            return self._loops.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    async def send(self, method: str, path: str, *, where: str, payload: Any = NO_BODY) -> Answer:
        """Send one request for ``path`` and read its whole answer.

        Args:
            method: ``GET`` or ``POST``.
            path: Appended to the base URL's path.
            where: Names the decision point and path in error messages.
            payload: A JSON-serialisable body; none when left out.

        Returns:
            The answer, whatever its status.

        Raises:
            EngineError: When the payload is not JSON-serialisable, on a
                timeout, a connection failure or an answer that is not HTTP.
        """
        body = (json_body(payload, where=where) or "").encode()
        if self._host is None:
            raise EngineError(f"{where} could not be reached: the URL names no host and port")
        head = f"{method} {self._path}{path} HTTP/1.1\r\n{self._head}\r\n"
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        connections = self._connections()
        try:
            async with asyncio.timeout(self.timeout), connections.slots:
                return await self._exchange(connections, request)
        except TimeoutError as exc:
            raise EngineError(f"{where} did not answer within {self.timeout}s") from exc
        except _Unanswered as exc:
            raise EngineError(f"{where} could not be reached: {exc}") from exc
        except asyncio.IncompleteReadError as exc:
            raise EngineError(
                f"{where} could not be reached: the connection closed before the answer ended"
            ) from exc
        except OSError as exc:  # refused, reset, unreachable, TLS (ssl.SSLError)
            raise EngineError(f"{where} could not be reached: {type(exc).__name__}: {exc}") from exc
        except (_Malformed, asyncio.LimitOverrunError, ValueError) as exc:
            raise EngineError(f"{where} answered malformed HTTP: {exc}") from exc

    def _connections(self) -> Connections:
        loop = asyncio.get_running_loop()
        connections = self._loops.get(loop)
        if connections is None or connections.closed:
            connections = self._loops[loop] = Connections(self.max_connections)
        return connections

    async def _exchange(self, connections: Connections, request: bytes) -> Answer:
        connection = None
        while connections.idle and connection is None:  # bounded: the list only shrinks
            reader, writer = candidate = connections.idle.pop()
            # An idle connection the server has closed (or is closing) is not reused.
            if reader.at_eof() or writer.is_closing() or _buffered(reader):
                writer.close()
            else:
                connection = candidate
        if connection is not None:
            try:
                return await _over(connections, connection, request)
            except _Unanswered:
                # Closed by the PDP as it was reused (its idle timeout ran out meanwhile):
                # a check changes nothing, so it is sent once more, on a new connection.
                pass
        if self._tls and self._ssl is None:
            self._ssl = ssl.create_default_context()
        connection = await asyncio.open_connection(
            self._host, self._port, ssl=self._ssl if self._tls else None, limit=_MAX_HEAD
        )
        return await _over(connections, connection, request)

    async def aclose(self) -> None:
        """Close every loop's connections: this loop's here, other live loops' on their loop."""
        current = asyncio.get_running_loop()
        pools = list(self._loops.items())
        self._loops.clear()
        for loop, connections in pools:
            if loop is current:
                writers = [writer for _, writer in connections.idle]
                connections.close()
                for writer in writers:
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            elif loop.is_running() and not loop.is_closed():
                loop.call_soon_threadsafe(connections.close)
            # A loop already closed can close nothing: its connections stay until collected.


def _buffered(reader: asyncio.StreamReader) -> bool:
    """Whether bytes no answer accounts for wait on ``reader``: its next answer is in doubt.

    Read from the reader's buffer (the standard library's ``StreamReader`` keeps
    it in ``_buffer``): a kept connection carrying them would hand one check's
    bytes to the next.
    """
    return bool(getattr(reader, "_buffer", b""))


async def _over(connections: Connections, connection: _Connection, request: bytes) -> Answer:
    """Send ``request`` over ``connection`` and read the answer; keep the connection if it may."""
    reader, writer = connection
    keep = False
    try:
        try:
            writer.write(request)
            await writer.drain()
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Unanswered(f"the connection closed before the request was sent ({exc})") from exc
        answer, keep = await _read_answer(reader)
    finally:
        # Kept only after a whole answer: otherwise its next bytes are unknown.
        if keep and not connections.closed and not _buffered(reader):
            connections.idle.append(connection)
        else:
            writer.close()
    return answer


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """One answer from ``reader``, and whether the connection may carry another."""
    for attempt in range(_MAX_INFORMATIONAL):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            partial = getattr(exc, "partial", b"")
            if attempt == 0 and not partial and not _buffered(reader):
                raise _Unanswered("the connection closed before the answer began") from exc
            raise
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not (version.startswith("HTTP/1.") and code.isdigit() and rest[3:4] in ("", " ")):
            raise _Malformed(f"status line {lines[0][:80]!r}")
        status = int(code)
        if not 100 <= status < 200:
            break
    else:
        raise _Malformed(f"more than {_MAX_INFORMATIONAL} informational answers")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Malformed(f"header line {line[:80]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)
    content_type = headers.get("content-type", "no content type")
    codings = [c.strip().lower() for c in headers.get("transfer-encoding", "").split(",")]
    if status in (204, 304):
        raw = b""
    elif codings[-1] == "chunked":
        raw = await _read_chunked(reader)
        # With a Content-Length beside it, the framing is in doubt: not reused.
        keep = keep and "content-length" not in headers
    elif "content-length" in headers and codings == [""]:
        text = headers["content-length"]
        if not text.isdigit() or not text.isascii():
            raise _Malformed(f"Content-Length {text[:40]!r}")
        length = int(text)
        if not 0 <= length <= _MAX_BODY:
            raise _Malformed(f"Content-Length {length}")
        raw = await reader.readexactly(length)
    else:
        # Neither a length nor chunks last: the answer ends with the connection.
        body = bytearray()
        while not reader.at_eof():  # bounded: every pass reads, and stops over _MAX_BODY
            body += await reader.read(65536)
            if len(body) > _MAX_BODY:
                raise _Malformed(f"a body over {_MAX_BODY} bytes")
        raw, keep = bytes(body), False
    return Answer(status=status, content_type=content_type, raw=raw), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    for _ in range(_MAX_CHUNKS):
        digits = (await reader.readuntil(b"\r\n")).split(b";")[0].strip()
        if not digits or digits.strip(b"0123456789abcdefABCDEF"):
            raise _Malformed(f"chunk size {digits[:40]!r}")
        size = int(digits, 16)
        if size == 0:
            # Trailers, if any, then the empty line that ends the answer.
            for _ in range(_MAX_INFORMATIONAL * 10):
                if await reader.readuntil(b"\r\n") == b"\r\n":
                    return b"".join(chunks)
            raise _Malformed("too many trailers")
        total += size
        if size < 0 or total > _MAX_BODY:
            raise _Malformed(f"a chunk of {size} bytes")
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise _Malformed("a chunk not ended by CRLF")
    raise _Malformed(f"more than {_MAX_CHUNKS} chunks")
