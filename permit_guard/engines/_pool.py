"""Pooled HTTP for the engines that ask a decision point over the network.

:class:`SessionPool`, one keep-alive aiohttp session per engine and event
loop, serves :class:`~permit_guard.engines.authzen.AuthZENEngine` (whose
discovered endpoints may live on other hosts); ``_origin.OriginPool`` serves
the one PDP of :class:`~permit_guard.engines.permit.PermitPDPEngine`. Both put
a timeout on every request and turn every transport failure into an
:class:`EngineError` naming where it happened. What a status or a body means
is each engine's to read; :class:`Answer`, :func:`read_json` and
:func:`preview` are shared.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from permit_guard.exceptions import EngineError

NO_BODY: Final = object()


class SessionPool:
    """One pooled aiohttp session per event loop, opened on first use.

    A session's connections belong to the loop that opened it (servers run
    one loop; test suites often many), so each loop gets its own.

    Args:
        headers: Sent with every request.
        timeout: Seconds for one whole request and its answer.
        max_connections: Size of each session's connection pool.
    """

    def __init__(self, *, headers: Mapping[str, str], timeout: float, max_connections: int) -> None:
        self.headers = dict(headers)
        self.timeout = timeout
        self.max_connections = max_connections
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()

    @property
    def current(self) -> aiohttp.ClientSession | None:
        """The running loop's session, if it has one (for tests and inspection)."""
        try:
            return self._sessions.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    def session(self) -> aiohttp.ClientSession:
        """The running loop's session, opened on first use."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                headers=self.headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                trust_env=False,
            )
            self._sessions[loop] = session
        return session

    async def aclose(self) -> None:
        """Close every session: this loop's here, other live loops' on their loop."""
        current = asyncio.get_running_loop()
        sessions = list(self._sessions.items())
        self._sessions.clear()
        for loop, session in sessions:
            if session.closed:
                continue
            if loop is current:
                await session.close()
            elif loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(session.close(), loop)
            # A session of a loop already closed cannot be closed any more.


@dataclass(frozen=True, kw_only=True, slots=True)
class Answer:
    """An HTTP answer, read whole.

    Attributes:
        status: The HTTP status.
        content_type: The ``Content-Type`` header, or ``"no content type"``.
        raw: The body.
    """

    status: int
    content_type: str
    raw: bytes


async def send(
    pool: SessionPool, method: str, url: str, *, where: str, payload: Any = NO_BODY
) -> Answer:
    """Send one request through ``pool`` and read its whole answer.

    Args:
        pool: The pool to send through.
        method: ``GET`` or ``POST``.
        url: The absolute URL.
        where: Names the decision point and path in error messages.
        payload: A JSON-serialisable body; none when left out.

    Returns:
        The answer, whatever its status.

    Raises:
        EngineError: When the payload is not JSON-serialisable, or on a
            timeout or any connection failure.
    """
    data = json_body(payload, where=where)
    try:
        async with pool.session().request(method, url, data=data) as response:
            status = response.status
            content_type = response.headers.get("Content-Type", "no content type")
            raw = await response.read()
    except TimeoutError as exc:
        raise EngineError(f"{where} did not answer within {pool.timeout}s") from exc
    except aiohttp.ClientError as exc:
        raise EngineError(f"{where} could not be reached: {type(exc).__name__}: {exc}") from exc
    return Answer(status=status, content_type=content_type, raw=raw)


def json_body(payload: Any, *, where: str) -> str | None:
    """``payload`` as JSON text; ``None`` for :data:`NO_BODY`.

    Raises:
        EngineError: When the payload is not JSON-serialisable.
    """
    if payload is NO_BODY:
        return None
    try:
        return json.dumps(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EngineError(f"{where}: the request cannot be sent as JSON: {exc}") from exc


def read_json(answer: Answer, *, where: str) -> Any:
    """The answer's body as JSON.

    Raises:
        EngineError: When the body is not JSON.
    """
    try:
        return json.loads(answer.raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EngineError(
            f"{where} answered a body that is not JSON ({answer.content_type})"
        ) from exc


def preview(body: Any) -> str:
    """``body`` as JSON, cut to 120 characters, for error messages."""
    text = json.dumps(body, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
