"""The loopback HTTP server behind LocalPDP, and its request handler."""

from __future__ import annotations

import contextlib
import hmac
import json
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.testing._authzen import route as _authzen_route
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
    _default_detail,
    _error,
    _is_json,
    _json_invalid,
    _NotJSON,
)
from permit_guard.testing.faults import Fault

_MAX_BODY: Final = 16 * 1024 * 1024
_MAX_TRAILERS: Final = 100


class _PDP(Protocol):
    """What the server needs of :class:`~permit_guard.testing.pdp.LocalPDP`."""

    api_key: str
    engine: LocalPolicyEngine
    _stopping: threading.Event

    def _accepted(self, connection: socket.socket) -> None: ...
    def _released(self, connection: socket.socket) -> None: ...
    def _count(self, path: str) -> None: ...
    def _record_body(self, body: Any) -> None: ...
    def _record_error(self, exc: BaseException) -> None: ...
    def _take_fault(self, path: str) -> Fault | None: ...
    def _decide(self, query: Any, loc: tuple[str | int, ...]) -> dict[str, Any] | list[Any]: ...


class _BadRequest(Exception):
    """A request whose body cannot be read; answered, then the connection is closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _shut(connection: socket.socket) -> None:
    # OSError: already closed by its thread, or reset by the peer.
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], pdp: _PDP, family: socket.AddressFamily) -> None:
        self.pdp = pdp
        self.address_family = family
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Not HTTPServer.server_bind: its socket.getfqdn() may ask a DNS server.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exception()
        if exc is None or isinstance(exc, OSError):
            return  # a client that went away is not an error of the server
        self.pdp._record_error(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalPDP"
    sys_version = ""
    # Headers and body go out in separate writes; without this, Nagle's
    # algorithm and delayed ACKs add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.pdp = self.server.pdp
        self.pdp._accepted(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            # The client went away (reset, broken pipe) or stop() shut the socket.
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.pdp._released(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a test double must not print to stderr

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Errors of the HTTP layer (bad request line, unknown method) answered as JSON.
        self.close_connection = True
        self._send_json(code, {"detail": message or _default_detail(code)})

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    # -- one request -----------------------------------------------------------

    def _serve(self) -> None:
        pdp = self.pdp
        path = urlsplit(self.path).path
        pdp._count(path)
        try:
            raw = self._read_body()
        except _BadRequest as bad:
            # The rest of the body is unread: the connection cannot be reused.
            self.close_connection = True
            self._send_json(bad.status, {"detail": bad.detail})
            return
        if raw is None:
            self.close_connection = True  # the client left in the middle of its body
            return
        parsed: Any = _ABSENT
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                parsed = _NotJSON(str(exc))
        if self.command == "POST" and path in _ALL_DECISION_PATHS and _is_json(parsed):
            pdp._record_body(parsed)

        fault = pdp._take_fault(path)
        if fault is not None:
            if fault.seconds > 0 and pdp._stopping.wait(fault.seconds):
                self.close_connection = True  # stopped while waiting: drop, do not answer
                return
            if fault.kind == "drop":
                self.close_connection = True
                return
            if fault.kind == "respond":
                self._send(fault.status_code, fault.body, fault.content_type)
                return
        missing = fault.missing if fault is not None and fault.kind == "short_bulk" else 0
        try:
            if path in _AUTHZEN_PATHS:
                reply = _authzen_route(
                    self.command,
                    path,
                    parsed,
                    headers=self.headers,
                    api_key=pdp.api_key,
                    decide=pdp.engine.decide,
                    missing=missing,
                )
            else:
                status, payload = self._route(path, parsed, missing)
                reply = (status, json.dumps(payload).encode(), _JSON)
        except Exception as exc:
            # A bug must not pass unseen: answer 500 and keep it for LocalPDP.errors.
            pdp._record_error(exc)
            reply = (
                (500, b"Internal server error", _TEXT)
                if path in _AUTHZEN_PATHS
                else (500, b'{"detail": "Internal Server Error"}', _JSON)
            )
        self._send(*reply)

    def _route(self, path: str, parsed: Any, missing: int) -> tuple[int, Any]:
        method = self.command
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
        if not self._authorized():
            return 401, {"detail": _INVALID_TOKEN}
        if parsed is _ABSENT:
            return 422, {"detail": [_error("missing", ("body",), "Field required", None)]}
        if not self._json_content():
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
            answer = self.pdp._decide(parsed, ("body",))
            if isinstance(answer, list):
                return 422, {"detail": answer}
            return 200, answer
        if not isinstance(parsed, list):
            return 422, {
                "detail": [_error("list_type", ("body",), "Input should be a valid list", parsed)]
            }
        answers: list[dict[str, Any]] = []
        errors: list[Any] = []
        for index, query in enumerate(parsed):
            answer = self.pdp._decide(query, ("body", index))
            if isinstance(answer, list):
                errors.extend(answer)
            else:
                answers.append(answer)
        if errors:
            return 422, {"detail": errors}
        if missing:
            answers = answers[: max(0, len(answers) - missing)]
        return 200, {"allow": answers}

    def _authorized(self) -> bool:
        parts = self.headers.get("Authorization", "").split(" ")
        if len(parts) != 2 or parts[0].strip().lower() != "bearer":
            return False
        return hmac.compare_digest(parts[1].encode(), self.pdp.api_key.encode())

    def _json_content(self) -> bool:
        # FastAPI reads the body as JSON when there is no Content-Type or a JSON one.
        value = self.headers.get("Content-Type")
        if value is None:
            return True
        media = value.split(";")[0].strip().lower()
        return media == _JSON or (media.startswith("application/") and media.endswith("+json"))

    def _read_body(self) -> bytes | None:
        """The request body; None if the client closed the connection before sending it all."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        header = self.headers.get("Content-Length")
        if header is None:
            return b""
        try:
            length = int(header)
        except ValueError:
            raise _BadRequest(400, "Invalid Content-Length") from None
        if length < 0:
            raise _BadRequest(400, "Invalid Content-Length")
        if length > _MAX_BODY:
            raise _BadRequest(413, "Request body too large")
        body = self.rfile.read(length)
        return body if len(body) == length else None

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        # Bounded: every pass reads a chunk of at least one byte, and the total is capped.
        while True:
            line = self.rfile.readline(1026)
            if not line:
                return None
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "Invalid chunk size") from None
            if size < 0:
                raise _BadRequest(400, "Invalid chunk size")
            if size == 0:
                for _ in range(_MAX_TRAILERS):
                    trailer = self.rfile.readline(65537)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(chunks)
                raise _BadRequest(400, "Too many trailers")
            total += size
            if total > _MAX_BODY:
                raise _BadRequest(413, "Request body too large")
            data = self.rfile.read(size)
            if len(data) < size:
                return None
            chunks.append(data)
            self.rfile.readline(3)  # the CRLF closing the chunk

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), _JSON)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection or self.pdp._stopping.is_set():
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
