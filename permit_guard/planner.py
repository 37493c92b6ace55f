"""Classifying components: public, refused without asking (and why), or a request for the engine.

The first half of the decision core, and the part that needs neither a caller
nor an engine: the ``permit-guard`` command describes a server with it, and
the :class:`~permit_guard.guard.Guard` decides with it.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from permit_guard.ambiguity import ambiguous_tools
from permit_guard.components.lookup import Target
from permit_guard.components.resolve import Resolved, resolve
from permit_guard.list_plans import ListMemo
from permit_guard.mapping import MappingConfig, RequestShape, gate_request
from permit_guard.methods import CALL_METHODS, LIST_METHODS, MethodRules
from permit_guard.model import AuthzRequest, Principal
from permit_guard.spec import GuardSpec, spec_of
from permit_guard.verdict import Plan

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from permit_guard.settings import GuardSettings

__all__ = ["DEFAULT_DENY", "NO_CREDENTIALS", "UNKNOWN", "UNMAPPABLE", "Planner"]

logger = logging.getLogger("permit_guard")

#: The reasons refusals give, in audit events and on the command line.
UNKNOWN: Final = "unknown component"
DEFAULT_DENY: Final = "undecorated under default deny"
UNMAPPABLE: Final = (
    "a transformed tool of a decorated function whose requirement reads "
    "arguments: the transform may change them, so they cannot be checked"
)
NO_CREDENTIALS: Final = "no valid credentials"

#: Most plans (and, apart, request shapes) kept; past it the memo starts afresh.
MEMO_LIMIT: Final = 50_000


class Planner:
    """Classifies the components of a request and builds their engine requests.

    Args:
        mapping: How requests map to engine questions.
        rules: Which methods are known, unknown-but-allowed, bypassed.
        default_deny: Refuse undecorated components without asking the engine.
        loader_timeout: Seconds an attribute loader may take (see
            :mod:`permit_guard.loaders`).
    """

    __slots__ = (
        "_plans",
        "_shapes",
        "_surveyed",
        "ambiguous",
        "default_deny",
        "lists",
        "loader_timeout",
        "mapping",
        "rules",
    )

    def __init__(
        self,
        *,
        mapping: MappingConfig,
        rules: MethodRules,
        default_deny: bool = False,
        loader_timeout: float = 3.0,
    ) -> None:
        self.mapping = mapping
        self.rules = rules
        self.default_deny = default_deny
        self.loader_timeout = loader_timeout
        #: Tool name -> why it is refused: its name-derived action is another's
        #: too (see :mod:`permit_guard.ambiguity`); filled by :meth:`survey`.
        self.ambiguous: Mapping[str, str] = {}
        self._surveyed: object = None
        # Plans and request shapes of components whose spec is their own
        # function's, each kept with what it was made from and used only
        # while all of that is still the same (see _memo_plan).
        self._plans: dict[tuple[str, str, str, int], _PlanEntry] = {}
        self._shapes: dict[tuple[str, str, str, int], _ShapeEntry] = {}
        #: Whole lists' targets, plans and requests, kept the same way.
        self.lists = ListMemo()

    async def survey(self, server: FastMCP[Any]) -> bool:
        """Look at the server's tools as a whole: find those whose actions are ambiguous.

        Done once per server, when it starts serving (its first request, or
        the guard's lifespan), and before ``permit-guard`` describes it.

        Returns:
            Whether the server is surveyed (``False``: its tools could not be
            listed; the next request tries again).
        """
        if self._surveyed is server:
            return True
        try:
            tools = await server.list_tools(run_middleware=False)
        except Exception as exc:
            # Asked again at the next request; each call is still checked on its own.
            logger.error("cannot list the tools of %r to find ambiguous actions: %s", server, exc)
            return False
        self.ambiguous = await ambiguous_tools(tools, self.mapping)
        self._surveyed = server
        return True

    @classmethod
    def from_settings(cls, settings: GuardSettings) -> Planner:
        """A planner wired from settings.

        Raises:
            ConfigurationError: On a bypass pattern that matches a component method.
        """
        return cls(
            mapping=MappingConfig.from_settings(settings),
            rules=MethodRules.from_settings(settings),
            default_deny=settings.default_deny,
            loader_timeout=settings.attribute_loader_timeout,
        )

    async def plan(self, method: str, target: Target) -> Plan:
        """Classify one component for ``method``; nothing is asked and nobody identified.

        The order matters and is the guard's contract: a public component is
        allowed whatever the method rules say; then a method outside
        ``known_methods`` (for a list entry, also its call method), an unknown
        component, default deny, unmappable arguments and an ambiguous action
        refuse, in that order.
        """
        component = target.component
        if component is not None:
            entry = self._plans.get((method, target.kind, target.name, id(component)))
            if (
                entry is not None
                and entry[0]() is component
                and entry[1] is _own_spec(component)
                and entry[2] is self.rules
                and entry[3] is self.ambiguous
                and entry[4] is self.default_deny
            ):
                return entry[5]
        plan = await self._plan(method, target)
        if plan.resolved is not None and plan.resolved.own:
            self._memo_plan(method, target, plan)
        return plan

    def _memo_plan(self, method: str, target: Target, plan: Plan) -> None:
        """Keep ``plan`` for as long as the component, its spec and the rules stay the same."""
        assert plan.resolved is not None
        try:
            ref = weakref.ref(target.component)
        except TypeError:  # a component that cannot be referred to weakly is planned each time
            return
        if len(self._plans) >= MEMO_LIMIT:
            self._plans.clear()
        key = (method, target.kind, target.name, id(target.component))
        entry = (ref, plan.resolved.spec, self.rules, self.ambiguous, self.default_deny, plan)
        self._plans[key] = entry

    async def _plan(self, method: str, target: Target) -> Plan:
        resolved: Resolved | None = None
        detail = UNKNOWN
        if target.component is not None:
            try:
                resolved = await resolve(target.component)
            except Exception as exc:
                # Fail closed: a spec we cannot find might have denied.
                logger.error("cannot resolve the guard spec of %r: %s", target.name, exc)
                detail = f"{UNKNOWN}: its guard spec cannot be found ({exc})"
        spec = resolved.spec if resolved is not None else None
        if spec is not None and spec.is_public:
            return Plan(why="public", reason="public component", resolved=resolved)
        refusal = self.rules.refusal(method)
        if refusal is None and method in LIST_METHODS:
            # A list shows what the caller may use: not what no call can reach.
            refusal = self.rules.refusal(CALL_METHODS[target.kind])
        if refusal is not None:
            return Plan(why="method", reason=refusal, resolved=resolved)
        if resolved is None:
            return Plan(why="unknown", reason=detail)
        if spec is None or not spec.is_declared:
            if self.default_deny:
                return Plan(why="default-deny", reason=DEFAULT_DENY, resolved=resolved)
        elif not resolved.arguments_mappable:
            return Plan(why="unmappable", reason=UNMAPPABLE, resolved=resolved)
        if target.kind == "tool" and target.name in self.ambiguous:
            return Plan(why="ambiguous", reason=self.ambiguous[target.name], resolved=resolved)
        return Plan(why="engine", resolved=resolved)

    def request(
        self,
        plan: Plan,
        method: str,
        target: Target,
        principal: Principal,
        *,
        validate: bool = True,
    ) -> AuthzRequest:
        """The engine request of a planned component (``plan.asks``) for ``principal``.

        Without the attributes a loader would add: the guard loads them for a
        call, read or render (:func:`permit_guard.loaders.load`); lists and
        descriptions of the server never run loaders.

        Args:
            plan: From :meth:`plan`, asking the engine.
            method: The MCP method.
            target: The component and its arguments.
            principal: The caller.
            validate: Read arguments as the function will receive them; off
                only to describe a component with placeholder values.

        Raises:
            InvalidArguments: When the arguments cannot be mapped faithfully.
        """
        resolved = plan.resolved
        assert resolved is not None, "only a plan that asks the engine has a request"
        key = (method, target.kind, target.name, id(resolved))
        entry = self._shapes.get(key)
        if entry is not None and entry.resolved is resolved and entry.mapping is self.mapping:
            if validate and not entry.shape.listing:
                return entry.shape.build(principal, target.arguments)
            if validate:
                # A list entry's request depends on the caller alone: the last one is reused.
                last = entry.last
                if last is not None and last[0].same_as(principal):
                    return last[1]
                request = entry.shape.build(principal, None)
                entry.last = (principal, request)
                return request
        shape = RequestShape.of(
            kind=target.kind,
            name=target.name,
            method=method,
            spec=resolved.spec,
            config=self.mapping,
            binder=resolved.binder if validate else None,
        )
        if validate and resolved.own:
            if len(self._shapes) >= MEMO_LIMIT:
                self._shapes.clear()
            # The plan memo hands out the same Resolved only while it holds.
            self._shapes[key] = _ShapeEntry(resolved, self.mapping, shape)
        return shape.build(principal, target.arguments)

    def gate(self, method: str, principal: Principal) -> AuthzRequest | None:
        """The method gate of a list request, ``None`` when bypassed."""
        if self.rules.bypassed(method):
            return None
        return gate_request(method, principal, self.mapping)


#: A kept plan: the component (weakly), its spec, the rules it was planned under, the plan.
_PlanEntry = tuple["weakref.ref[Any]", GuardSpec | None, MethodRules, Mapping[str, str], bool, Plan]


def _own_spec(component: Any) -> GuardSpec | None:
    """The spec on a component's own function, read as :func:`resolve` reads it."""
    return spec_of(getattr(component, "fn", None))


class _ShapeEntry:
    """A kept request shape, what it was made from, and the last list request built with it."""

    __slots__ = ("last", "mapping", "resolved", "shape")

    def __init__(self, resolved: Resolved, mapping: MappingConfig, shape: RequestShape) -> None:
        self.resolved = resolved
        self.mapping = mapping
        self.shape = shape
        self.last: tuple[Principal, AuthzRequest] | None = None
