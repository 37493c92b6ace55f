"""Who can do what: every user against every component of a server, as the guard decides it.

Nothing here decides. For each user and each list method, the components the
middleware would list (the server's own lists, mounted servers included, made
targets by the middleware's own :func:`~permit_guard.components.lookup.listed`)
go to :meth:`Guard.decide_list <permit_guard.guard.Guard.decide_list>`, exactly
as the middleware's list filter sends them; its
:class:`~permit_guard.verdict.ListVerdict` says what the list shows. Each
component then gets a :class:`Cell`:

- ``allow``: the guard lets a call through whatever its arguments (a grant
  without conditions, or ``@public``);
- ``depends``: allowed for some arguments only. A list is decided under the
  listing rule, where the absent arguments are unknown; when the engine's own
  explanation (:meth:`~permit_guard.engines.base.Explainer.explain`) says the
  grant that listed it held only for some of them, the cell carries that
  grant and its conditions;
- ``deny``: no call is allowed, with the engine's or the guard's reason.

A list cut to its ``@public`` items by its method gate (or by a list method
outside ``known_methods``) says nothing of calls, which the middleware decides
on their own: those cells come from the same list asked again with that list
method served and ungated, and are marked as hidden from the list.

Example::

    import asyncio

    from permit_guard import LocalPolicyEngine
    from permit_guard.cli.load import guard_settings, load_server
    from permit_guard.cli.matrix import build_matrix, policy_users

    server = load_server("examples/quickstart.py:mcp")
    settings, _ = guard_settings(server)
    engine = LocalPolicyEngine.from_file("examples/policy.yaml")
    found = asyncio.run(build_matrix(server, settings, engine, policy_users(engine)))
    for row, cells in zip(found.components, found.cells, strict=True):
        print(row.label, [cell.outcome for cell in cells])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from fastmcp import FastMCP

from permit_guard.caller import known
from permit_guard.components.lookup import Component, Target, listed
from permit_guard.engines.base import Explainer, PolicyEngine
from permit_guard.engines.cache import CachedEngine
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.exceptions import ConfigurationError, EngineError
from permit_guard.explanation import Explanation
from permit_guard.guard import Guard
from permit_guard.methods import KIND_LIST_METHODS, Kind
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings
from permit_guard.verdict import ListVerdict, Why

__all__ = ["Cell", "Listing", "Matrix", "Outcome", "Row", "build_matrix", "policy_users"]

#: What a user may do with a component.
Outcome = Literal["allow", "deny", "depends"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One component of the server.

    Attributes:
        kind: ``tool``, ``resource``, ``template`` or ``prompt``.
        name: Tool or prompt name, resource URI or URI template.
        version: The component version, if it has one.
        mounted: Whether it comes from a mounted server.
    """

    kind: Kind
    name: str
    version: str | None
    mounted: bool

    @property
    def label(self) -> str:
        """The name, with its version when it has one."""
        return f"{self.name} (v{self.version})" if self.version else self.name


@dataclass(frozen=True, kw_only=True, slots=True)
class Cell:
    """What one user may do with one component.

    Attributes:
        outcome: ``allow``, ``deny`` or ``depends`` (on the call's arguments).
        why: What decided: ``engine``, ``public``, or the guard's refusal
            (``default-deny``, ``method``, ``unknown``...).
        reason: Why, in one line: the engine's reason, or the guard's.
        listed: Whether the user's list shows the component (``False`` for an
            allowed one only when its list method gate is denied).
        list_reason: Why the list hides it when ``listed`` is ``False`` by the
            gate (``gate denied: ...``); else empty.
        condition: For ``depends``: the grant that holds for some arguments
            and its conditions, as evaluated with the arguments unknown.
        explanation: How the engine decided, when it was asked and can explain.
    """

    outcome: Outcome
    why: Why
    reason: str
    listed: bool
    list_reason: str = ""
    condition: tuple[str, ...] = ()
    explanation: Explanation | None = None

    def lines(self) -> list[str]:
        """The cell in words: outcome and reason, the condition, the engine's tree."""
        found = [f"{self.outcome}: {self.reason}"]
        if self.list_reason:
            found.append(f"hidden from its list: {self.list_reason}")
        if self.condition:
            found.append("allowed only when:")
            found.extend(f"  {line}" for line in self.condition)
        if self.explanation is not None:
            found.append("how the engine decided:")
            found.extend(f"  {line}" for line in self.explanation.lines())
        return found


