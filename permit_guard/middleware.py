"""The FastMCP middleware that enforces the guard.

Example::

    mcp = FastMCP("billing")  # its tools decorated with @require_permission, @public...
    PermitMcpMiddleware(engine=LocalPolicyEngine.from_file("policy.yaml")).attach(mcp)

Each hook finds the component(s) of the request and asks the decision core
(:class:`~permit_guard.guard.Guard`) for a verdict: the caller's identity, the
component's spec, one engine call (one ``check_many`` for a whole list), one
audit event. Then the call proceeds, the list keeps what the caller may use, or
the request is refused with an :class:`AccessDenied` that says nothing of the
policy (:class:`~permit_guard.enforcement.Enforcement`; in shadow mode, logged).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.prompts.base import Prompt, PromptResult
from fastmcp.resources.base import Resource as FastMCPResource
from fastmcp.resources.base import ResourceResult
from fastmcp.resources.template import ResourceTemplate
from fastmcp.server.lifespan import Lifespan, lifespan
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult

from permit_guard.audit import AuditSink
from permit_guard.caller import Identify, acting_as, current_principal, from_hook, identify
from permit_guard.completion import complete
from permit_guard.components.lookup import (
    Component,
    Target,
    requested_version,
    server_of,
    target,
)
from permit_guard.enforcement import Enforcement
from permit_guard.engines.base import PolicyEngine, close_engine
from permit_guard.engines.factory import engine_from_settings
from permit_guard.exceptions import AuthenticationFailed
from permit_guard.guard import Guard
from permit_guard.headers import check_mcp_param_headers
from permit_guard.identity.factory import IdentityExtractor, identity_for
from permit_guard.mapping import MappingConfig
from permit_guard.methods import LIST_METHOD_KINDS, REFERENCE_METHODS, TYPED_METHODS
from permit_guard.model import Principal
from permit_guard.placement import (
    claim,
    refuse_unbound_task,
    take_over,
    take_over_or_refuse,
    tasks_bound,
)
from permit_guard.settings import GuardSettings, settings_for
from permit_guard.telemetry import Telemetry

__all__ = [
    "AuthenticationFailed",
    "PermitMcpMiddleware",
    "create_permit_middleware",
    "current_principal",
]

logger = logging.getLogger("permit_guard")

C = TypeVar("C", bound=Component)


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


class PermitMcpMiddleware(Middleware):
    """Per-component authorization for a FastMCP server.

    Every keyword left as ``None`` comes from the environment
    (``PERMIT_MCP_<NAME>``, or a ``.env`` file), else its default; see
    :class:`~permit_guard.settings.GuardSettings`.

    Args:
        engine: The policy engine. Default: from the settings, exactly one of a
            :class:`LocalPolicyEngine` on ``policy_file``, a :class:`PermitPDPEngine`
            on ``permit_api_key``, an :class:`AuthZENEngine` on ``authzen_url``.
        policy_file: A local policy file (YAML or JSON) for the embedded engine.
        permit_client: An async ``permit.Permit`` client to check through.
        permit_pdp_url: The PDP's URL (default ``http://localhost:7766``).
        permit_api_key: The Permit.io API key; selects the PDP engine.
        cache_ttl: Seconds to cache decisions (default 0: off).
        default_deny: Hide and deny undecorated components without asking the
            engine (``@public`` ones stay open).
        enforce: ``False`` for shadow mode: decide and audit, but log what the
            policy denies instead of refusing it (:mod:`permit_guard.enforcement`).
        identity: Who is calling: a callable ``(context) -> Principal | None``.
            Default: from ``identity_mode`` (``fixed`` user ``client``).
        audit_sink: Where decision events go. Default: a :class:`DecisionLogSink`
            on ``decision_log_file``, else the ``permit_guard.audit`` logger.
        telemetry: OpenTelemetry spans and metrics (default: from the settings).
        enable_audit_logging: ``False`` silences audit events.
        bypass_methods: Method patterns let through without the method-level
            check (``*`` stays within one ``/`` segment). An empty list means
            no bypass. Never skips a component check.
        settings: A complete :class:`GuardSettings`, instead of reading the environment.
        **options: Any other :class:`GuardSettings` field (``mcp_server_name``,
            ``known_methods``, ``identity_mode``, ``audit_argument_values``...;
            all are listed in ``docs/guide.md``).

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
        enforce: bool | None = None,
        identity: IdentityExtractor | None = None,
        audit_sink: AuditSink | None = None,
        telemetry: Telemetry | None = None,
        enable_audit_logging: bool | None = None,
        bypass_methods: Sequence[str] | None = None,
        settings: GuardSettings | None = None,
        **options: Any,
    ) -> None:
        settings = settings_for(
            settings,
            policy_file=policy_file,
            permit_pdp_url=permit_pdp_url,
            permit_api_key=permit_api_key,
            cache_ttl=cache_ttl,
            default_deny=default_deny,
            enforce=enforce,
            enable_audit_logging=enable_audit_logging,
            bypassed_methods=list(bypass_methods) if bypass_methods is not None else None,
            **options,
        )
        self.settings = settings
        self.engine = engine_from_settings(
            settings,
            engine=engine,
            permit_client=permit_client,
            file_given=policy_file is not None,
            key_given=permit_api_key is not None,
            authzen_given=options.get("authzen_url") is not None,
        )
        self.identity: IdentityExtractor = identity_for(identity, settings)
        hooked = (
            type(self)._extract_principal_info is not PermitMcpMiddleware._extract_principal_info
        )
        self._extractor = from_hook(self._extract_principal_info) if hooked else self.identity
        #: The decision core every hook asks.
        self.guard = Guard.from_settings(settings, engine=self.engine)
        self.guard.audit.configure(settings, sink=audit_sink, telemetry=telemetry)
        #: Where every verdict takes effect (refused, or logged in shadow mode).
        self.enforcement = Enforcement(self.guard)

    @property
    def default_deny(self) -> bool:
        """Whether undecorated components are hidden and denied without asking the engine."""
        return self.guard.default_deny

    @property
    def mapping(self) -> MappingConfig:
        """How requests map to engine questions."""
        return self.guard.mapping

    @property
    def audit_sink(self) -> AuditSink | None:
        """Where decision events go; ``None`` when audit logging is off."""
        return self.guard.audit.sink

    async def aclose(self) -> None:
        """Close the engine's connections (a no-op for the embedded engine)."""
        await close_engine(self.engine)

    @property
    def lifespan(self) -> Lifespan:
        """A lifespan that guards the server before it serves and closes the engine after.

        ``FastMCP("name", lifespan=guard.lifespan)``, or ``my_lifespan | guard.lifespan``.
        """
        middleware = self

        @lifespan
        async def close_guard(server: Any) -> AsyncIterator[dict[str, Any]]:
            await take_over(server, middleware, middleware.guard.planner)
            try:
                yield {}
            finally:
                await middleware.aclose()

        return close_guard

    def attach(self, server: FastMCP[Any]) -> None:
        """Add the guard to ``server`` (the one you serve) and own every door before it serves.

        Unlike ``mcp.add_middleware(guard)``, this also takes over at once what
        the mcp SDK consults before any middleware (see :mod:`permit_guard.headers`).

        Raises:
            ConfigurationError: When a middleware already on the server would
                run before the guard and can answer for it (a response cache).
        """
        server.add_middleware(self)
        claim(server, self)

    # ------------------------------------------------------------------ hooks

    async def on_message(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        """Every message: the guard sits where nothing answers for it, and owns every door."""
        server = server_of(context)
        if server is not None:  # without attach() or the lifespan, the guard learns it only now
            await take_over_or_refuse(server, self, self.guard.planner)
        return await call_next(context)

    async def on_request(
        self,
        context: MiddlewareContext[mt.Request[Any, Any]],
        call_next: CallNext[mt.Request[Any, Any], Any],
    ) -> Any:
        """Method-level check of requests that carry no component."""
        method = context.method or ""
        if method in TYPED_METHODS:
            # Calls and lists are decided in their typed hooks.
            return await call_next(context)
        if method in REFERENCE_METHODS:
            return await complete(self.enforcement, context, call_next, self._identifier(context))
        verdict = await self.guard.decide_method(
            method,
            identify=self._identifier(context),
            tasks_bound=tasks_bound(server_of(context)),
        )
        self.enforcement.admit_method(verdict, method)
        return await call_next(context)

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        """Check a tool call with its arguments."""
        message = context.message
        server = server_of(context)
        version = requested_version(message.meta) if message.meta else None
        found = await target(server, "tool", message.name, message.arguments or {}, version)
        principal = await self._enforce(context, "tools/call", found)
        # Only now: a caller who may not call the tool learns nothing of it.
        refuse_unbound_task(server, context, found)
        check_mcp_param_headers(context, found.component, message.arguments)
        with acting_as(principal):
            return await call_next(context)

    async def check_resource_access(
        self, context: MiddlewareContext[mt.ReadResourceRequestParams]
    ) -> None:
        """Check a resource read (static or templated URI)."""
        await self._check_read(context)

    async def _check_read(
        self, context: MiddlewareContext[mt.ReadResourceRequestParams]
    ) -> Principal | None:
        """The read check; the caller allowed (``None`` for a public resource)."""
        message = context.message
        found = await target(
            server_of(context),
            "resource",
            str(message.uri),
            version=requested_version(message.meta),
        )
        return await self._enforce(context, "resources/read", found)

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
        with acting_as(principal):
            return await call_next(context)

    async def on_get_prompt(
        self,
        context: MiddlewareContext[mt.GetPromptRequestParams],
        call_next: CallNext[mt.GetPromptRequestParams, PromptResult],
    ) -> PromptResult:
        """Check a prompt render with its arguments."""
        message = context.message
        found = await target(
            server_of(context),
            "prompt",
            message.name,
            message.arguments or {},
            requested_version(message.meta),
        )
        principal = await self._enforce(context, "prompts/get", found)
        with acting_as(principal):
            return await call_next(context)

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
        self, context: MiddlewareContext[Any], method: str, found: Target
    ) -> Principal | None:
        """Allow (returning the caller; ``None`` for public components) or raise."""
        verdict = await self.guard.decide(method, found, identify=self._identifier(context))
        return self.enforcement.admit(verdict, method, found)

    async def _filter(
        self, context: MiddlewareContext[Any], method: str, items: Sequence[C]
    ) -> Sequence[C]:
        """Keep the items the caller may use: the gate and every item in ONE ``check_many``."""
        lists = self.guard.planner.lists
        targets = await lists.targets(server_of(context), LIST_METHOD_KINDS[method], items)
        verdict = await self.guard.decide_list(method, targets, identify=self._identifier(context))
        return await self.enforcement.kept(method, targets, verdict, items)

    def _extract_principal_info(
        self, context: MiddlewareContext[Any]
    ) -> tuple[str | None, dict[str, Any]] | Awaitable[tuple[str | None, dict[str, Any]]]:
        """Subclass hook of permit-fastmcp: ``(user_key, attributes)`` for this request.

        Override it to compute the caller yourself; it is called exactly once
        per request, and a ``None`` user key means no valid credentials. The
        default is never called: the guard uses its ``identity`` extractor.
        """
        raise NotImplementedError

    async def identify(self, context: MiddlewareContext[Any]) -> Principal | None:
        """The caller of a request, as this guard finds it (``None``: no valid credentials)."""
        return await identify(self._extractor, context)

    def _identifier(self, context: MiddlewareContext[Any]) -> Identify:
        """The caller of this request, found only when the guard needs it."""
        return lambda: identify(self._extractor, context)
