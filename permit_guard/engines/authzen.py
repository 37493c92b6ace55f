"""Any OpenID AuthZEN Authorization API 1.0 decision point as a policy engine.

Example::

    from fastmcp import FastMCP
    from permit_guard import AuthZENEngine, PermitMcpMiddleware

    # Permit.io's PDP serves AuthZEN next to its own API, behind the same key.
    engine = AuthZENEngine("http://localhost:7766", token="permit_key_...")
    guard = PermitMcpMiddleware(engine=engine)
    mcp = FastMCP("billing", lifespan=guard.lifespan)   # closes the pool on shutdown
    mcp.add_middleware(guard)

- One request is ``POST /access/v1/evaluation``; a list is ONE ``POST
  /access/v1/evaluations`` (split only above ``batch_size``), with the
  subject, action and context shared by every item sent once as defaults.
- The endpoints come from ``GET /.well-known/authzen-configuration`` on first
  use, when the PDP publishes it and it names this PDP; else the spec's
  default paths under ``url``.
- A request maps to ``subject`` (``{"type": "user", "id": user key,
  "properties": user attributes}``), ``action`` (``{"name": action}``),
  ``resource`` (``{"type", "id": key, "properties": attributes plus
  "tenant"}``, the tenant where Permit's PDP reads it) and ``context``.
- Pooled keep-alive connections, a timeout on every request, and strict
  reading: anything but a 200 whose body is ``{"decision": <boolean>}`` (an
  ``evaluations`` array of exactly one such decision per item for a list) is
  an :class:`EngineError`, which the guard turns into a denial.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self, TypeGuard
from urllib.parse import urlsplit

import aiohttp

from permit_guard.engines._pool import Answer, SessionPool, preview, read_json, send
from permit_guard.exceptions import ConfigurationError, EngineError
from permit_guard.model import AuthzRequest, Decision

__all__ = ["AuthZENEndpoints", "AuthZENEngine"]

logger = logging.getLogger("permit_guard.engines.authzen")

EVALUATION_PATH: Final = "/access/v1/evaluation"
EVALUATIONS_PATH: Final = "/access/v1/evaluations"
WELL_KNOWN_PATH: Final = "/.well-known/authzen-configuration"
# Statuses that mean "this PDP publishes no metadata": use the default paths.
_NO_METADATA: Final = frozenset({404, 405, 501})
# Shared by every item of a list when equal, so sent once (the spec's defaults).
_DEFAULTS: Final = ("subject", "action", "context")


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthZENEndpoints:
    """Where an :class:`AuthZENEngine` sends its requests.

    Attributes:
        evaluation: The Access Evaluation endpoint's URL.
        evaluations: The Access Evaluations (batch) endpoint's URL; ``None``
            when the PDP's metadata advertises none, and lists are then sent
            as concurrent single evaluations.
        discovered: Whether they came from the PDP's metadata.
    """

    evaluation: str
    evaluations: str | None
    discovered: bool


class AuthZENEngine:
    """Decides by asking an AuthZEN Authorization API 1.0 PDP over HTTP.

    Args:
        url: The PDP's base URL, its identifier in AuthZEN terms
            (``PERMIT_MCP_AUTHZEN_URL``); for Permit's PDP,
            ``http://localhost:7766``.
        token: Sent as ``Authorization: Bearer <token>``
            (``PERMIT_MCP_AUTHZEN_TOKEN``); Permit's PDP takes its
            environment API key. Empty: no ``Authorization`` header.
        headers: Other headers for every request (another authentication
            scheme, say).
        timeout: Seconds to wait for one answer (``PERMIT_MCP_PDP_TIMEOUT``);
            the first check also waits for the discovery request.
        discovery: Read ``/.well-known/authzen-configuration`` for the
            endpoints; ``False`` uses the default paths under ``url``.
        subject_type: The ``subject.type`` of every request.
        batch_size: Largest number of evaluations in one batch request
            (``PERMIT_MCP_PDP_BULK_CHUNK_SIZE``); longer lists are split.
        max_connections: Size of the connection pool.

    Raises:
        ConfigurationError: On a URL that is not http(s) or has a query or
            fragment, a non-positive timeout, batch size or pool size, an
            empty subject type, or an ``Authorization`` header given both
            ways.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        discovery: bool = True,
        subject_type: str = "user",
        batch_size: int = 10_000,
        max_connections: int = 20,
    ) -> None:
        self.url = _base_url(url)
        if not timeout or timeout <= 0:
            raise ConfigurationError(f"AuthZEN timeout must be positive, got {timeout!r}")
        if batch_size < 1 or max_connections < 1:
            raise ConfigurationError("batch_size and max_connections must be at least 1")
        if not isinstance(subject_type, str) or not subject_type:
            raise ConfigurationError(
                f"subject_type must be a non-empty string, got {subject_type!r}"
            )
        sent = {"Content-Type": "application/json", **dict(headers or {})}
        if token.strip():
            if any(name.lower() == "authorization" for name in sent):
                raise ConfigurationError(
                    "AuthZENEngine got both token= and an Authorization header: give one"
                )
            sent["Authorization"] = f"Bearer {token.strip()}"
        self.timeout = float(timeout)
        self.discovery = discovery
        self.subject_type = subject_type
        self.batch_size = batch_size
        self._pool = SessionPool(
            headers=sent, timeout=self.timeout, max_connections=max_connections
        )
        self._endpoints: AuthZENEndpoints | None = None
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def name(self) -> str:
        """``authzen``."""
        return "authzen"

    def __repr__(self) -> str:
        return f"AuthZENEngine(url={self.url!r}, discovery={self.discovery})"

    # ------------------------------------------------------------- endpoints

    async def endpoints(self) -> AuthZENEndpoints:
        """The endpoints, discovered on first use and kept for the engine's life.

        Raises:
            EngineError: When the metadata request fails in transport or
                answers an error other than "none published"; the next call
                tries again.
        """
        if self._endpoints is None:
            loop = asyncio.get_running_loop()
            lock = self._locks.get(loop)
            if lock is None:
                lock = self._locks[loop] = asyncio.Lock()
            async with lock:
                if self._endpoints is None:
                    self._endpoints = await self._discover()
        return self._endpoints

    def _defaults(self) -> AuthZENEndpoints:
        return AuthZENEndpoints(
            evaluation=self.url + EVALUATION_PATH,
            evaluations=self.url + EVALUATIONS_PATH,
            discovered=False,
        )

    async def _discover(self) -> AuthZENEndpoints:
        if not self.discovery:
            return self._defaults()
        # The well-known segment goes between the host and the path (RFC 8615).
        parts = urlsplit(self.url)
        where = f"AuthZEN PDP at {self.url!r} ({WELL_KNOWN_PATH})"
        metadata_url = f"{parts.scheme}://{parts.netloc}{WELL_KNOWN_PATH}{parts.path}"
        answer = await send(self._pool, "GET", metadata_url, where=where)
        if answer.status in _NO_METADATA:
            return self._defaults()
        if answer.status != 200:
            skip = "" if answer.status in (401, 403) else "; discovery=False skips the metadata"
            raise EngineError(f"{where} answered HTTP {answer.status}{_status_hint(answer)}{skip}")
        problem, endpoints = self._read_metadata(answer)
        if endpoints is None:
            # The spec: metadata that does not name this PDP MUST NOT be used.
            logger.warning(
                "%s: %s; using the default paths under %s (discovery=False skips the metadata)",
                where,
                problem,
                self.url,
            )
            return self._defaults()
        return endpoints

    def _read_metadata(self, answer: Answer) -> tuple[str, AuthZENEndpoints | None]:
        try:
            body = json.loads(answer.raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return f"the metadata is not JSON ({answer.content_type})", None
        if not isinstance(body, dict):
            return f"the metadata is not an object: {preview(body)}", None
        named = body.get("policy_decision_point")
        if not isinstance(named, str) or named.rstrip("/") != self.url:
            return f"the metadata names another PDP ({named!r})", None
        evaluation = body.get("access_evaluation_endpoint")
        if not self._acceptable(evaluation):
            return f"access_evaluation_endpoint is not a usable URL: {evaluation!r}", None
        # No batch endpoint advertised: the PDP does not batch, lists go one by one.
        batch = body.get("access_evaluations_endpoint")
        if batch is not None and not self._acceptable(batch):
            return f"access_evaluations_endpoint is not a usable URL: {batch!r}", None
        return "", AuthZENEndpoints(evaluation=evaluation, evaluations=batch, discovered=True)

    def _acceptable(self, value: object) -> TypeGuard[str]:
        """An absolute http(s) URL, and https when the PDP is (no downgrade)."""
        if not isinstance(value, str):
            return False
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
            return False
        return parts.scheme == "https" or not self.url.startswith("https:")

    # ---------------------------------------------------------------- checks

    async def check(self, request: AuthzRequest) -> Decision:
        """Decide one request with one Access Evaluation request.

        Raises:
            EngineError: On any failure; the guard then denies.
        """
        endpoints = await self.endpoints()
        body = await self._post(endpoints.evaluation, self._evaluation(request))
        return _decision(body, where=self._where(endpoints.evaluation))

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        """Decide many requests with one Access Evaluations request per batch.

        Raises:
            EngineError: On any failure, including an answer with more or
                fewer decisions than requests; no partial answer is returned.
        """
        if not requests:
            return []
        endpoints = await self.endpoints()
        if endpoints.evaluations is None:
            return list(await asyncio.gather(*(self.check(r) for r in requests)))
        where = self._where(endpoints.evaluations)
        decisions: list[Decision] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start : start + self.batch_size]
            body = await self._post(endpoints.evaluations, self._batch(chunk))
            decisions.extend(_batch_decisions(body, expected=len(chunk), where=where))
        return decisions

    # ------------------------------------------------------------ the wire

    def _evaluation(self, request: AuthzRequest) -> dict[str, Any]:
        """The request as an AuthZEN Access Evaluation request."""
        subject: dict[str, Any] = {"type": self.subject_type, "id": request.user.key}
        if request.user.attributes:
            subject["properties"] = dict(request.user.attributes)
        tenant = request.resource.tenant
        properties = dict(request.resource.attributes)
        if properties.get("tenant", tenant) != tenant:
            # Permit's PDP reads resource.properties.tenant as the tenant: an
            # attribute of that name would silently change where it decides.
            raise EngineError(
                f"{self._where(EVALUATION_PATH)}: resource attribute 'tenant' "
                f"({properties['tenant']!r}) differs from the request's tenant ({tenant!r}); "
                "AuthZEN carries the tenant in resource.properties.tenant"
            )
        properties["tenant"] = tenant
        resource: dict[str, Any] = {"type": request.resource.type}
        if request.resource.key is not None:
            resource["id"] = request.resource.key
        resource["properties"] = properties
        evaluation: dict[str, Any] = {
            "subject": subject,
            "action": {"name": request.action},
            "resource": resource,
        }
        if request.context:
            evaluation["context"] = dict(request.context)
        return evaluation

    def _batch(self, requests: Sequence[AuthzRequest]) -> dict[str, Any]:
        """An Access Evaluations request, with what every item shares sent once."""
        items = [self._evaluation(r) for r in requests]
        body: dict[str, Any] = {}
        for key in _DEFAULTS:
            first = items[0].get(key)
            if first is not None and all(item.get(key) == first for item in items):
                body[key] = first
                for item in items:
                    del item[key]
        body["evaluations"] = items
        # The default, said outright: a short-circuiting answer would be short.
        body["options"] = {"evaluations_semantic": "execute_all"}
        return body

    def _where(self, endpoint: str) -> str:
        path = urlsplit(endpoint).path or "/"
        return f"AuthZEN PDP at {self.url!r} ({path})"

    async def _post(self, endpoint: str, payload: dict[str, Any]) -> Any:
        where = self._where(endpoint)
        answer = await send(self._pool, "POST", endpoint, where=where, payload=payload)
        if answer.status != 200:
            raise EngineError(f"{where} answered HTTP {answer.status}{_status_hint(answer)}")
        return read_json(answer, where=where)

    # ------------------------------------------------------------ lifecycle

    @property
    def _http(self) -> aiohttp.ClientSession | None:
        """The running loop's session, if it has one (for tests and inspection)."""
        return self._pool.current

    async def aclose(self) -> None:
        """Close the connection pools: this loop's here, other live loops' on their loop."""
        await self._pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _base_url(url: object) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"AuthZEN PDP URL must be a string, got {url!r}")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"AuthZEN PDP URL must start with http:// or https:// and name a host, got {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"AuthZEN PDP URL must have no query or fragment, got {url!r}")
    return url.strip().rstrip("/")


