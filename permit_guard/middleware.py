"""The FastMCP middleware that enforces the guard.

Example::

    from fastmcp import FastMCP
    from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, public, require_permission

    mcp = FastMCP("billing")

    @mcp.tool
    @require_permission()
    def refund(amount: float) -> str:
        return f"refunded {amount}"

    @mcp.tool
    @public
    def health() -> str:
        return "ok"

    mcp.add_middleware(
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_file("policy.yaml"), default_deny=True)
    )

Per request: the method-level bypass, the caller's identity, the component's
spec, one engine call (one ``check_many`` for a whole list), one audit event,
then the call proceeds or is refused with an :class:`AccessDenied` that says
nothing of the policy.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import mcp_types as mt
from fastmcp.exceptions import to_mcp_error
from fastmcp.prompts.base import Prompt, PromptResult
from fastmcp.resources.base import Resource as FastMCPResource
from fastmcp.resources.base import ResourceResult
from fastmcp.resources.template import ResourceTemplate
from fastmcp.server.lifespan import Lifespan, lifespan
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from mcp import MCPError

from permit_guard.audit import AuditSink, DecisionEvent, LoggingSink
from permit_guard.engines.base import PolicyEngine
from permit_guard.exceptions import (
    NOT_FOUND_OR_NOT_AUTHORIZED,
    AccessDenied,
    ConfigurationError,
    EngineError,
)
from permit_guard.identity import IdentityExtractor, identity_from_settings
from permit_guard.mapping import (
    CALL_METHODS,
    LIST_METHOD_KINDS,
    LIST_METHODS,
    InvalidArguments,
    Kind,
    MappingConfig,
    component_request,
    gate_request,
    generic_request,
)
from permit_guard.model import AuthzRequest, Decision, Principal
from permit_guard.registry import (
    Component,
    Resolved,
    component_name,
    find_prompt,
    find_resource,
    find_tool,
    requested_version,
    resolve,
)
from permit_guard.settings import GuardSettings, load_settings

__all__ = [
    "AuthenticationFailed",
    "PermitMcpMiddleware",
    "create_permit_middleware",
    "current_principal",
]

logger = logging.getLogger("permit_guard")

C = TypeVar("C", bound=Component)
T = TypeVar("T")

#: Methods that carry a component: always checked, whatever the bypass list says.
COMPONENT_METHODS = frozenset(CALL_METHODS.values())
#: Handled by the typed hooks; ``on_request`` leaves them alone.
_TYPED_METHODS = COMPONENT_METHODS | frozenset(LIST_METHODS)
#: The protocol handshake: a client that cannot complete it cannot even reach
#: ``@public`` components, so it is let through whatever the bypass list says.
HANDSHAKE_METHODS = frozenset({"initialize", "server/discover"})

_GUARD = "guard"


class AuthenticationFailed(AccessDenied):
    """The caller has no valid credentials (the identity extractor found none)."""

    def __init__(self) -> None:
        super().__init__("Authentication failed: invalid or missing credentials")


_current_principal: ContextVar[Principal | None] = ContextVar(
    "permit_guard_principal", default=None
)


def current_principal() -> Principal | None:
    """The caller the guard allowed the running tool, resource read or prompt for.

    ``None`` outside a guarded call, and in ``@public`` components (which are
    never checked, so nobody was identified). Use it to act on behalf of the
    verified user without verifying the token again::

        @mcp.tool
        @require_permission()
        def whoami() -> str:
            principal = current_principal()
            return principal.key if principal else "anonymous"
    """
    return _current_principal.get()


def create_permit_middleware(**kwargs: Any) -> PermitMcpMiddleware:
    """permit-fastmcp's factory, kept for a one-line migration.

    Takes the same keywords as :class:`PermitMcpMiddleware`::

        mcp.add_middleware(create_permit_middleware(
            permit_pdp_url="http://localhost:7766",
            permit_api_key="permit_key_...",
            enable_audit_logging=True,
            bypass_methods=["initialize", "ping", "health/*"],
        ))
    """
    return PermitMcpMiddleware(**kwargs)


def compile_patterns(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for method patterns where ``*`` matches within one ``/`` segment."""
    parts = ["[^/]*".join(re.escape(chunk) for chunk in p.split("*")) for p in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{part})" for part in parts))


