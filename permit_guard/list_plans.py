"""A whole list's targets, plans and engine requests, kept while what they were made from holds.

FastMCP 4.1.x clients list the tools before every call with arguments, and
agents list often: the same caller listing the same components again gets
the same targets, plans and requests without their being worked out item by
item. Each is kept with what it was made from and used only while every part
of that is the same object (the listed components, each one's function and
name, the rules, the mapping) or, for the caller, the same one
(:meth:`~permit_guard.model.Principal.same_as`), and while no decorator has
recorded a spec since (see :func:`permit_guard.spec.record_spec`). The engine is still
asked on every list, so a policy change or a revoked grant shows at once.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from permit_guard.components.lookup import DETACHED, Component, Target, listed, name_field
from permit_guard.exceptions import InvalidArguments
from permit_guard.methods import Kind
from permit_guard.model import AuthzRequest, Principal
from permit_guard.spec import specs_recorded
from permit_guard.verdict import Plan

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from permit_guard.planner import Planner

#: Callers whose list requests are kept per method; past it the memo starts afresh.
CALLERS_LIMIT: Final = 256


class ListPlan(NamedTuple):
    """A list's plans, before anyone is identified.

    Attributes:
        targets: The listed components, as the plans were made for them.
        plans: One plan per target.
        public: Per target, whether it is ``@public`` (always listed).
    """

    targets: tuple[Target, ...]
    plans: tuple[Plan, ...]
    public: tuple[bool, ...]


class ListAsk(NamedTuple):
    """What one caller's list asks the engine.

    Attributes:
        gate: The method gate, ``None`` when bypassed.
        items: Per target, its request; ``None`` when the engine is not asked.
        asked: The gate (when there is one) and every item request, in order.
    """

    gate: AuthzRequest | None
    items: tuple[AuthzRequest | None, ...]
    asked: tuple[AuthzRequest, ...]


class _Kept(NamedTuple):
    plan: ListPlan
    specs_recorded: int
    made_under: tuple[object, ...]


class _Asked(NamedTuple):
    plan: ListPlan
    principal: Principal
    made_under: tuple[object, ...]
    ask: ListAsk


class _Listed(NamedTuple):
    server: object
    items: tuple[Component, ...]
    looks: tuple[list[Any], list[Any]]
    targets: tuple[Target, ...]


def _looks(items: Sequence[Component]) -> tuple[list[Any], list[Any]]:
    """Each item's function and the field its target's name is read from."""
    fns = [getattr(item, "fn", None) for item in items]
    return fns, [name_field(type(item))(item) for item in items]


def _same(left: Sequence[Any], right: Sequence[Any]) -> bool:
    return len(left) == len(right) and all(map(operator.is_, left, right))


class ListMemo:
    """The last targets per kind, the last plans per method, the last requests per caller."""

    __slots__ = ("_asked", "_items", "_plans")

    def __init__(self) -> None:
        self._items: dict[Kind, _Listed] = {}
        self._plans: dict[str, _Kept] = {}
        self._asked: dict[tuple[str, str], _Asked] = {}

    async def targets(
        self, server: FastMCP[Any] | None, kind: Kind, items: Sequence[Component]
    ) -> tuple[Target, ...]:
        """The targets of a list response's items (see :func:`listed`), kept per kind.

        Kept while the server and the listed objects are the same, and each
        still has the function and the name it had (a component changed in
        place is looked at anew).
        """
        looks = _looks(items)
        kept = self._items.get(kind)
        if (
            kept is not None
            and kept.server is server
            and _same(kept.items, items)
            and _same(kept.looks[0], looks[0])
            and _same(kept.looks[1], looks[1])
        ):
            return kept.targets
        targets = tuple(await listed(server, kind, items))
        # A detached copy stands for the server's component of its name: looked up each time.
        if not any(type(item) in DETACHED for item in items):
            self._items[kind] = _Listed(server, tuple(items), looks, targets)
        return targets

    async def plan(self, planner: Planner, method: str, targets: Sequence[Target]) -> ListPlan:
        """Every target's plan for ``method`` (see :meth:`Planner.plan`)."""
        made_under = (planner.rules, planner.ambiguous, planner.default_deny)
        kept = self._plans.get(method)
        if (
            kept is not None
            and kept.plan.targets is targets
            and kept.specs_recorded == specs_recorded()
            and _same(kept.made_under, made_under)
        ):
            return kept.plan
        recorded = specs_recorded()  # before planning: a spec recorded meanwhile voids the memo
        plans = tuple([await planner.plan(method, target) for target in targets])
        listing = ListPlan(
            targets=tuple(targets),
            plans=plans,
            public=tuple(plan.why == "public" for plan in plans),
        )
        # Only plans the planner itself keeps: a mounted component's is looked up anew.
        if isinstance(targets, tuple) and all(
            plan.resolved is not None and plan.resolved.own for plan in plans
        ):
            self._plans[method] = _Kept(listing, recorded, made_under)
        return listing

    def ask(
        self, planner: Planner, method: str, listing: ListPlan, principal: Principal
    ) -> ListAsk:
        """What ``principal``'s list asks (see :meth:`Planner.request` and :meth:`Planner.gate`).

        An item whose request cannot be built faithfully is not asked (and so
        not listed, unless public).
        """
        made_under = (planner.rules, planner.mapping)
        key = (method, principal.key)
        kept = self._asked.get(key)
        if (
            kept is not None
            and kept.plan is listing
            and _same(kept.made_under, made_under)
            and kept.principal.same_as(principal)
        ):
            return kept.ask
        gate = planner.gate(method, principal)
        items: list[AuthzRequest | None] = []
        for plan, target in zip(listing.plans, listing.targets, strict=True):
            request = None
            if plan.asks:
                try:
                    request = planner.request(plan, method, target, principal)
                except InvalidArguments:
                    request = None
            items.append(request)
        asked = tuple(request for request in [gate, *items] if request is not None)
        ask = ListAsk(gate=gate, items=tuple(items), asked=asked)
        if len(self._asked) >= CALLERS_LIMIT:
            self._asked.clear()
        self._asked[key] = _Asked(listing, principal, made_under, ask)
        return ask
