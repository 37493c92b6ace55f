"""Finding the component a request names, exactly as FastMCP will run it.

The guard must check the component (and version) that will run, so it looks
components up through FastMCP's own lookup, with an O(1) fast path when that
is provably the same answer. A request for a component that cannot be found
becomes a :class:`Target` without a component: the guard answers it exactly
like a hidden one.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from fastmcp.prompts.base import Prompt
from fastmcp.resources.base import Resource
from fastmcp.resources.template import ResourceTemplate
from fastmcp.server.providers.addressing import parse_hashed_backend_name
from fastmcp.server.transforms.visibility import is_enabled
from fastmcp.tools.base import Tool
from fastmcp.utilities.versions import VersionSpec, version_sort_key

from permit_guard.components.index import names_of
from permit_guard.methods import Kind

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from fastmcp.server.middleware import MiddlewareContext

__all__ = [
    "Component",
    "Target",
    "completion_target",
    "component_name",
    "find_prompt",
    "find_resource",
    "find_tool",
    "kind_of",
    "listed",
    "requested_version",
    "server_of",
    "target",
]

logger = logging.getLogger("permit_guard")

Component = Tool | Resource | ResourceTemplate | Prompt


class Target(NamedTuple):
    """One component a request is about, as the guard core takes it.

    An immutable named tuple (made on every request; cheaper than a frozen
    dataclass).

    Attributes:
        kind: What the component is.
        name: How the request names it: a tool or prompt name, the URI read,
            or (in a list) the URI template.
        component: The component FastMCP will run, ``None`` when unknown.
        arguments: The arguments sent (tool or prompt arguments, a template's
            URI parameters); ``None`` for a list entry, which has none.
    """

    kind: Kind
    name: str
    component: Component | None
    arguments: Mapping[str, Any] | None = None


def server_of(context: MiddlewareContext[Any]) -> FastMCP[Any] | None:
    """The FastMCP server a middleware context belongs to, when it has one."""
    fastmcp_context = context.fastmcp_context
    return fastmcp_context.fastmcp if fastmcp_context is not None else None


async def listed(
    server: FastMCP[Any] | None, kind: Kind, items: Sequence[Component]
) -> list[Target]:
    """The targets of a list response's items (a template listed among resources is one).

    An item that is a detached copy (exactly a base ``Tool``, ``Resource``...,
    as a response cache placed after the guard stores them) is judged as the
    server's own component of that name and version, which carries the spec.
    """
    targets = []
    for item in items:
        component = item
        if type(item) in DETACHED and server is not None:
            component = await _original(server, item) or item
        targets.append(
            Target(
                kind="template" if isinstance(item, ResourceTemplate) else kind,
                name=component_name(item),
                component=component,
            )
        )
    return targets


#: What FastMCP's response cache turns components into: never registered as such.
DETACHED: Final = frozenset({Tool, Resource, ResourceTemplate, Prompt})


async def _original(server: FastMCP[Any], copy: Component) -> Component | None:
    version = VersionSpec(eq=copy.version) if copy.version else None
    try:
        if isinstance(copy, Tool):
            return await find_tool(server, copy.name, version)
        if isinstance(copy, Prompt):
            return await find_prompt(server, copy.name, version)
        if isinstance(copy, ResourceTemplate):
            return next(
                (
                    t
                    for t in await server.list_resource_templates(run_middleware=False)
                    if t.uri_template == copy.uri_template and t.version == copy.version
                ),
                None,
            )
        found, _ = await find_resource(server, str(copy.uri), version)
    except Exception as exc:
        logger.error("looking up %r failed; treating it as unknown: %s", copy.name, exc)
        return None
    return found


def kind_of(component: Component) -> Kind:
    """The kind of a component."""
    if isinstance(component, Tool):
        return "tool"
    if isinstance(component, ResourceTemplate):
        return "template"
    if isinstance(component, Resource):
        return "resource"
    return "prompt"


def component_name(component: Component) -> str:
    """How requests name a component: a tool or prompt name, a URI, or a URI template."""
    return str(name_field(type(component))(component))


_NAME_FIELDS: dict[type, operator.attrgetter[Any]] = {}


def name_field(kind: type) -> operator.attrgetter[Any]:
    """The field a component of class ``kind`` is named by (``uri_template``, ``uri``, ``name``).

    Found once per class: an ``isinstance`` of pydantic models per listed item is slow.
    """
    field = _NAME_FIELDS.get(kind)
    if field is None:
        if issubclass(kind, ResourceTemplate):
            field = operator.attrgetter("uri_template")
        elif issubclass(kind, Resource):
            field = operator.attrgetter("uri")
        else:
            field = operator.attrgetter("name")
        _NAME_FIELDS[kind] = field
    return field


def requested_version(meta: Mapping[str, Any] | None) -> VersionSpec | None:
    """The component version a request asks for (``_meta.fastmcp.version``), as FastMCP reads it.

    The guard must check the version that will run, not the newest one.
    """
    fastmcp_meta = meta.get("fastmcp") if meta else None
    if not isinstance(fastmcp_meta, Mapping):
        return None
    version = fastmcp_meta.get("version")
    if isinstance(version, str):
        return VersionSpec(eq=version)
    if isinstance(version, Mapping):
        bounds = {k: version.get(k) for k in ("gte", "lt", "eq")}
        if all(v is None or isinstance(v, str) for v in bounds.values()):
            return VersionSpec(**bounds)
    return None


async def target(
    server: FastMCP[Any] | None,
    kind: Kind,
    name: str,
    arguments: Mapping[str, Any] | None = None,
    version: VersionSpec | None = None,
) -> Target:
    """The target of a call (``tool``), a read (``resource``: any URI) or a render (``prompt``).

    A lookup that fails counts as unknown (denied), never as a crash.
    """
    found: Component | None = None
    params: Mapping[str, Any] = arguments or {}
    if server is not None:
        try:
            if kind == "tool":
                found = await find_tool(server, name, version)
            elif kind == "prompt":
                found = await find_prompt(server, name, version)
            else:
                found, params = await find_resource(server, name, version)
        except Exception as exc:
            logger.error("looking up %r failed; treating it as unknown: %s", name, exc)
            found = None
    if kind in ("resource", "template"):
        kind = "template" if isinstance(found, ResourceTemplate) else "resource"
    return Target(kind=kind, name=name, component=found, arguments=params)


async def completion_target(server: FastMCP[Any] | None, ref: object) -> Target | None:
    """The prompt or resource template a ``completion/complete`` reference names.

    ``ref`` is the request's ``ref`` (``{"type": "ref/prompt", "name": ...}`` or
    ``{"type": "ref/resource", "uri": ...}``); the URI is a template's own
    identifier or a URI one of them matches. ``None`` for a malformed
    reference (FastMCP refuses those itself); an unknown one is a target
    without a component. A lookup that fails counts as unknown.
    """
    if not isinstance(ref, Mapping):
        return None
    ref_type = ref.get("type")
    key = ref.get("name") if ref_type == "ref/prompt" else ref.get("uri")
    if ref_type not in ("ref/prompt", "ref/resource") or not isinstance(key, str):
        return None
    if ref_type == "ref/prompt":
        return await target(server, "prompt", key)
    found: ResourceTemplate | None = None
    if server is not None:
        try:
            found = await _template_for(server, key)
        except Exception as exc:
            logger.error("looking up %r failed; treating it as unknown: %s", key, exc)
    name = found.uri_template if found is not None else key
    return Target(kind="template", name=name, component=found)


async def _template_for(server: FastMCP[Any], key: str) -> ResourceTemplate | None:
    # Query-only templates (`data://search{?q}`) do not match their own
    # identifier as a URI, so look for the template itself first; of several
    # versions, the one clients list (the highest).
    matches = [
        template
        for template in await server.list_resource_templates(run_middleware=False)
        if template.uri_template == key
    ]
    if matches:
        return max(matches, key=version_sort_key)
    template: ResourceTemplate | None = await server.get_resource_template(key)
    return template


def _exact_local(server: FastMCP[Any]) -> Any:
    """The server's local provider, when it alone answers lookups (else ``None``).

    FastMCP's own lookup gathers every provider and applies transforms, which
    costs hundreds of microseconds on a large server (milliseconds for a name
    it does not hold). With only its local provider and no transforms, the
    local table is what FastMCP looks in.
    """
    try:
        if server._transforms or len(server.providers) != 1:
            return None
        local = server.local_provider
        if local._transforms or server._injected_tools():
            return None
    except AttributeError:
        # A FastMCP without these internals: use the public lookup.
        return None
    return local


def _local_fast_path(server: FastMCP[Any], key: str) -> Any:
    """An O(1) lookup of ``key`` among the server's own components, when it is exact.

    ``key`` (``tool:{name}@``) names the unversioned component, which the
    local provider never mixes with versions of that name, so there is no
    version to fall back to. Otherwise this returns ``None`` and the caller
    uses FastMCP's own lookup.
    """
    local = _exact_local(server)
    return _usable(local._components.get(key)) if local is not None else None


def _usable(found: Any) -> Any:
    # A component its own auth= or visibility may refuse is left to FastMCP,
    # whose answer (another version, or nothing) then decides.
    if found is None or getattr(found, "auth", None) is not None or not is_enabled(found):
        return None
    return found


def _from_local(
    server: FastMCP[Any], kind: str, name: str, version: VersionSpec | None
) -> tuple[Any, bool]:
    """The local component FastMCP will run (or ``None``), and whether none has ``name``.

    Both in O(1): the second lets an unknown name be answered as fast as a
    hidden one; it is ``False`` when that cannot be told without FastMCP's
    lookup (see ``components.index``).
    """
    local = _exact_local(server)
    if local is None:
        return None, False
    if version is None:
        found = _usable(local._components.get(f"{kind}:{name}@"))
        if found is not None:
            return found, False
    names = names_of(local)
    return None, names is not None and f"{kind}:{name}" not in names


async def find_tool(
    server: FastMCP[Any], name: str, version: VersionSpec | None = None
) -> Tool | None:
    """The tool ``name`` as FastMCP would run it, or ``None`` when unknown."""
    found, absent = _from_local(server, "tool", name, version)
    if isinstance(found, Tool):
        return found
    hashed = parse_hashed_backend_name(name)
    if absent and hashed is None:
        return None
    tool = await server.get_tool(name, version=version)
    if tool is None and hashed is not None:
        # FastMCP's second route: an app tool addressed as `<hash>_<name>`.
        by_hash: Tool | None = await server.get_tool_by_hash(*hashed)
        return by_hash
    return tool


async def find_prompt(
    server: FastMCP[Any], name: str, version: VersionSpec | None = None
) -> Prompt | None:
    """The prompt ``name`` as FastMCP would render it, or ``None`` when unknown."""
    found, absent = _from_local(server, "prompt", name, version)
    if isinstance(found, Prompt):
        return found
    if absent:
        return None
    return await server.get_prompt(name, version=version)


async def find_resource(
    server: FastMCP[Any], uri: str, version: VersionSpec | None = None
) -> tuple[Resource | ResourceTemplate | None, dict[str, Any]]:
    """The resource or template that serves ``uri``, and the template's parameters."""
    if version is None:
        resource = _local_fast_path(server, f"resource:{uri}@")
        if isinstance(resource, Resource):
            return resource, {}
    lookup = getattr(server, "_lookup_resource", None)
    if lookup is not None:
        # FastMCP >= 4.2 lets a hidden concrete resource shadow the templates
        # matching its URI (the read is refused): ask its own resolver, so a
        # shadowed template is never judged in the resource's place.
        found, exists = await lookup(uri, version)
        if found is not None or exists:
            return found, {}
    else:
        found = await server.get_resource(uri, version=version)
        if found is not None:
            return found, {}
    template = await server.get_resource_template(uri, version=version)
    if template is None:
        return None, {}
    return template, dict(template.matches(uri) or {})