class PermitMcpMiddleware(Middleware):
    """Per-component authorization for a FastMCP server.

    Every keyword left as ``None`` comes from the environment
    (``PERMIT_MCP_<NAME>``, or a ``.env`` file), else its default; see
    :class:`~permit_guard.settings.GuardSettings`.

    Args:
        engine: The policy engine. Default: chosen from the settings — a
            :class:`LocalPolicyEngine` on ``policy_file``, or a
            :class:`PermitPDPEngine` when ``permit_api_key`` is set (one of the
            two, not both).
        policy_file: A local policy file (YAML or JSON) for the embedded engine.
        permit_client: An async ``permit.Permit`` client to check through.
        permit_pdp_url: The PDP's URL (default ``http://localhost:7766``).
        permit_api_key: The Permit.io API key; selects the PDP engine.
        cache_ttl: Seconds to cache decisions (default 0: off).
        default_deny: Hide and deny undecorated components without asking the
            engine (``@public`` ones stay open).
        identity: Who is calling: a callable ``(context) -> Principal | None``.
            Default: from ``identity_mode`` (``fixed`` user ``client``).
        audit_sink: Where decision events go. Default: the
            ``permit_guard.audit`` logger.
        enable_audit_logging: ``False`` silences audit events.
        bypass_methods: Method patterns let through without the method-level
            check (``*`` stays within one ``/`` segment). An empty list means
            no bypass. Never skips a component check.
        settings: A complete :class:`GuardSettings`, instead of reading the
            environment.
        **options: Any other :class:`GuardSettings` field
            (``mcp_server_name``, ``resource_prefix``, ``action_prefix``,
            ``prefix_resource_with_server_name``, ``known_methods``,
            ``identity_mode``, ``identity_fixed_value``, ``identity_header``,
            ``tool_argument_prefix``, ``audit_argument_values``).

    Raises:
        ConfigurationError: On settings that cannot work, at construction.
    """

    def __init__(
        self,
        *,
        engine: PolicyEngine | None = None,
        policy_file: str | None = None,
        permit_client: Any = None,
        permit_pdp_url: str | None = None,
        permit_api_key: str | None = None,
        cache_ttl: float | None = None,
        default_deny: bool | None = None,
        identity: IdentityExtractor | None = None,
        audit_sink: AuditSink | None = None,
        enable_audit_logging: bool | None = None,
        bypass_methods: Sequence[str] | None = None,
        settings: GuardSettings | None = None,
        **options: Any,
    ) -> None:
        keywords = {
            "policy_file": policy_file,
            "permit_pdp_url": permit_pdp_url,
            "permit_api_key": permit_api_key,
            "cache_ttl": cache_ttl,
        }
        if settings is None:
            settings = load_settings(
                **keywords,
                default_deny=default_deny,
                enable_audit_logging=enable_audit_logging,
                bypassed_methods=list(bypass_methods) if bypass_methods is not None else None,
                **options,
            )
        elif (
            any(
                value is not None
                for value in (
                    *keywords.values(),
                    default_deny,
                    enable_audit_logging,
                    bypass_methods,
                )
            )
            or options
        ):
            raise ConfigurationError("pass either settings= or individual settings, not both")
        self.settings = settings
        self.engine = _select_engine(
            engine,
            permit_client,
            settings,
            file_given=policy_file is not None,
            key_given=permit_api_key is not None,
        )
        self.default_deny = settings.default_deny
        self.identity: IdentityExtractor = identity or identity_from_settings(settings)
        self._hooked = (
            type(self)._extract_principal_info is not PermitMcpMiddleware._extract_principal_info
        )
        self.audit_sink: AuditSink | None = (
            (audit_sink or LoggingSink()) if settings.enable_audit_logging else None
        )
        self.mapping = MappingConfig(
            server_name=settings.mcp_server_name,
            resource_prefix=settings.resource_prefix,
            action_prefix=settings.action_prefix,
            prefix_resource_with_server_name=settings.prefix_resource_with_server_name,
            argument_prefix=settings.tool_argument_prefix,
            flatten_arguments=settings.flatten_tool_arguments,
        )
        self._known = frozenset(settings.known_methods)
        self._allow_unknown = settings.unknown_methods == "allow"
        for pattern in settings.bypassed_methods:
            compiled = compile_patterns([pattern])
            hits = sorted(m for m in COMPONENT_METHODS if compiled and compiled.fullmatch(m))
            if hits:
                raise ConfigurationError(
                    f"bypassed_methods: {pattern!r} matches {', '.join(hits)}; calls, reads "
                    "and prompt renders are always checked and cannot be bypassed"
                )
        self._bypass = compile_patterns(settings.bypassed_methods)
        self._engine_name = getattr(self.engine, "name", type(self.engine).__name__)

    async def aclose(self) -> None:
        """Close the engine's connections (a no-op for the embedded engine)."""
        close = getattr(self.engine, "aclose", None)
        if close is not None:
            await close()

    @property
    def lifespan(self) -> Lifespan:
        """A FastMCP lifespan that closes the engine when the server stops.

        ``FastMCP("name", lifespan=guard.lifespan)``, or combined with your own
        (``my_lifespan | guard.lifespan``, see ``fastmcp.server.lifespan``).
        """
        guard = self

        @lifespan
        async def close_guard(server: Any) -> AsyncIterator[dict[str, Any]]:
            try:
                yield {}
            finally:
                await guard.aclose()

        return close_guard

    # ------------------------------------------------------------------ hooks

    async def on_request(
        self,
        context: MiddlewareContext[mt.Request[Any, Any]],
        call_next: CallNext[mt.Request[Any, Any], Any],
    ) -> Any:
        """Method-level check of requests that carry no component."""
        method = context.method or ""
        if method in _TYPED_METHODS or method in HANDSHAKE_METHODS or self._bypassed(method):
            return await call_next(context)
        if method not in self._known:
            if self._allow_unknown:
                return await call_next(context)
            self._audit(
                DecisionEvent(
                    allowed=False,
                    user=None,
                    method=method,
                    reason="method is neither known nor bypassed",
                    engine=_GUARD,
                )
            )
            raise _on_wire(AccessDenied(f"Method {method!r} is not allowed", component=method))
        principal = await self._identify(context)
        if principal is None:
            self._audit_unauthenticated(method, None)
            raise _on_wire(AuthenticationFailed())
        request = generic_request(method, principal, self.mapping)
        decision = await self._check(request, method=method, component=None)
        if not decision.allowed:
            raise _on_wire(AccessDenied(f"Method {method!r} is not allowed", component=method))
        return await call_next(context)

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        """Check a tool call with its arguments."""
        message = context.message
        server = _server_of(context)
        version = requested_version(message.meta)
        tool = await _lookup(find_tool, server, message.name, version)
        principal = await self._enforce(
            context,
            kind="tool",
            name=message.name,
            method="tools/call",
            component=tool,
            arguments=message.arguments or {},
        )
        token = _current_principal.set(principal)
        try:
            return await call_next(context)
        finally:
            _current_principal.reset(token)

    async def check_resource_access(
        self, context: MiddlewareContext[mt.ReadResourceRequestParams]
    ) -> None:
        """Check a resource read (static or templated URI)."""
        await self._check_read(context)

    async def _check_read(
        self, context: MiddlewareContext[mt.ReadResourceRequestParams]
    ) -> Principal | None:
        """The read check; the caller allowed (``None`` for a public resource)."""
        uri = str(context.message.uri)
        server = _server_of(context)
        version = requested_version(context.message.meta)
        found = await _lookup(find_resource, server, uri, version)
        component, params = found if found is not None else (None, {})
        return await self._enforce(
            context,
            kind="template" if isinstance(component, ResourceTemplate) else "resource",
            name=uri,
            method="resources/read",
            component=component,
            arguments=params,
        )

    async def on_read_resource(
        self,
        context: MiddlewareContext[mt.ReadResourceRequestParams],
        call_next: CallNext[mt.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        """Check a read (through :meth:`check_resource_access`), then read."""
        if type(self).check_resource_access is not PermitMcpMiddleware.check_resource_access:
            # A subclass hook: honour it; the caller is then not known here.
            await self.check_resource_access(context)
            principal = None
        else:
            principal = await self._check_read(context)
        token = _current_principal.set(principal)
        try:
            return await call_next(context)
        finally:
            _current_principal.reset(token)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        """Check a prompt render with its arguments."""
        message = context.message
        server = _server_of(context)
        version = requested_version(message.meta)
        prompt = await _lookup(find_prompt, server, message.name, version)
        principal = await self._enforce(
            context,
            kind="prompt",
            name=message.name,
            method="prompts/get",
            component=prompt,
            arguments=message.arguments or {},
        )
        token = _current_principal.set(principal)
        try:
            return await call_next(context)
        finally:
            _current_principal.reset(token)

    async def on_list_tools(
        self,
        context: MiddlewareContext[mt.ListToolsRequest],
        call_next: CallNext[mt.ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        """Filter tools/list down to the tools the caller may call."""
        return await self._filter(context, "tools/list", await call_next(context))

    async def on_list_resources(
        self,
        context: MiddlewareContext[mt.ListResourcesRequest],
        call_next: CallNext[mt.ListResourcesRequest, Sequence[FastMCPResource]],
    ) -> Sequence[FastMCPResource]:
        """Filter resources/list down to the resources the caller may read."""
        return await self._filter(context, "resources/list", await call_next(context))

    async def on_list_resource_templates(
        self,
        context: MiddlewareContext[mt.ListResourceTemplatesRequest],
        call_next: CallNext[mt.ListResourceTemplatesRequest, Sequence[ResourceTemplate]],
    ) -> Sequence[ResourceTemplate]:
        """Filter resources/templates/list down to the templates the caller may read."""
        return await self._filter(context, "resources/templates/list", await call_next(context))

    async def on_list_prompts(
        self,
        context: MiddlewareContext[mt.ListPromptsRequest],
        call_next: CallNext[mt.ListPromptsRequest, Sequence[Prompt]],
    ) -> Sequence[Prompt]:
        """Filter prompts/list down to the prompts the caller may render."""
        return await self._filter(context, "prompts/list", await call_next(context))

    # ------------------------------------------------------------ enforcement

    async def _enforce(
        self,
        context: MiddlewareContext[Any],
        *,
        kind: Kind,
        name: str,
        method: str,
        component: Component | None,
        arguments: Mapping[str, Any],
    ) -> Principal | None:
        """Allow (returning the caller; ``None`` for public components) or raise."""
        resolved = await self._resolve(component, name) if component is not None else None
        spec = resolved.spec if resolved is not None else None
        if spec is not None and spec.is_public:
            if self._wants(True):
                self._audit(
                    DecisionEvent(
                        allowed=True,
                        user=None,
                        method=method,
                        component=name,
                        reason="public component",
                        engine=_GUARD,
                    )
                )
            return None
        # Identity comes before existence, so a caller without credentials
        # learns nothing about which components exist.
        principal = await self._identify(context)
        if principal is None:
            self._audit_unauthenticated(method, name)
            raise AuthenticationFailed()
        refusal = self._refusal(method, component, resolved)
        if refusal is not None:
            self._deny_without_engine(principal, method, name, refusal)
            raise _denied(kind, name)
        assert resolved is not None  # _refusal covers a missing component
        try:
            request = component_request(
                kind=kind,
                name=name,
                method=method,
                principal=principal,
                spec=spec,
                config=self.mapping,
                arguments=arguments,
                binder=resolved.binder,
            )
        except InvalidArguments as exc:
            self._deny_without_engine(principal, method, name, str(exc))
            raise _denied(kind, name) from None
        decision = await self._check(request, method=method, component=name)
        if decision.allowed is not True:
            raise _denied(kind, name)
        return principal

    def _refusal(
        self, method: str, component: Component | None, resolved: Resolved | None
    ) -> str | None:
        """Why a component request is denied without asking the engine, if it is."""
        if method not in self._known and not self._allow_unknown:
            return f"{method} is not in known_methods"
        if component is None or resolved is None:
            return "unknown component"
        if resolved.spec is None or not resolved.spec.is_declared:
            if self.default_deny:
                return "undecorated under default deny"
        elif not resolved.arguments_mappable:
            return (
                "a transformed tool of a decorated function whose requirement reads "
                "arguments: the transform may change them, so they cannot be checked"
            )
        return None

    async def _resolve(self, component: Component, name: str) -> Resolved | None:
        """The component's spec; ``None`` (treated as unknown) when it cannot be found."""
        try:
            return await resolve(component)
        except Exception as exc:
            # Fail closed: a spec we cannot find might have denied.
            logger.error("cannot resolve the guard spec of %r: %s", name, exc)
            return None

    async def _check(
        self, request: AuthzRequest, *, method: str, component: str | None
    ) -> Decision:
        """One engine call; any failure is a denial (fail closed)."""
        started = time.perf_counter()
        try:
            decision = await self.engine.check(request)
            _check_decision(decision)
        except Exception as exc:
            # Fail closed: the cause goes to the log, never to the client.
            logger.error("policy engine %s failed; denying: %s", self._engine_name, exc)
            decision = Decision(allowed=False, reason=f"engine failure: {exc}")
        self._audit_request(request, decision, method, component, started)
        return decision

    async def _filter(
        self, context: MiddlewareContext[Any], method: str, items: Sequence[C]
    ) -> Sequence[C]:
        """Keep the items the caller may use: the gate and every item in ONE ``check_many``."""
        started = time.perf_counter()
        kind: Kind = LIST_METHOD_KINDS[method]
        resolved = [await self._resolve(item, component_name(item)) for item in items]
        public = [
            item
            for item, found in zip(items, resolved, strict=True)
            if found is not None and _is_public(found.spec)
        ]
        principal = await self._identify(context)
        if principal is None:
            self._audit_list(method, None, items, public, started, "no valid credentials")
            return public
        if method not in self._known and not self._allow_unknown:
            self._audit_list(method, principal, items, public, started, "not in known_methods")
            return public

        requests: list[AuthzRequest] = []
        if not self._bypassed(method):
            requests.append(gate_request(method, principal, self.mapping))
        gate_count = len(requests)
        asked: dict[int, int] = {}  # position in items -> position in requests
        for position, (item, found) in enumerate(zip(items, resolved, strict=True)):
            if found is None or _is_public(found.spec):
                continue
            if self._refusal(method, item, found) is not None:
                continue
            try:
                request = component_request(
                    kind=_item_kind(kind, item),
                    name=component_name(item),
                    method=method,
                    principal=principal,
                    spec=found.spec,
                    config=self.mapping,
                )
            except InvalidArguments:
                continue
            asked[position] = len(requests)
            requests.append(request)

        if not requests:
            self._audit_list(method, principal, items, public, started, "nothing to ask")
            return public
        try:
            decisions = await self.engine.check_many(requests)
            if not isinstance(decisions, list) or len(decisions) != len(requests):
                raise EngineError(
                    f"check_many answered {len(decisions)} decisions for {len(requests)} requests"
                )
            for decision in decisions:
                _check_decision(decision)
        except Exception as exc:
            # Fail closed, but keep @public components reachable (a login tool).
            logger.error(
                "policy engine %s failed on %s; listing public only: %s",
                self._engine_name,
                method,
                exc,
            )
            self._audit_list(method, principal, items, public, started, f"engine failure: {exc}")
            return public
        if gate_count and decisions[0].allowed is not True:
            self._audit_list(
                method, principal, items, public, started, f"gate denied: {decisions[0].reason}"
            )
            return public
        kept = [
            item
            for position, (item, found) in enumerate(zip(items, resolved, strict=True))
            if (found is not None and _is_public(found.spec))
            or (position in asked and decisions[asked[position]].allowed is True)
        ]
        self._audit_list(method, principal, items, kept, started, "filtered")
        return kept

    def _extract_principal_info(
        self, context: MiddlewareContext[Any]
    ) -> tuple[str | None, dict[str, Any]] | Awaitable[tuple[str | None, dict[str, Any]]]:
        """Subclass hook of permit-fastmcp: ``(user_key, attributes)`` for this request.

        Override it to compute the caller yourself; it is called exactly once
        per request, and a ``None`` user key means no valid credentials. The
        default is never called: the guard uses its ``identity`` extractor.
        """
        raise NotImplementedError

    async def _identify(self, context: MiddlewareContext[Any]) -> Principal | None:
        """The caller, or ``None`` without valid credentials (an extractor error included)."""
        try:
            if self._hooked:
                return await self._principal_from_hook(context)
            principal = self.identity(context)
            if inspect.isawaitable(principal):
                principal = await principal
        except Exception as exc:
            # Fail closed: an extractor that breaks authenticates nobody.
            logger.error("identity extractor %r failed: %s", self.identity, exc)
            return None
        if principal is not None and not isinstance(principal, Principal):
            logger.error(
                "identity extractor %r returned %r, not a Principal",
                self.identity,
                type(principal).__name__,
            )
            return None
        return principal

    async def _principal_from_hook(self, context: MiddlewareContext[Any]) -> Principal | None:
        info = self._extract_principal_info(context)
        if inspect.isawaitable(info):
            info = await info
        if not isinstance(info, tuple) or len(info) != 2:
            raise TypeError(
                f"_extract_principal_info returned {info!r}, not (user_key, attributes)"
            )
        key, attributes = info
        if key is None:
            return None
        if not isinstance(key, str) or not key:
            raise TypeError(f"_extract_principal_info returned user key {key!r}")
        return Principal(key=key, attributes=dict(attributes or {}))

    def _bypassed(self, method: str) -> bool:
        return self._bypass is not None and self._bypass.fullmatch(method) is not None

    # ------------------------------------------------------------------ audit

    def _wants(self, allowed: bool) -> bool:
        """Whether an event with this outcome would be recorded (skip building it if not)."""
        if self.audit_sink is None:
            return False
        enabled_for = getattr(self.audit_sink, "enabled_for", None)
        return enabled_for is None or bool(enabled_for(allowed))

    def _audit(self, event: DecisionEvent) -> None:
        if self.audit_sink is None:
            return
        try:
            self.audit_sink(event)
        except Exception:
            logger.exception("audit sink %r failed", self.audit_sink)

    def _audit_request(
        self,
        request: AuthzRequest,
        decision: Decision,
        method: str,
        component: str | None,
        started: float,
    ) -> None:
        if not self._wants(decision.allowed):
            return
        attributes = request.resource.attributes
        self._audit(
            DecisionEvent(
                allowed=decision.allowed,
                user=request.user.key,
                tenant=request.resource.tenant,
                method=method,
                component=component,
                resource_type=request.resource.type,
                resource_key=request.resource.key,
                action=request.action,
                attributes=tuple(attributes),
                reason=decision.reason,
                engine=self._engine_name,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                attribute_values=dict(attributes) if self.settings.audit_argument_values else None,
                cached=decision.cached,
            )
        )

    def _deny_without_engine(
        self, principal: Principal, method: str, component: str, reason: str
    ) -> None:
        self._audit(
            DecisionEvent(
                allowed=False,
                user=principal.key,
                tenant=principal.tenant,
                method=method,
                component=component,
                reason=reason,
                engine=_GUARD,
            )
        )

    def _audit_unauthenticated(self, method: str, component: str | None) -> None:
        self._audit(
            DecisionEvent(
                allowed=False,
                user=None,
                method=method,
                component=component,
                reason="no valid credentials",
                engine=_GUARD,
            )
        )

    def _audit_list(
        self,
        method: str,
        principal: Principal | None,
        items: Sequence[Any],
        kept: Sequence[Any],
        started: float,
        reason: str,
    ) -> None:
        self._audit(
            DecisionEvent(
                allowed=bool(kept),
                user=principal.key if principal else None,
                tenant=principal.tenant if principal else None,
                method=method,
                reason=reason,
                engine=self._engine_name,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                listed=len(kept),
                hidden=len(items) - len(kept),
            )
        )


_NOUNS: Mapping[str, str] = {
    "tool": "tool",
    "resource": "resource",
    "template": "resource",
    "prompt": "prompt",
}


def _denied(kind: Kind, name: str) -> AccessDenied:
    """The one answer for denied, hidden and unknown components alike."""
    return AccessDenied(
        f"Authorization failed for {_NOUNS[kind]} {name!r}: {NOT_FOUND_OR_NOT_AUTHORIZED}",
        component=name,
    )


def _check_decision(decision: object) -> None:
    """An answer that is not a Decision with a real bool is an engine failure, not an allow."""
    if not isinstance(decision, Decision) or not isinstance(decision.allowed, bool):
        raise EngineError(f"engine answered {decision!r}, not a Decision")


def _is_public(spec: Any) -> bool:
    return spec is not None and bool(spec.is_public)


def _item_kind(kind: Kind, item: Any) -> Kind:
    return "template" if isinstance(item, ResourceTemplate) else kind


def _on_wire(denial: AccessDenied) -> MCPError:
    """A denial as the MCP error it must be for its message to reach the client.

    Outside the component handlers FastMCP masks every exception but
    ``MCPError`` as "Internal server error".
    """
    error = to_mcp_error(denial)
    error.__cause__ = denial
    return error


async def _lookup(
    find: Callable[..., Awaitable[T]], server: Any, name: str, version: Any
) -> T | None:
    """FastMCP's component lookup; a failure counts as unknown (denied), never as a crash."""
    if server is None:
        return None
    try:
        return await find(server, name, version)
    except Exception as exc:
        logger.error("looking up %r failed; treating it as unknown: %s", name, exc)
        return None


def _server_of(context: MiddlewareContext[Any]) -> Any:
    fastmcp_context = context.fastmcp_context
    return fastmcp_context.fastmcp if fastmcp_context is not None else None


def _select_engine(
    engine: PolicyEngine | None,
    permit_client: Any,
    settings: GuardSettings,
    *,
    file_given: bool,
    key_given: bool,
) -> PolicyEngine:
    """The engine the arguments and settings name; exactly one must be named.

    An explicit engine or client wins; otherwise a keyword choice wins over the
    environment's, and two choices at the same level are an error.
    """
    from permit_guard.engines.cache import CachedEngine
    from permit_guard.engines.local import LocalPolicyEngine
    from permit_guard.engines.permit import PermitPDPEngine

    chosen: PolicyEngine
    if engine is not None or permit_client is not None:
        clashes = [
            name
            for name, given in (
                ("engine", engine is not None),
                ("permit_client", permit_client is not None),
                ("policy_file", file_given),
                ("permit_api_key", key_given),
            )
            if given
        ]
        if len(clashes) > 1:
            raise ConfigurationError(
                f"choose one policy engine: {' and '.join(clashes)} were both given"
            )
        chosen = (
            engine
            if engine is not None
            else PermitPDPEngine.from_permit(
                permit_client, bulk_chunk_size=settings.pdp_bulk_chunk_size
            )
        )
    else:
        policy_file = settings.policy_file
        api_key = settings.permit_api_key.get_secret_value()
        if file_given != key_given:
            # A keyword choice wins over the environment's other choice.
            policy_file, api_key = (policy_file, "") if file_given else (None, api_key)
        if policy_file is not None and api_key:
            raise ConfigurationError(
                "choose one policy engine: both a policy file (PERMIT_MCP_POLICY_FILE) and a "
                "Permit.io API key (PERMIT_MCP_PERMIT_API_KEY) are set"
            )
        if policy_file is not None:
            chosen = LocalPolicyEngine.from_file(policy_file)
        elif api_key:
            chosen = PermitPDPEngine(
                settings.permit_pdp_url,
                api_key,
                timeout=settings.pdp_timeout,
                bulk_chunk_size=settings.pdp_bulk_chunk_size,
            )
        else:
            raise ConfigurationError(
                "no policy engine: pass engine=..., a policy file (policy_file=... or "
                "PERMIT_MCP_POLICY_FILE) or a Permit.io API key (permit_api_key=... or "
                "PERMIT_MCP_PERMIT_API_KEY)"
            )
    if settings.cache_ttl > 0:
        return CachedEngine(chosen, ttl=settings.cache_ttl, max_size=settings.cache_max_size)
    return chosen