@dataclass(frozen=True, kw_only=True, slots=True)
class Listing:
    """What one list method shows one user.

    Attributes:
        user: The user key.
        method: ``tools/list``, ``resources/list``...
        visible: The names listed, in the server's order.
        hidden: The names left out.
        reason: The list verdict's reason (``filtered``, ``gate denied: ...``).
        why: ``engine`` when the engine filtered it, else what cut it to its
            public items (``gate``, ``method``).
    """

    user: str
    method: str
    visible: tuple[str, ...]
    hidden: tuple[str, ...]
    reason: str
    why: Why


@dataclass(frozen=True, kw_only=True, slots=True)
class Matrix:
    """Every user against every component.

    Attributes:
        server_name: The FastMCP server's name.
        tenant: The tenant every user called from (``None``: the default).
        users: The user keys, one column each.
        components: The components, one row each: tools, resources, templates, prompts.
        cells: Per component (row), per user (column): the cell.
        lists: Per user, per list method: what the list shows.
        enforced: ``False`` when the server's guard is in shadow mode (it then
            lets denials through, logged).
    """

    server_name: str
    tenant: str | None
    users: tuple[str, ...]
    components: tuple[Row, ...]
    cells: tuple[tuple[Cell, ...], ...]
    lists: tuple[Listing, ...]
    enforced: bool = True

    def cell(self, row: int, user: str) -> Cell:
        """The cell of component number ``row`` for ``user``."""
        return self.cells[row][self.users.index(user)]

    def listings(self, user: str) -> list[Listing]:
        """What the four list methods show ``user``."""
        return [listing for listing in self.lists if listing.user == user]


def policy_users(engine: PolicyEngine) -> tuple[str, ...]:
    """The users an embedded engine's facts know, in the policy's order.

    Raises:
        ConfigurationError: When the engine is not the embedded one (a PDP
            cannot be asked who its users are) or knows no user.
    """
    inner = engine.inner if isinstance(engine, CachedEngine) else engine
    if not isinstance(inner, LocalPolicyEngine):
        raise ConfigurationError(
            f"the engine {engine.name!r} cannot tell its users: name them with --users a,b"
        )
    users = tuple(inner.facts.user_attributes)
    if not users:
        raise ConfigurationError(
            f"the policy {inner.source} names no users: name them with --users a,b"
        )
    return users


async def build_matrix(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    users: Sequence[str],
    *,
    tenant: str | None = None,
) -> Matrix:
    """Decide every component of ``server`` for every user, through the guard core.

    Args:
        server: The server; mounted servers are listed through it.
        settings: The guard's settings (see :func:`~permit_guard.cli.load.guard_settings`).
        engine: The engine to ask; explanations when it is an
            :class:`~permit_guard.engines.base.Explainer`.
        users: The user keys.
        tenant: The tenant every user calls from (default: the guard's default).

    Returns:
        The matrix.

    Raises:
        ConfigurationError: If the settings cannot work together.
        EngineError: If the engine could not decide.
    """
    guard = Guard.from_settings(settings, engine=engine)
    await guard.planner.survey(server)  # as the middleware does when the server starts
    items: list[tuple[Kind, Sequence[Component]]] = [
        ("tool", await server.list_tools(run_middleware=False)),
        ("resource", await server.list_resources(run_middleware=False)),
        ("template", await server.list_resource_templates(run_middleware=False)),
        ("prompt", await server.list_prompts(run_middleware=False)),
    ]
    families = [
        (KIND_LIST_METHODS[kind], await listed(server, kind, found)) for kind, found in items
    ]
    rows = [_row(target) for _, targets in families for target in targets]
    ungated: dict[str, Guard] = {}
    columns: list[list[Cell]] = []
    lists: list[Listing] = []
    for user in users:
        principal = Principal(key=user, tenant=tenant)
        column: list[Cell] = []
        for method, targets in families:
            verdict = await _listing(guard, method, targets, principal)
            lists.append(_shown(user, method, targets, verdict))
            if verdict.why == "engine" or not targets:
                column.extend(
                    [await _cell(guard, method, t, verdict, i) for i, t in enumerate(targets)]
                )
                continue
            # The list was cut to its public items (a denied gate, a method not known),
            # but calls are decided on their own: ask the same list served and ungated.
            if method not in ungated:
                ungated[method] = await _ungated(server, settings, engine, method)
            column.extend(await _cut(ungated[method], method, targets, verdict, principal))
        columns.append(column)
    return Matrix(
        server_name=server.name,
        tenant=tenant,
        users=tuple(users),
        components=tuple(rows),
        cells=tuple(tuple(column[i] for column in columns) for i in range(len(rows))),
        lists=tuple(lists),
        enforced=settings.enforce,
    )


