"""Helpers for testing a guarded server in your own test suite.

:class:`RecordingEngine` wraps a real engine and records what it was asked::

    from fastmcp import Client
    from permit_guard import LocalPolicyEngine, PermitMcpMiddleware
    from permit_guard.testing import RecordingEngine

    engine = RecordingEngine(LocalPolicyEngine.from_file("policy.yaml"))
    mcp.add_middleware(PermitMcpMiddleware(engine=engine))
    async with Client(mcp) as client:
        await client.list_tools()
    assert engine.calls == [("check_many", 4)]   # one engine call for the whole list

:class:`LocalPDP` is a real HTTP server on 127.0.0.1 that speaks the Permit.io
PDP API (``POST /allowed``, ``POST /allowed/bulk``, ``GET /health``), decides
with a :class:`~permit_guard.engines.local.LocalPolicyEngine`, counts what it
receives and misbehaves on demand (:class:`Fault`)::

    import httpx
    from permit_guard.testing import Fault, LocalPDP

    policy = {
        "resources": {"mcp_server": {"actions": ["greet"]}},
        "roles": {"viewer": {"grants": {"mcp_server": ["greet"]}}},
        "users": {"bob": {"roles": ["viewer"]}},
    }
    query = {"user": {"key": "bob"}, "action": "greet", "resource": {"type": "mcp_server"}}
    with LocalPDP.from_dict(policy) as pdp:
        headers = {"Authorization": f"Bearer {pdp.api_key}"}
        answer = httpx.post(f"{pdp.url}/allowed", json=query, headers=headers)
        assert answer.json()["allow"] is True
        pdp.inject(Fault.status(503), times=1)   # the next decision request fails
        assert httpx.post(f"{pdp.url}/allowed", json=query, headers=headers).status_code == 503
        assert pdp.requests_by_path == {"/allowed": 2}
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import math
import os
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.model import DEFAULT_TENANT, AuthzRequest, Decision, Principal, Resource

__all__ = ["Fault", "LocalPDP", "RecordingEngine"]


class RecordingEngine:
    """Wraps a real engine and records every request and every call made to it.

    Attributes:
        inner: The engine that decides.
        requests: Every request asked, in order.
        decisions: Every decision returned, in order.
        calls: ``("check", 1)`` or ``("check_many", n)`` per engine call.
    """

    def __init__(self, inner: PolicyEngine) -> None:
        self.inner = inner
        self.requests: list[AuthzRequest] = []
        self.decisions: list[Decision] = []
        self.calls: list[tuple[str, int]] = []

    @property
    def name(self) -> str:
        """The wrapped engine's name."""
        return self.inner.name

    async def check(self, request: AuthzRequest) -> Decision:
        """Record, then ask the wrapped engine."""
        self.calls.append(("check", 1))
        self.requests.append(request)
        decision = await self.inner.check(request)
        self.decisions.append(decision)
        return decision

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Record, then ask the wrapped engine once for all of them."""
        self.calls.append(("check_many", len(requests)))
        self.requests.extend(requests)
        decisions = await self.inner.check_many(requests)
        self.decisions.extend(decisions)
        return decisions

    def reset(self) -> None:
        """Forget what was recorded."""
        self.requests.clear()
        self.decisions.clear()
        self.calls.clear()


# -- LocalPDP: the Permit.io PDP API on loopback ---------------------------------------------------

_ALLOWED: Final = "/allowed"
_BULK: Final = "/allowed/bulk"
_HEALTH: Final = "/health"
_DECISION_PATHS: Final = frozenset({_ALLOWED, _BULK})
_MAX_BODY: Final = 16 * 1024 * 1024
_MAX_TRAILERS: Final = 100
_POLL_INTERVAL: Final = 0.05
_JSON: Final = "application/json"
_INVALID_TOKEN: Final = "Invalid PDP token"
_DEFAULT_DETAILS: Final[Mapping[int, str]] = {
    401: _INVALID_TOKEN,
    501: (
        "ABAC and ReBAC queries are not supported by the cloud PDP; "
        "run a local PDP container to use them"
    ),
}

FaultKind = Literal["delay", "respond", "short_bulk", "drop"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """One way for :class:`LocalPDP` to misbehave; build it with the class methods.

    Arm it with :meth:`LocalPDP.inject`. Every fault first waits ``seconds``
    (a stop of the server cuts the wait short and drops the connection), then:

    - ``"delay"`` answers normally;
    - ``"respond"`` answers ``status_code`` with ``content_type`` and ``body``
      instead of the real answer, whatever the request;
    - ``"short_bulk"`` answers ``/allowed/bulk`` with its last ``missing``
      answers left out;
    - ``"drop"`` closes the connection without answering.

    Attributes:
        kind: What the fault does, as listed above.
        seconds: How long to wait before acting.
        status_code: The status of a ``"respond"`` fault.
        content_type: The ``Content-Type`` of a ``"respond"`` fault.
        body: The body of a ``"respond"`` fault, sent as is.
        missing: How many answers a ``"short_bulk"`` fault leaves out.
    """

    kind: FaultKind
    seconds: float = 0.0
    status_code: int = 200
    content_type: str = _JSON
    body: bytes = b""
    missing: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"Fault delay must be a finite number >= 0, not {self.seconds!r}")
        if not 200 <= self.status_code <= 599:
            raise ValueError(f"Fault status must be in 200..599, not {self.status_code!r}")
        if self.kind == "short_bulk" and self.missing < 1:
            raise ValueError(
                f"Fault.short_bulk must leave out at least 1 answer, not {self.missing}"
            )

    @classmethod
    def delay(cls, seconds: float) -> Self:
        """Answer normally, but only after ``seconds``.

        Args:
            seconds: The wait; :meth:`LocalPDP.stop` cuts it short.

        Returns:
            The fault.
        """
        return cls(kind="delay", seconds=seconds)

    @classmethod
    def status(cls, code: int, *, detail: str | None = None, delay: float = 0.0) -> Self:
        """Answer ``code`` with a JSON body ``{"detail": ...}``, as the PDP's errors look.

        The default detail is the real PDP's where it is known: ``"Invalid PDP
        token"`` for 401, the cloud PDP's refusal of ABAC/ReBAC queries for 501,
        and the status phrase (``"Service Unavailable"``...) otherwise.

        Args:
            code: The HTTP status, 400..599.
            detail: The ``detail`` to send instead of the default.
            delay: Seconds to wait before answering.

        Returns:
            The fault.

        Raises:
            ValueError: If ``code`` is not an error status.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"Fault.status takes an error status (400..599), not {code!r}")
        text = detail if detail is not None else _default_detail(code)
        return cls(
            kind="respond",
            seconds=delay,
            status_code=code,
            body=json.dumps({"detail": text}).encode(),
        )

    @classmethod
    def not_json(
        cls,
        *,
        code: int = 200,
        body: str = "<html>Bad gateway</html>",
        content_type: str = "text/html",
        delay: float = 0.0,
    ) -> Self:
        """Answer with a body that is not JSON, as a proxy in front of the PDP may.

        Args:
            code: The HTTP status (200 by default: the status alone looks fine).
            body: The body.
            content_type: Its ``Content-Type``.
            delay: Seconds to wait before answering.

        Returns:
            The fault.
        """
        return cls(
            kind="respond",
            seconds=delay,
            status_code=code,
            content_type=content_type,
            body=body.encode(),
        )

    @classmethod
    def malformed_json(cls, *, delay: float = 0.0) -> Self:
        """Answer 200, ``Content-Type: application/json``, with the cut-off body ``{"allow": tru``.

        Args:
            delay: Seconds to wait before answering.

        Returns:
            The fault.
        """
        return cls(kind="respond", seconds=delay, body=b'{"allow": tru')

    @classmethod
    def wrong_shape(cls, body: Any = None, *, delay: float = 0.0) -> Self:
        """Answer 200 with well-formed JSON of the wrong shape.

        Args:
            body: The JSON value to send; ``{"allowed": "yes"}`` when omitted.
            delay: Seconds to wait before answering.

        Returns:
            The fault.
        """
        value = {"allowed": "yes"} if body is None else body
        return cls(kind="respond", seconds=delay, body=json.dumps(value).encode())

    @classmethod
    def short_bulk(cls, *, missing: int = 1, delay: float = 0.0) -> Self:
        """Answer ``/allowed/bulk`` correctly, but with the last ``missing`` answers left out.

        A shorter list than was asked is what a real PDP may send, and a client
        that zips answers with questions then silently misses some of them.

        Args:
            missing: How many answers to leave out (at least 1).
            delay: Seconds to wait before answering.

        Returns:
            The fault; it applies to ``/allowed/bulk`` only.
        """
        return cls(kind="short_bulk", seconds=delay, missing=missing)

    @classmethod
    def drop(cls, *, delay: float = 0.0) -> Self:
        """Close the connection without answering, after reading the request.

        Args:
            delay: Seconds to wait before closing.

        Returns:
            The fault.
        """
        return cls(kind="drop", seconds=delay)


