"""The loopback server behind LocalPDP: an event loop on its own thread, a task per connection.

One thread, whatever the number of connections: a request costs no thread
hand-off, and concurrent requests are read, decided and answered in turns of
one event loop, each answer written in one piece. The caller's own event loop,
if any, never runs server code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import socket
import threading
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.testing._authzen import route as _authzen_route
from permit_guard.testing._http import (
    METHODS,
    READ_LIMIT,
    BadRequest,
    Request,
    answer,
    read_body,
    read_head,
)
from permit_guard.testing._wire import (
    _ABSENT,
    _ALL_DECISION_PATHS,
    _ALLOWED,
    _AUTHZEN_PATHS,
    _DECISION_PATHS,
    _HEALTH,
    _INVALID_TOKEN,
    _JSON,
    _TEXT,
    _error,
    _is_json,
    _json_invalid,
    _NotJSON,
)
from permit_guard.testing.faults import Fault

_BACKLOG: Final = 128
_START_TIMEOUT: Final = 10.0

Reply = tuple[int, bytes, str]


class _PDP(Protocol):
    """What the server needs of :class:`~permit_guard.testing.pdp.LocalPDP`."""

    api_key: str
    engine: LocalPolicyEngine
    _stopping: threading.Event

    def _accepted(self) -> None: ...
    def _count(self, path: str) -> None: ...
    def _record_body(self, body: Any) -> None: ...
    def _record_error(self, exc: BaseException) -> None: ...
    def _take_fault(self, path: str) -> Fault | None: ...
    def _decide(self, query: Any, loc: tuple[str | int, ...]) -> dict[str, Any] | list[Any]: ...


def _detail(text: str) -> bytes:
    return json.dumps({"detail": text}).encode()


class Server:
    """A listening socket, bound at once, served by an event loop on a daemon thread.

    Raises:
        OSError: If the address cannot be bound.
    """

    def __init__(self, address: tuple[str, int], pdp: _PDP, family: socket.AddressFamily) -> None:
        # IPPROTO_TCP lets asyncio turn Nagle's algorithm off on every connection.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(_BACKLOG)
        except OSError:
            sock.close()
            raise
        self.socket = sock
        self.pdp = pdp
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._serving = False
        self._open: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def port(self) -> int:
        """The port bound."""
        return int(self.socket.getsockname()[1])

    def start(self, name: str) -> None:
        """Serve on a daemon thread named ``name``; returns once connections are accepted.

        Raises:
            RuntimeError: If the loop did not start serving within 10 seconds.
        """
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        if not (self._ready.wait(_START_TIMEOUT) and self._serving):
            raise RuntimeError(f"LocalPDP did not start serving within {_START_TIMEOUT}s")

    def stop(self, timeout: float) -> None:
        """Stop accepting, close every connection, end the thread; within about ``timeout``."""
        stop = self._stop
        if stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._ready.set()  # start() must not wait on a loop that failed
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            self.socket.close()

    async def _serve(self) -> None:
        self._stop = stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self.socket, limit=READ_LIMIT)
        self._serving = True
        self._ready.set()
        await stop.wait()
        server.close()
        # Aborting a connection ends its task: a read then sees the end of the stream,
        # and a fault's wait sees the stop. A second pass takes the connections accepted
        # just before the listening socket closed, whose tasks had not started.
        for _ in range(2):
            await asyncio.sleep(0)
            for writer in list(self._open.values()):
                writer.transport.abort()
            if self._open:
                await asyncio.wait(list(self._open), timeout=1.0)
        if self._open:  # bounded: a cancelled task ends at its next await
            tasks = list(self._open)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=1.0)

    # -- one connection --------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self._stop is not None
        self._open[task] = writer
        self.pdp._accepted()
        try:
            # Ends when the client closes, a request or an error closes, or stop() aborts.
            while not self._stop.is_set() and await self._one(reader, writer):
                pass
        except OSError:
            pass  # the client went away (reset, broken pipe)
        except Exception as exc:
            self.pdp._record_error(exc)  # a bug of the server must not pass unseen
        finally:
            del self._open[task]
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()  # the socket is closed before the loop may end

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read and answer one request; whether the connection may carry another."""
        pdp = self.pdp
        try:
            request = await read_head(reader)
        except BadRequest as bad:
            return await self._reply(writer, None, (bad.status, _detail(bad.detail), _JSON))
        if request is None:
            return False
        if request.method not in METHODS:
            reply = (501, _detail(f"Unsupported method ({request.method!r})"), _JSON)
            return await self._reply(writer, None, reply)
        if (request.headers.get("Expect") or "").lower() == "100-continue" and (
            request.version >= "HTTP/1.1"
        ):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        path = urlsplit(request.target).path
        pdp._count(path)
        try:
            raw = await read_body(reader, request.headers)
        except BadRequest as bad:
            # The rest of the body is unread: the connection cannot be reused.
            return await self._reply(writer, None, (bad.status, _detail(bad.detail), _JSON))
        if raw is None:
            return False  # the client left in the middle of its body
        parsed: Any = _ABSENT
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                parsed = _NotJSON(str(exc))
        if request.method == "POST" and path in _ALL_DECISION_PATHS and _is_json(parsed):
            pdp._record_body(parsed)

        fault = pdp._take_fault(path)
        if fault is not None:
            if fault.seconds > 0 and await self._stopped_within(fault.seconds):
                return False  # stopped while waiting: drop, do not answer
            if fault.kind == "drop":
                return False
            if fault.kind == "respond":
                reply = (fault.status_code, fault.body, fault.content_type)
                return await self._reply(writer, request, reply)
        missing = fault.missing if fault is not None and fault.kind == "short_bulk" else 0
        try:
            if path in _AUTHZEN_PATHS:
                reply = _authzen_route(
                    request.method,
                    path,
                    parsed,
                    headers=request.headers,
                    api_key=pdp.api_key,
                    decide=pdp.engine.decide,
                    missing=missing,
                )
            else:
                status, payload = self._route(request, path, parsed, missing)
                reply = (status, json.dumps(payload).encode(), _JSON)
        except Exception as exc:
            # A bug must not pass unseen: answer 500 and keep it for LocalPDP.errors.
            pdp._record_error(exc)
            reply = (
                (500, b"Internal server error", _TEXT)
                if path in _AUTHZEN_PATHS
                else (500, b'{"detail": "Internal Server Error"}', _JSON)
            )
        return await self._reply(writer, request, reply)

    async def _reply(
        self, writer: asyncio.StreamWriter, request: Request | None, reply: Reply
    ) -> bool:
        """Write ``reply``; whether the connection stays open (never after a bad request)."""
        keep = request is not None and request.keep_alive and not self.pdp._stopping.is_set()
        head = request is not None and request.method == "HEAD"
        writer.write(answer(*reply, close=not keep, head=head))
        await writer.drain()
        return keep

    async def _stopped_within(self, seconds: float) -> bool:
        assert self._stop is not None
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # -- the PDP's paths ---------------------------------------------------------------

    def _route(self, request: Request, path: str, parsed: Any, missing: int) -> tuple[int, Any]:
        method = request.method
        if path == _HEALTH:
            if method not in ("GET", "HEAD"):
                return 405, {"detail": "Method Not Allowed"}
            return 200, {"status": "ok"}
        if path not in _DECISION_PATHS:
            return 404, {"detail": "Not Found"}
        if method != "POST":
            return 405, {"detail": "Method Not Allowed"}
        # As FastAPI does: a body that does not decode is refused before the key is checked.
        if isinstance(parsed, _NotJSON):
            return 422, {"detail": [_json_invalid(parsed.error)]}
        if not self._authorized(request):
            return 401, {"detail": _INVALID_TOKEN}
        if parsed is _ABSENT:
            return 422, {"detail": [_error("missing", ("body",), "Field required", None)]}
        if not _json_content(request):
            return 422, {
                "detail": [
                    _error(
                        "model_attributes_type",
                        ("body",),
                        "Input should be a valid dictionary or object to extract fields from",
                        parsed,
                    )
                ]
            }
        if path == _ALLOWED:
            answered = self.pdp._decide(parsed, ("body",))
            if isinstance(answered, list):
                return 422, {"detail": answered}
            return 200, answered
        if not isinstance(parsed, list):
            return 422, {
                "detail": [_error("list_type", ("body",), "Input should be a valid list", parsed)]
            }
        answers: list[dict[str, Any]] = []
        errors: list[Any] = []
        for index, query in enumerate(parsed):
            answered = self.pdp._decide(query, ("body", index))
            if isinstance(answered, list):
                errors.extend(answered)
            else:
                answers.append(answered)
        if errors:
            return 422, {"detail": errors}
        if missing:
            answers = answers[: max(0, len(answers) - missing)]
        return 200, {"allow": answers}

    def _authorized(self, request: Request) -> bool:
        parts = (request.headers.get("Authorization") or "").split(" ")
        if len(parts) != 2 or parts[0].strip().lower() != "bearer":
            return False
        return hmac.compare_digest(parts[1].encode(), self.pdp.api_key.encode())


def _json_content(request: Request) -> bool:
    # FastAPI reads the body as JSON when there is no Content-Type or a JSON one.
    value = request.headers.get("Content-Type")
    if value is None:
        return True
    media = value.split(";")[0].strip().lower()
    return media == _JSON or (media.startswith("application/") and media.endswith("+json"))
