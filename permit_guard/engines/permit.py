"""Permit.io's Policy Decision Point (PDP) as a policy engine.

Example::

    from fastmcp import FastMCP
    from permit_guard import PermitMcpMiddleware, PermitPDPEngine

    engine = PermitPDPEngine(url="http://localhost:7766", api_key="permit_key_...")
    guard = PermitMcpMiddleware(engine=engine)
    mcp = FastMCP("billing", lifespan=guard.lifespan)   # closes the pool on shutdown
    mcp.add_middleware(guard)

Against a naive use of the ``permit`` SDK, which opens a new HTTP session for
every check and has no default timeout:

- one pool of keep-alive HTTP/1.1 connections per engine (and event loop),
  opened on first use and closed by :meth:`aclose` (or the guard's lifespan);
  it writes each request in one piece from a prepared head and reads the
  answer directly, so a check costs the guarded call about half the CPU an
  aiohttp session takes (and aiohttp a third of httpx's);
- ``check_many`` is ONE ``POST /allowed/bulk`` (split only above
  ``bulk_chunk_size``), its answer checked item by item;
- a timeout on every request, and every failure — refused connection,
  timeout, a status other than 200, a body that is not JSON or not the PDP's
  shape, a bulk answer of the wrong length — is an :class:`EngineError` naming
  the PDP URL and the cause, which the guard turns into a denial.

An existing ``permit.Permit`` client can be used instead
(:meth:`PermitPDPEngine.from_permit`); checks then go through the SDK's
``check`` / ``bulk_check`` with the same fail-closed handling.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Sequence
from typing import Any, Self

from permit_guard.engines._origin import Connections, OriginPool
from permit_guard.engines._pool import preview, read_json
from permit_guard.exceptions import ConfigurationError, EngineError
from permit_guard.model import AuthzRequest, Decision

__all__ = ["DEFAULT_PDP_URL", "PermitPDPEngine"]

logger = logging.getLogger("permit_guard.engines.permit")

DEFAULT_PDP_URL = "http://localhost:7766"

_ABAC_HINT = (
    "the cloud PDP answers 501 to ABAC and ReBAC queries (resource sets, user sets, "
    "resource roles, attributes); run a local PDP container for those"
)


class PermitPDPEngine:
    """Decides by asking a Permit.io PDP over HTTP (or through the ``permit`` SDK).

    Args:
        url: The PDP's base URL (``PERMIT_MCP_PERMIT_PDP_URL``).
        api_key: The Permit.io environment API key (``PERMIT_MCP_PERMIT_API_KEY``).
        timeout: Seconds to wait for one PDP answer (``PERMIT_MCP_PDP_TIMEOUT``).
        bulk_chunk_size: Largest number of checks in one bulk request; longer
            lists are split.
        max_connections: Size of the connection pool (per event loop): at
            most this many checks are in flight at once, the others wait
            their turn within their timeout.

    Raises:
        ConfigurationError: On an empty key or one holding a line break, a URL
            that is not http(s), or a non-positive timeout or chunk size.
    """

    def __init__(
        self,
        url: str = DEFAULT_PDP_URL,
        api_key: str = "",
        *,
        timeout: float = 5.0,
        bulk_chunk_size: int = 10_000,
        max_connections: int = 20,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError(
                "PermitPDPEngine needs an API key (api_key=... or PERMIT_MCP_PERMIT_API_KEY)"
            )
        url = url.rstrip("/") if isinstance(url, str) else url
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"PDP URL must start with http:// or https://, got {url!r}")
        if not timeout or timeout <= 0:
            raise ConfigurationError(f"PDP timeout must be positive, got {timeout!r}")
        if bulk_chunk_size < 1 or max_connections < 1:
            raise ConfigurationError("bulk_chunk_size and max_connections must be at least 1")
        if any(c in api_key.strip() for c in "\r\n\0"):
            raise ConfigurationError("PermitPDPEngine's API key must not hold a line break")
        self.url = url
        self.timeout = float(timeout)
        self.bulk_chunk_size = bulk_chunk_size
        self.max_connections = max_connections
        self._pool = OriginPool(
            url,
            headers={
                "Authorization": f"Bearer {api_key.strip()}",
                "Content-Type": "application/json",
            },
            timeout=self.timeout,
            max_connections=max_connections,
        )
        self._sdk: Any = None

    @classmethod
    def from_permit(
        cls,
        client: Any,
        *,
        through_sdk: bool = False,
        timeout: float | None = None,
        bulk_chunk_size: int = 10_000,
    ) -> Self:
        """Use an existing async ``permit.Permit`` client (permit-fastmcp's ``permit_client=``).

        By default its configuration (PDP URL, API key, ``pdp_timeout``) is used
        with this engine's own pooled, strict HTTP client: the SDK reads
        ``{"allow": "no"}`` as an allow (``bool("no")``) and returns short bulk
        answers silently, which no check on its result can detect.

        With ``through_sdk=True`` checks go through the SDK's ``check`` /
        ``bulk_check`` themselves (for its context store, say): its failures
        (``PermitConnectionError``, raw ``TimeoutError``, ``JSONDecodeError``),
        bulk answers of the wrong length and answers later than the timeout
        become :class:`EngineError`, but its lax reading of ``allow`` remains.

        Args:
            client: The ``permit.Permit`` client.
            through_sdk: Send checks through the SDK's own methods.
            timeout: Seconds per PDP answer; default the client's
                ``pdp_timeout``, else 5.
            bulk_chunk_size: Largest number of checks in one bulk request.

        Raises:
            ConfigurationError: If ``client`` is not an async ``permit.Permit``.
        """
        check = getattr(client, "check", None)
        bulk = getattr(client, "bulk_check", None)
        if not (inspect.iscoroutinefunction(check) and inspect.iscoroutinefunction(bulk)):
            raise ConfigurationError(
                "permit_client must be an async permit.Permit (from permit import Permit), "
                f"got {type(client).__name__}"
            )
        config = getattr(client, "config", None)
        url = str(getattr(config, "pdp", "") or DEFAULT_PDP_URL)
        configured = getattr(config, "pdp_timeout", None)
        token = getattr(config, "token", None)
        if not through_sdk and not (isinstance(token, str) and token.strip()):
            raise ConfigurationError("the permit client has no API key (Permit(token=...))")
        engine = cls(
            url,
            api_key=str(token) if not through_sdk else "(held by the permit client)",
            timeout=timeout or (float(configured) if configured else 5.0),
            bulk_chunk_size=bulk_chunk_size,
        )
        if through_sdk:
            engine._sdk = client
        return engine

    @property
    def name(self) -> str:
        """``permit-pdp``, or ``permit-sdk`` when checks go through a ``permit.Permit``."""
        return "permit-sdk" if self._sdk is not None else "permit-pdp"

    def __repr__(self) -> str:
        return f"PermitPDPEngine(url={self.url!r}, via={'sdk' if self._sdk else 'http'})"

    # ----------------------------------------------------------------- checks

    async def check(self, request: AuthzRequest) -> Decision:
        """Decide one request with ``POST /allowed``.

        Raises:
            EngineError: On any failure; the guard then denies.
        """
        if self._sdk is not None:
            return (await self._sdk_check_many([request], single=True))[0]
        body = await self._post("/allowed", request.to_pdp_json())
        return _decision(body, where=self._where("/allowed"))

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Decide many requests with one ``POST /allowed/bulk`` per chunk.

        Raises:
            EngineError: On any failure, including an answer whose length or
                shape does not match; no partial answer is ever returned.
        """
        if not requests:
            return []
        if self._sdk is not None:
            return await self._sdk_check_many(requests, single=False)
        decisions: list[Decision] = []
        for start in range(0, len(requests), self.bulk_chunk_size):
            chunk = requests[start : start + self.bulk_chunk_size]
            body = await self._post("/allowed/bulk", [r.to_pdp_json() for r in chunk])
            decisions.extend(
                _bulk_decisions(body, expected=len(chunk), where=self._where("/allowed/bulk"))
            )
        return decisions

    # ------------------------------------------------------------------- HTTP

    @property
    def _http(self) -> Connections | None:
        """The running loop's connections, if it has any (for tests and inspection)."""
        return self._pool.current

    def _where(self, path: str) -> str:
        return f"PDP at {self.url!r} ({path})"

    async def _post(self, path: str, payload: Any) -> Any:
        where = self._where(path)
        answer = await self._pool.send("POST", path, where=where, payload=payload)
        if answer.status != 200:
            hint = _status_hint(answer.status, answer.raw)
            raise EngineError(f"{where} answered HTTP {answer.status}{hint}")
        return read_json(answer, where=where)

    async def aclose(self) -> None:
        """Close the connection pools: this loop's here, other live loops' on their loop."""
        await self._pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -------------------------------------------------------------------- SDK

    async def _sdk_check_many(
        self, requests: Sequence[AuthzRequest], *, single: bool
    ) -> list[Decision]:
        where = f"permit SDK (PDP at {self.url!r})"
        try:
            if single:
                (request,) = requests
                body = request.to_pdp_json()
                # The SDK has no timeout unless pdp_timeout is set: bound it here.
                async with asyncio.timeout(self.timeout):
                    answers: Any = [
                        await self._sdk.check(
                            body["user"], body["action"], body["resource"], body["context"]
                        )
                    ]
            else:
                answers = []
                for start in range(0, len(requests), self.bulk_chunk_size):
                    chunk = requests[start : start + self.bulk_chunk_size]
                    checks = [_sdk_query(r) for r in chunk]
                    async with asyncio.timeout(self.timeout):
                        got = await self._sdk.bulk_check(checks)
                    if not isinstance(got, list) or len(got) != len(chunk):
                        # The SDK returns a SHORT list when the PDP answers with
                        # fewer items: never read that as a partial answer.
                        raise EngineError(
                            f"{where}: bulk_check answered "
                            f"{len(got) if isinstance(got, list) else type(got).__name__} "
                            f"decisions for {len(chunk)} checks"
                        )
                    answers.extend(got)
        except EngineError:
            raise
        except TimeoutError as exc:
            raise EngineError(f"{where} did not answer within {self.timeout}s") from exc
        except Exception as exc:
            # PermitConnectionError, and the raw JSONDecodeError the SDK lets
            # through: all fail closed.
            raise EngineError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
        decisions = []
        for answer in answers:
            if not isinstance(answer, bool):
                raise EngineError(f"{where} answered {answer!r}, not a boolean")
            decisions.append(
                Decision(allowed=answer, reason=f"PDP {'allowed' if answer else 'denied'} (SDK)")
            )
        return decisions


def _sdk_query(request: AuthzRequest) -> dict[str, Any]:
    body = request.to_pdp_json()
    return {
        "user": body["user"],
        "action": body["action"],
        "resource": body["resource"],
        "context": body["context"],
    }


def _status_hint(status: int, raw: bytes) -> str:
    if status == 501:
        return f": {_ABAC_HINT}"
    if status in (401, 403):
        return ": the PDP rejected the API key (check PERMIT_MCP_PERMIT_API_KEY)"
    detail = ""
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("detail"), str):
            detail = body["detail"][:200]
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    return f" ({detail})" if detail else ""


def _decision(body: Any, *, where: str) -> Decision:
    """One PDP answer, read strictly: ``allow`` must be a real boolean."""
    if not isinstance(body, dict) or not isinstance(body.get("allow"), bool):
        raise EngineError(f"{where} answered an unexpected shape: {preview(body)}")
    allowed: bool = body["allow"]
    reason = body.get("reason")
    text = f"PDP {'allowed' if allowed else 'denied'}"
    return Decision(
        allowed=allowed, reason=f"{text}: {reason}" if isinstance(reason, str) else text
    )


def _bulk_decisions(body: Any, *, expected: int, where: str) -> list[Decision]:
    items = body.get("allow") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise EngineError(f"{where} answered an unexpected shape: {preview(body)}")
    if len(items) != expected:
        raise EngineError(f"{where} answered {len(items)} decisions for {expected} checks")
    return [_decision(item, where=where) for item in items]
