"""The tasks extension with the guard on submission, ``tasks/*`` and start.

fastmcp-tasks answers a task-augmented ``tools/call`` from an interceptor that
FastMCP composes inside the middleware chain, and its Docket worker later
calls the function registered under the tool's ``component.key``, outside any
request and outside every middleware. :class:`GuardedTasks` puts the guard on
each of those paths:

- **submission** (:meth:`GuardedTasks.intercept_tool_call`): the component that
  will run is the one the guard checked (a task key two components share is
  refused), every guard of the mounted servers on the way is asked as the
  foreground call would ask it, and the task is bound to its caller;
- **tasks/get, tasks/update, tasks/cancel** (the wrapped :meth:`methods`): only
  the caller who submitted the task may use its id; anyone else gets the answer
  of an unknown id (:meth:`Guard.decide_owner <permit_guard.guard.Guard.decide_owner>`);
- **start** (the Docket registrations wrapped in :meth:`lifespan`): each leg of
  a task is checked again with the callers stored at submission, so a revoked
  grant stops a task that has not run yet, and runs with
  :func:`~permit_guard.caller.current_principal` set.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import mcp_types as mt
from fastmcp.server.dependencies import get_context
from fastmcp.server.extensions import MethodBinding
from fastmcp.server.middleware import MiddlewareContext
from fastmcp.server.providers.fastmcp_provider import FastMCPProviderTool
from fastmcp.tools.base import Tool, ToolResult
from fastmcp.tools.function_tool import FunctionTool
from fastmcp.utilities.versions import VersionSpec
from fastmcp_tasks import TasksExtension  # type: ignore[import-not-found,unused-ignore]
from fastmcp_tasks.context import (  # type: ignore[import-not-found,unused-ignore]
    get_task_context,
)
from fastmcp_tasks.models import (  # type: ignore[import-not-found,unused-ignore]
    CreateTaskResult,
)
from mcp import MCPError

from permit_guard.caller import acting_as, known
from permit_guard.components.lookup import Target, find_tool, requested_version
from permit_guard.exceptions import AccessDenied, AuthenticationFailed, on_wire
from permit_guard.model import Principal
from permit_guard.placement import would_be_task
from permit_guard.tasks.binding import BindingStore, TaskBinding

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from fastmcp.server.context import Context

    from permit_guard.middleware import PermitMcpMiddleware

__all__ = ["GuardedTasks"]

logger = logging.getLogger("permit_guard")

#: fastmcp-tasks' answer for a missing, expired or other caller's task (handlers._task_not_found).
_INVALID_PARAMS: Final = -32602

#: Mounted servers nest; a deeper chain is refused (as in components.resolve).
_MAX_MOUNT_DEPTH: Final = 16


@dataclass(frozen=True, slots=True)
class _Hop:
    """One server on the way to the function a task runs, and its guards."""

    server: FastMCP[Any]
    name: str
    tool: Tool
    guards: tuple[PermitMcpMiddleware, ...]


class GuardedTasks(TasksExtension):  # type: ignore[misc,unused-ignore]
    """The fastmcp-tasks extension with the guard on submission, ``tasks/*`` and start.

    Register it instead of ``TasksExtension``, on the server that runs
    ``guard``. It is a ``TasksExtension`` (the ``fastmcp tasks worker`` command
    requires one) and takes the same keywords.

    Args:
        guard: The root server's guard: its identity owns the tasks.
        **options: ``TasksExtension`` keywords (``url``, ``name``, ``concurrency``...).
    """

    def __init__(self, guard: PermitMcpMiddleware, **options: Any) -> None:
        super().__init__(**options)
        self._guard = guard
        self._bindings = BindingStore(lambda: self.server._docket)
        #: Task key -> the function Docket runs under it; ``None``: refused
        #: (two components share the key, or it is no function tool).
        self._functions: dict[str, Callable[..., Any] | None] = {}

    # ---------------------------------------------------------------- submission

    async def intercept_tool_call(
        self, params: mt.CallToolRequestParams, context: Context, call_next: Any
    ) -> Any:
        """Check the exact component a task will run, and bind the task to its caller."""
        version = requested_version(params.meta)
        tool = await find_tool(context.fastmcp, params.name, version)
        if tool is None or not would_be_task(tool, context):
            # Runs in the foreground, where every server's middleware runs.
            return await call_next()
        arguments = dict(params.arguments or {})
        hops = await _path(context.fastmcp, params.name, version)
        refusal = AccessDenied.hidden("tool", params.name)
        if hops is None or not self._runs(hops):
            raise refusal
        callers: list[Principal | None] = []
        for depth, hop in enumerate(hops):
            for guard in hop.guards:
                caller = await guard.identify(_call_context(context, hop.name, arguments))
                callers.append(caller)
                if depth == 0:
                    continue  # the root's guards decided this call already
                verdict = await guard.guard.decide(
                    "tools/call",
                    Target(kind="tool", name=hop.name, component=hop.tool, arguments=arguments),
                    identify=functools.partial(known, caller),
                )
                if guard.enforcement.refuses(verdict, "tools/call", hop.name):
                    raise refusal
        owner = await self._guard.identify(_call_context(context, tool.name, arguments))
        if owner is None:
            # A task nobody owns could be read by anyone: fail closed.
            raise AuthenticationFailed()
        binding = TaskBinding(
            owner=owner,
            name=params.name,
            version=tool.version,
            key=tool.key,
            arguments=arguments,
            callers=tuple(callers),
        )
        encoded = binding.encoded()  # before the task exists: one that cannot be stored refuses
        outcome = await super().intercept_tool_call(params, context, call_next)
        if isinstance(outcome, CreateTaskResult):
            await self._bindings.save(outcome.task_id, encoded)
        return outcome

    def _runs(self, hops: Sequence[_Hop]) -> bool:
        """Whether Docket's function for the call's key is the function the path ends at."""
        registered = self._functions.get(hops[0].tool.key)
        leaf = hops[-1].tool
        return registered is not None and isinstance(leaf, FunctionTool) and leaf.fn is registered

    # -------------------------------------------------------------- tasks/* ids

    #: Tells the guard this tasks extension binds tasks to their callers.
    binds_tasks_to_callers: Final = True

    def methods(self) -> Sequence[MethodBinding]:
        """fastmcp-tasks' ``tasks/*`` methods, answered only for the task's owner."""
        return [
            MethodBinding(
                method=binding.method,
                params_type=binding.params_type,
                handler=self._owned(binding.method, binding.handler),
                protocol_versions=binding.protocol_versions,
            )
            for binding in super().methods()
        ]

    def _owned(
        self, method: str, handler: Callable[[Any, Any], Awaitable[Any]]
    ) -> Callable[[Any, Any], Awaitable[Any]]:
        async def owned(ctx: Any, params: Any) -> Any:
            task_id: str = params.task_id
            caller = await self._guard.identify(_request_context(method, params))
            binding = await self._bindings.load(task_id) if caller is not None else None
            verdict = self._guard.guard.decide_owner(
                method,
                task_id,
                owner=binding.owner if binding is not None else None,
                caller=caller,
            )
            if verdict.why == "no-credentials":
                raise on_wire(AuthenticationFailed())
            if self._guard.enforcement.refuses(verdict, method, task_id):
                # One answer for another caller's task and an unknown id (even in shadow mode).
                raise MCPError(code=_INVALID_PARAMS, message=f"Task {task_id} not found")
            return await handler(ctx, params)

        return owned

    # --------------------------------------------------------------------- start

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """fastmcp-tasks' lifespan, with every Docket registration run through the guard."""
        server = self.server
        # Collected before the worker starts: between fastmcp-tasks' registration
        # and this wrapping nothing awaits, so no leg starts unguarded.
        by_key: dict[str, list[Any]] = {}
        for component in await server.get_tasks():
            if component.task_config.supports_tasks():
                by_key.setdefault(component.key, []).append(component)
        async with super().lifespan():
            docket = server._docket
            if docket is not None:
                for key, components in by_key.items():
                    inner = docket.tasks.get(key)
                    if inner is None:
                        continue
                    self._functions[key] = _function_of(key, components)
                    docket.register(self._guarded(key, inner), names=[key])
            yield

    def _guarded(self, key: str, inner: Callable[..., Any]) -> Callable[..., Any]:
        """``inner`` (fastmcp-tasks' leg wrapper), run only for a leg the guard allows now."""

        @functools.wraps(inner)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            info = get_task_context()
            binding = await self._bindings.wait_for(info.task_id) if info is not None else None
            if binding is None or binding.key != key:
                return _refused(AccessDenied.hidden("tool", key))
            allowed, principal = await self._recheck(binding)
            if not allowed:
                return _refused(AccessDenied.hidden("tool", binding.name))
            with acting_as(principal):
                return await inner(*args, **kwargs)

        guarded.__signature__ = inspect.signature(inner)  # type: ignore[attr-defined]
        return guarded

    async def _recheck(self, binding: TaskBinding) -> tuple[bool, Principal | None]:
        """Every guard on the way, asked again with the callers stored at submission."""
        version = VersionSpec(eq=binding.version) if binding.version else None
        hops = await _path(self.server, binding.name, version)
        if hops is None or hops[0].tool.key != binding.key or not self._runs(hops):
            return False, None
        guards = [(hop, guard) for hop in hops for guard in hop.guards]
        if len(guards) != len(binding.callers):
            return False, None  # the server changed since: fail closed
        principal: Principal | None = None
        for (hop, guard), caller in zip(guards, binding.callers, strict=True):
            verdict = await guard.guard.decide(
                "tools/call",
                Target(kind="tool", name=hop.name, component=hop.tool, arguments=binding.arguments),
                identify=functools.partial(known, caller),
            )
            if guard.enforcement.refuses(verdict, "tools/call", hop.name):
                return False, None
            principal = verdict.principal
        return True, principal


async def _path(root: FastMCP[Any], name: str, version: VersionSpec | None) -> list[_Hop] | None:
    """Each server a call of ``name`` passes, as the foreground call would; ``None`` if lost."""
    hops: list[_Hop] = []
    server, tool_name = root, name
    tool = await find_tool(server, tool_name, version)
    for _ in range(_MAX_MOUNT_DEPTH):
        if tool is None:
            return None
        hops.append(_Hop(server, tool_name, tool, _guards_of(server)))
        if not isinstance(tool, FastMCPProviderTool):
            return hops
        original = tool._original_name
        if not original:
            return None
        sub_version = VersionSpec(eq=tool.version) if tool.version else None
        server, tool_name = tool._server, original
        tool = await find_tool(server, tool_name, sub_version)
    return None


def _guards_of(server: FastMCP[Any]) -> tuple[PermitMcpMiddleware, ...]:
    from permit_guard.middleware import PermitMcpMiddleware

    return tuple(m for m in server.middleware if isinstance(m, PermitMcpMiddleware))


def _function_of(key: str, components: Sequence[Any]) -> Callable[..., Any] | None:
    """The one function Docket runs under ``key``, or ``None`` (refused) with the reason logged."""
    functions = {id(c.fn): c.fn for c in components if isinstance(c, FunctionTool)}
    if len(components) == 1 and len(functions) == 1:
        return next(iter(functions.values()))
    if len(components) > 1:
        logger.error(
            "background tasks of %r are refused: %d components share that task key, "
            "and Docket would run the last one registered whatever the guard checked",
            key,
            len(components),
        )
    else:
        logger.error("background tasks of %r are refused: not a function tool", key)
    return None


def _call_context(
    context: Context, name: str, arguments: Mapping[str, Any]
) -> MiddlewareContext[mt.CallToolRequestParams]:
    message = mt.CallToolRequestParams(name=name, arguments=dict(arguments))
    return MiddlewareContext(message=message, fastmcp_context=context, method="tools/call")


def _request_context(method: str, params: Any) -> MiddlewareContext[Any]:
    try:
        fastmcp_context: Context | None = get_context()
    except RuntimeError:
        fastmcp_context = None
    return MiddlewareContext(message=params, fastmcp_context=fastmcp_context, method=method)


def _refused(denial: AccessDenied) -> ToolResult:
    """A leg the guard refuses ends as the foreground denial does: an error result."""
    return ToolResult(content=[mt.TextContent(type="text", text=str(denial))], is_error=True)
