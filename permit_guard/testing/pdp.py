"""LocalPDP: a real loopback HTTP server speaking the Permit.io PDP API, with faults."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.testing._server import Server
from permit_guard.testing._wire import _ALL_DECISION_PATHS as _DECISION_PATHS
from permit_guard.testing._wire import _BATCH_PATHS, _decided
from permit_guard.testing.faults import Fault, _Armed

__all__ = ["LocalPDP"]


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

    It serves the AuthZEN Authorization API 1.0 as Permit's PDP does, behind
    the same key: ``POST /access/v1/evaluation``, ``POST /access/v1/evaluations``
    and ``GET /.well-known/authzen-configuration`` (see docs/authzen.md).

    HTTP/1.1 keep-alive works: a client may send any number of requests over
    one connection. Every connection is served by one event loop on a daemon
    thread of its own, so the server never blocks the caller's event loop and
    costs little per request, and :meth:`stop` closes every open connection
    and returns within its timeout, even while an answer is being delayed.

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
        self._server: Server | None = None
        self._url: str | None = None
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
        data: str | os.PathLike[str] | None = None,
        api_key: str = "test-pdp-key",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> Self:
        """A PDP deciding with a :class:`LocalPolicyEngine` loaded from a policy file.

        Args:
            path: The policy file (``.yaml``, ``.yml`` or ``.json``).
            data: A data file whose facts replace the policy file's.
            api_key: The bearer key clients must send.
            host: A loopback address to listen on.
            port: The port; 0 picks a free one.

        Returns:
            The PDP, not started.

        Raises:
            PolicyFileError: If the policy is invalid.
        """
        engine = LocalPolicyEngine.from_file(path, data=data)
        return cls(engine, api_key=api_key, host=host, port=port)

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
        server = Server((self._host, self._port), self, self._family)
        host = f"[{self._host}]" if self._family == socket.AF_INET6 else self._host
        url = f"http://{host}:{server.port}"
        server.start(name=f"LocalPDP {url}")
        self._server, self._url = server, url
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close every connection; does nothing if not running.

        A request being delayed by a fault is dropped without an answer. The
        call returns within about ``timeout`` seconds whatever the clients do.

        Args:
            timeout: The most seconds to wait for connection threads to end.
        """
        server = self._server
        if server is None:
            return
        self._stopping.set()
        server.stop(timeout)
        self._server = self._url = None

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
        """A copy of the JSON bodies received on the decision paths, in order.

        The decision paths are ``/allowed``, ``/allowed/bulk``,
        ``/access/v1/evaluation`` and ``/access/v1/evaluations``.

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
            paths: The paths it applies to; the decision paths (see
                :attr:`bodies`) when omitted (``/health`` or the AuthZEN
                metadata path too if named). A ``short_bulk`` fault applies
                to ``/allowed/bulk`` and ``/access/v1/evaluations`` only.

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
            chosen &= _BATCH_PATHS
        if not chosen:
            raise ValueError(f"{fault!r} applies to none of the paths {sorted(paths or ())}")
        with self._lock:
            self._faults.append(_Armed(fault, chosen, times))

    def clear_faults(self) -> None:
        """Disarm every fault; the next request is answered normally."""
        with self._lock:
            self._faults.clear()

    # -- called from the server's thread ----------------------------------------

    def _accepted(self) -> None:
        with self._lock:
            self._connections += 1

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
        return _decided(self.engine, query, loc)