def _status_hint(answer: Answer) -> str:
    if answer.status in (401, 403):
        return ": the PDP refused the credentials (check PERMIT_MCP_AUTHZEN_TOKEN)"
    # AuthZEN error bodies are plain strings; show the start of one.
    text = " ".join(answer.raw[:400].decode("utf-8", "replace").split())
    return f" ({text[:200]})" if text else ""


def _decision(body: Any, *, where: str) -> Decision:
    """One AuthZEN decision, read strictly: ``decision`` must be a real boolean."""
    if not isinstance(body, dict) or not isinstance(body.get("decision"), bool):
        raise EngineError(f"{where} answered an unexpected shape: {preview(body)}")
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise EngineError(f"{where} answered a context that is not an object: {preview(body)}")
    allowed: bool = body["decision"]
    context = context or {}
    if allowed and "error" in context:
        # An allow that reports an error is no allow to act on.
        raise EngineError(f"{where} answered an allow with an error: {preview(body)}")
    text = f"AuthZEN PDP {'allowed' if allowed else 'denied'}"
    reason = context.get("reason")
    if isinstance(reason, str):
        return Decision(allowed=allowed, reason=f"{text}: {reason}")
    if "error" in context:
        return Decision(allowed=False, reason=f"{text}: error {preview(context['error'])}")
    return Decision(allowed=allowed, reason=text)


def _batch_decisions(body: Any, *, expected: int, where: str) -> list[Decision]:
    items = body.get("evaluations") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise EngineError(f"{where} answered an unexpected shape: {preview(body)}")
    if len(items) != expected:
        raise EngineError(f"{where} answered {len(items)} decisions for {expected} evaluations")
    return [_decision(item, where=where) for item in items]