def _default_detail(code: int) -> str:
    known = _DEFAULT_DETAILS.get(code)
    if known is not None:
        return known
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error"


@dataclass(slots=True)
class _Armed:
    """An injected fault: where it applies, and how many more times (None: until cleared)."""

    fault: Fault
    paths: frozenset[str]
    remaining: int | None


class _BadRequest(Exception):
    """A request whose body cannot be read; answered, then the connection is closed."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class LocalPDP:
    """A real HTTP server on loopback that answers like the Permit.io PDP.

    It serves ``POST /allowed`` (one query, answered ``{"allow": bool, ...}``),
    ``POST /allowed/bulk`` (a JSON array of queries, answered ``{"allow":
    [{"allow": bool, ...}, ...]}`` in request order) and ``GET /health``
    (``{"status": "ok"}``, no key needed), deciding with ``engine``. Every
    answer also carries the extra fields the real PDP sends (``query``,
    ``debug``, ``result``) and the engine's ``reason``; clients must ignore
    what they do not read. A missing or wrong ``Authorization: Bearer`` key is
    answered ``401 {"detail": "Invalid PDP token"}``; a body that is not JSON,
    or not a query, ``422`` with FastAPI's ``{"detail": [{"type", "loc", "msg",
    "input"}, ...]}``; an unknown path ``404 {"detail": "Not Found"}``.

    HTTP/1.1 keep-alive works: a client may send any number of requests over
    one connection. Each connection is served on its own daemon thread, so the
    server never blocks an event loop, and :meth:`stop` closes every open
    connection and returns within its timeout, even while an answer is being
    delayed.

    Start it as a context manager, sync or async, or with :meth:`start` and
    :meth:`stop`::

        with LocalPDP.from_dict(policy) as pdp: ...
        async with LocalPDP.from_dict(policy) as pdp: ...

    Attributes:
        engine: The engine that decides.
        api_key: The bearer key clients must send.
    """

    def __init__(
        self,
        engine: LocalPolicyEngine,
        *,
        api_key: str = "test-pdp-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Prepare the server; nothing listens before :meth:`start`.

        Args:
            engine: The engine that decides.
            api_key: The bearer key clients must send.
            host: A loopback address to listen on (``127.0.0.1`` or ``::1``).
            port: The port; 0 picks a free one at every start.

        Raises:
            ValueError: If ``host`` is not a loopback address or ``api_key`` is empty.
        """
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is None or not address.is_loopback:
            # Traffic must never leave the machine: only loopback addresses are served.
            raise ValueError(f"LocalPDP host must be a loopback IP address, not {host!r}")
        if not api_key:
            raise ValueError("LocalPDP api_key must not be empty")
        self.engine = engine
        self.api_key = api_key
        self._host = host
        self._port = port
        self._family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._open: dict[socket.socket, threading.Thread] = {}
        self._faults: list[_Armed] = []
        self._requests = 0
        self._by_path: dict[str, int] = {}
        self._connections = 0
        self._bodies: list[Any] = []
        self._errors: list[BaseException] = []

    @classmethod
    def from_dict(
        cls,
        policy: Mapping[str, Any],
        *,
        api_key: str = "test-pdp-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> Self:
        """A PDP deciding with a :class:`LocalPolicyEngine` loaded from a mapping.

        Args:
            policy: The policy, in the form of the policy file.
            api_key: The bearer key clients must send.
            host: A loopback address to listen on.
            port: The port; 0 picks a free one.

        Returns:
            The PDP, not started.

        Raises:
            PolicyFileError: If the policy is invalid.
        """
        return cls(LocalPolicyEngine.from_dict(policy), api_key=api_key, host=host, port=port)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        api_key: str = "test-pdp-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> Self:
        """A PDP deciding with a :class:`LocalPolicyEngine` loaded from a policy file.

        Args:
            path: The policy file (``.yaml``, ``.yml`` or ``.json``).
            api_key: The bearer key clients must send.
            host: A loopback address to listen on.
            port: The port; 0 picks a free one.

        Returns:
            The PDP, not started.

        Raises:
            PolicyFileError: If the policy is invalid.
        """
        return cls(LocalPolicyEngine.from_file(path), api_key=api_key, host=host, port=port)

    def __repr__(self) -> str:
        where = self._url if self._url is not None else "stopped"
        return f"LocalPDP({where}, engine={self.engine!r})"

    # -- lifecycle -----------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``, without a trailing slash.

        Raises:
            RuntimeError: If the server is not running.
        """
        if self._url is None:
            raise RuntimeError("LocalPDP is not running: use 'with LocalPDP(...)' or call start()")
        return self._url

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    def start(self) -> Self:
        """Listen and serve on a background thread; returns once the port is bound.

        Returns:
            The PDP itself, so ``pdp = LocalPDP(engine).start()`` works.

        Raises:
            RuntimeError: If it is already running.
            OSError: If the port cannot be bound.
        """
        if self._server is not None:
            raise RuntimeError(f"LocalPDP is already running at {self._url}")
        self._stopping.clear()
        server = _Server((self._host, self._port), self, self._family)
        port = server.socket.getsockname()[1]
        host = f"[{self._host}]" if self._family == socket.AF_INET6 else self._host
        url = f"http://{host}:{port}"
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name=f"LocalPDP {url}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread, self._url = server, thread, url
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close every connection; does nothing if not running.

        A request being delayed by a fault is dropped without an answer. The
        call returns within about ``timeout`` seconds whatever the clients do.

        Args:
            timeout: The most seconds to wait for connection threads to end.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        # Returns within one poll interval: serve_forever is already running.
        server.shutdown()
        thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            still_open = list(self._open.items())
        for connection, _ in still_open:
            _shut(connection)
        for _, handler in still_open:
            handler.join(max(0.0, deadline - time.monotonic()))
        server.server_close()
        self._server = self._thread = self._url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        # Binding and joining threads block: keep them off the event loop.
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- counters ------------------------------------------------------------

    @property
    def requests(self) -> int:
        """HTTP requests received, on any path, including those a fault answered."""
        with self._lock:
            return self._requests

    @property
    def requests_by_path(self) -> dict[str, int]:
        """A copy of the request count per path (without query string)."""
        with self._lock:
            return dict(self._by_path)

    @property
    def connections(self) -> int:
        """TCP connections accepted."""
        with self._lock:
            return self._connections

    @property
    def bodies(self) -> list[Any]:
        """A copy of the JSON bodies received on ``/allowed`` and ``/allowed/bulk``, in order.

        Every body that parses as JSON is kept, whether or not it was
        authorized, valid or answered.
        """
        with self._lock:
            return list(self._bodies)

    @property
    def errors(self) -> list[BaseException]:
        """A copy of the exceptions raised while answering (each answered 500).

        A healthy run leaves it empty; tests may assert so. Clients that go
        away are not errors.
        """
        with self._lock:
            return list(self._errors)

    def reset(self) -> None:
        """Zero every counter and forget the bodies and errors; armed faults stay."""
        with self._lock:
            self._requests = 0
            self._by_path.clear()
            self._connections = 0
            self._bodies.clear()
            self._errors.clear()

    # -- faults --------------------------------------------------------------

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        paths: Iterable[str] | None = None,
    ) -> None:
        """Arm a fault for the next ``times`` requests it applies to, or until cleared.

        Faults may be armed and cleared while the server runs. Each request
        meets at most one fault: the earliest armed that applies to its path.
        When that fault's ``times`` are used up it is disarmed, and the next
        one armed applies. A fault acts before the key is checked, as a proxy
        or an overloaded PDP would.

        Args:
            fault: What to do.
            times: How many requests it applies to; None for every one until
                :meth:`clear_faults`.
            paths: The paths it applies to; ``/allowed`` and ``/allowed/bulk``
                when omitted (``/health`` too if named). A ``short_bulk`` fault
                applies to ``/allowed/bulk`` only.

        Raises:
            ValueError: If ``times`` is below 1, a path does not start with
                ``/``, or the fault applies to none of ``paths``.
        """
        if times is not None and times < 1:
            raise ValueError(f"LocalPDP.inject times must be at least 1 (or None), not {times}")
        chosen = _DECISION_PATHS if paths is None else frozenset(paths)
        bad = sorted(p for p in chosen if not p.startswith("/"))
        if bad:
            raise ValueError(f"LocalPDP.inject paths must start with '/': {bad}")
        if fault.kind == "short_bulk":
            chosen &= {_BULK}
        if not chosen:
            raise ValueError(f"{fault!r} applies to none of the paths {sorted(paths or ())}")
        with self._lock:
            self._faults.append(_Armed(fault, chosen, times))

    def clear_faults(self) -> None:
        """Disarm every fault; the next request is answered normally."""
        with self._lock:
            self._faults.clear()

    # -- called from connection threads ----------------------------------------

    def _accepted(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._open[connection] = threading.current_thread()
            # Read under the lock: stop() sets the event, then lists open connections.
            stopping = self._stopping.is_set()
        if stopping:
            _shut(connection)

    def _released(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.pop(connection, None)

    def _count(self, path: str) -> None:
        with self._lock:
            self._requests += 1
            self._by_path[path] = self._by_path.get(path, 0) + 1

    def _record_body(self, body: Any) -> None:
        with self._lock:
            self._bodies.append(body)

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for armed in self._faults:
                if path not in armed.paths:
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        self._faults.remove(armed)
                return armed.fault
        return None

    def _decide(self, query: Any, loc: tuple[str | int, ...]) -> dict[str, Any] | list[Any]:
        """The answer to one query, or its validation errors (a list)."""
        errors: list[dict[str, Any]] = []
        request = _parse_query(query, loc, errors)
        if request is None:
            return errors
        decision = self.engine.decide(request)
        return _answer(query, decision)


def _shut(connection: socket.socket) -> None:
    # OSError: already closed by its thread, or reset by the peer.
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], pdp: LocalPDP, family: socket.AddressFamily
    ) -> None:
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
        if self.command == "POST" and path in _DECISION_PATHS and _is_json(parsed):
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
            status, payload = self._route(path, parsed, missing)
        except Exception as exc:
            # A bug must not pass unseen: answer 500 and keep it for LocalPDP.errors.
            pdp._record_error(exc)
            status, payload = 500, {"detail": "Internal Server Error"}
        self._send_json(status, payload)

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


class _NotJSON:
    """A request body that does not decode as JSON."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


_ABSENT: Final = object()


def _is_json(parsed: Any) -> bool:
    return parsed is not _ABSENT and not isinstance(parsed, _NotJSON)


def _error(kind: str, loc: tuple[str | int, ...], msg: str, value: Any) -> dict[str, Any]:
    return {"type": kind, "loc": list(loc), "msg": msg, "input": value}


def _json_invalid(error: str) -> dict[str, Any]:
    return {
        "type": "json_invalid",
        "loc": ["body", 0],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": error},
    }


_TYPE_ERRORS: Final[Mapping[type, tuple[str, str]]] = {
    str: ("string_type", "Input should be a valid string"),
    dict: ("dict_type", "Input should be a valid dictionary"),
}


def _field(
    data: dict[str, Any],
    name: str,
    kind: type,
    loc: tuple[str | int, ...],
    errors: list[dict[str, Any]],
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    """``data[name]`` if it is a ``kind``; else record an error. Optional fields may be null."""
    if name not in data:
        if required:
            errors.append(_error("missing", (*loc, name), "Field required", data))
        return default
    value = data[name]
    if value is None and not required:
        return default
    if not isinstance(value, kind):
        code, msg = _TYPE_ERRORS[kind]
        errors.append(_error(code, (*loc, name), msg, value))
        return default
    return value


def _parse_query(
    data: Any, loc: tuple[str | int, ...], errors: list[dict[str, Any]]
) -> AuthzRequest | None:
    """The PDP's query schema: required ``user.key``, ``action``, ``resource.type``.

    Optional fields may be absent or null: ``resource.tenant`` then defaults to
    ``"default"``, attributes and contexts to ``{}``. Other fields (``firstName``,
    ``email``, ``resource.id``, ``sdk``...) are accepted and ignored.
    """
    if not isinstance(data, dict):
        errors.append(_error("dict_type", loc, "Input should be a valid dictionary", data))
        return None
    user = _field(data, "user", dict, loc, errors, required=True)
    action = _field(data, "action", str, loc, errors, required=True)
    resource = _field(data, "resource", dict, loc, errors, required=True)
    context = _field(data, "context", dict, loc, errors, default={})
    user_key: Any = None
    user_attributes: Any = {}
    if user is not None:
        user_loc = (*loc, "user")
        user_key = _field(user, "key", str, user_loc, errors, required=True)
        user_attributes = _field(user, "attributes", dict, user_loc, errors, default={})
    type_name: Any = None
    key: Any = None
    tenant: Any = DEFAULT_TENANT
    resource_attributes: Any = {}
    if resource is not None:
        resource_loc = (*loc, "resource")
        type_name = _field(resource, "type", str, resource_loc, errors, required=True)
        key = _field(resource, "key", str, resource_loc, errors)
        tenant = _field(resource, "tenant", str, resource_loc, errors, default=DEFAULT_TENANT)
        resource_attributes = _field(resource, "attributes", dict, resource_loc, errors, default={})
        _field(resource, "context", dict, resource_loc, errors, default={})
    if errors or user_key is None or action is None or type_name is None:
        return None
    return AuthzRequest(
        user=Principal(key=user_key, attributes=user_attributes),
        action=action,
        resource=Resource(type=type_name, key=key, tenant=tenant, attributes=resource_attributes),
        context=context,
    )


def _answer(query: Any, decision: Decision) -> dict[str, Any]:
    # The real PDP's fields (allow, query, debug, result), plus the engine's reason.
    return {
        "allow": decision.allowed,
        "query": query,
        "debug": {"reason": decision.reason},
        "result": decision.allowed,
        "reason": decision.reason,
    }