def _row(target: Target) -> Row:
    component = target.component
    return Row(
        kind=target.kind,
        name=target.name,
        version=getattr(component, "version", None) or None,
        mounted=getattr(component, "_server", None) is not None,
    )


async def _listing(
    guard: Guard, method: str, targets: Sequence[Target], principal: Principal
) -> ListVerdict:
    """The list verdict, as the middleware's list filter gets it; an engine failure raises."""
    verdict = await guard.decide_list(method, targets, identify=lambda: known(principal))
    if verdict.error is not None:
        # The middleware would list the public items only; a report must not pass for one.
        raise EngineError(f"{method} for user {principal.key!r}: {verdict.error}")
    return verdict


def _shown(user: str, method: str, targets: Sequence[Target], verdict: ListVerdict) -> Listing:
    names = [_row(target).label for target in targets]
    return Listing(
        user=user,
        method=method,
        visible=tuple(n for n, shown in zip(names, verdict.allowed, strict=True) if shown),
        hidden=tuple(n for n, shown in zip(names, verdict.allowed, strict=True) if not shown),
        reason=verdict.reason,
        why=verdict.why,
    )


async def _ungated(
    server: FastMCP[Any], settings: GuardSettings, engine: PolicyEngine, method: str
) -> Guard:
    """A guard like the server's, but serving ``method`` without its gate."""
    served = settings.model_copy(
        update={
            "known_methods": [*settings.known_methods, method],
            "bypassed_methods": [*settings.bypassed_methods, method],
        }
    )
    guard = Guard.from_settings(served, engine=engine)
    await guard.planner.survey(server)
    return guard


async def _cut(
    ungated: Guard,
    method: str,
    targets: Sequence[Target],
    verdict: ListVerdict,
    principal: Principal,
) -> list[Cell]:
    """The cells of a list cut to its public items: as calls go, marked hidden when allowed."""
    calls = await _listing(ungated, method, targets, principal)
    found = []
    for i, target in enumerate(targets):
        cell = await _cell(ungated, method, target, calls, i)
        if cell.outcome != "deny" and not verdict.allowed[i]:
            cell = replace(cell, listed=False, list_reason=verdict.reason)
        found.append(cell)
    return found


async def _cell(
    guard: Guard, method: str, target: Target, verdict: ListVerdict, index: int
) -> Cell:
    """One component's cell, from its list verdict (and the engine's explanation)."""
    shown = verdict.allowed[index]
    decision, request = verdict.decisions[index], verdict.requests[index]
    if decision is None or request is None:
        # Decided by the guard without the engine: public, or refused (and why).
        plan = await guard.planner.plan(method, target)
        if shown:
            return Cell(outcome="allow", why=plan.why, reason=plan.reason, listed=True)
        if plan.asks:  # planned for the engine, but the list request could not be mapped
            return Cell(
                outcome="deny",
                why="arguments",
                reason="its arguments cannot be mapped",
                listed=False,
            )
        return Cell(outcome="deny", why=plan.why, reason=plan.reason, listed=False)
    engine = guard.engine
    explanation = engine.explain(request).explanation if isinstance(engine, Explainer) else None
    if not shown:
        return Cell(
            outcome="deny",
            why="engine",
            reason=decision.reason,
            listed=False,
            explanation=explanation,
        )
    if explanation is not None and explanation.depends_on_arguments:
        return Cell(
            outcome="depends",
            why="engine",
            reason=decision.reason,
            listed=True,
            condition=_condition(explanation),
            explanation=explanation,
        )
    return Cell(
        outcome="allow", why="engine", reason=decision.reason, listed=True, explanation=explanation
    )


def _condition(explanation: Explanation) -> tuple[str, ...]:
    """The grant that listed the component for some arguments, and its conditions."""
    step = explanation.decided_by
    if step is None:
        return ()
    found = [step.detail]
    for trace in step.conditions:
        found.extend(trace.lines("  "))
    return tuple(found)
