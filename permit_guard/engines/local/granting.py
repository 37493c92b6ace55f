"""The grant paths the embedded engine tries, and the trace that explains a decision.

:meth:`LocalPolicyEngine.decide <permit_guard.engines.local.LocalPolicyEngine.decide>`
tries, in order: the caller's roles on the resource type, resource roles
assigned on the instance, roles on resource sets, user sets, and last resource
roles derived along relations (the dearest). The paths that need more than a
look-up live here. Each takes an optional :class:`Trace`: when given (only by
``explain``), it records what was considered, with every condition evaluated
by the very evaluators the decision used, so an explanation cannot disagree
with the decision it explains.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from permit_guard.engines.local.conditions import Subject
from permit_guard.engines.local.facts import Facts
from permit_guard.engines.local.indexes import ResourceSet
from permit_guard.engines.local.relations import RoleRules, derive, describe, reach
from permit_guard.explanation import ConditionTrace, Considered, Explanation, GrantKind, Truth
from permit_guard.model import AuthzRequest, Decision

__all__ = [
    "MAX_REACHED",
    "Trace",
    "assigned_role",
    "certainty",
    "derived_role",
    "how",
    "set_admits",
]

#: Listing searches remembered per snapshot of the facts, at most.
MAX_REACHED: Final = 4096


class Trace:
    """What one decision considered, in order (built by ``explain`` only)."""

    __slots__ = ("steps",)

    def __init__(self) -> None:
        self.steps: list[Considered] = []

    def add(
        self,
        kind: GrantKind,
        name: str,
        granted: Truth,
        detail: str,
        conditions: tuple[ConditionTrace, ...] = (),
    ) -> None:
        """Record one grant considered."""
        self.steps.append(
            Considered(kind=kind, name=name, granted=granted, detail=detail, conditions=conditions)
        )

    def explanation(
        self, facts: Facts, request: AuthzRequest, listing: bool, decision: Decision
    ) -> Explanation:
        """The explanation of ``decision``, taken on ``request`` as the engine saw it."""
        user, resource = request.user.key, request.resource
        target = f"{resource.type}:{request.action}"
        if resource.key is not None:
            target += f" on {resource.type}:{resource.key}"
        roles: Mapping[str, tuple[str, ...]] = {
            tenant: names
            for (tenant, holder), names in sorted(facts.user_roles.items())
            if holder == user
        }
        return Explanation(
            user=user,
            tenant=resource.tenant,
            target=target,
            roles=roles,
            listing=listing,
            considered=tuple(self.steps),
            allowed=decision.allowed,
            reason=decision.reason,
        )


def set_admits(
    resource_set: ResourceSet, subject: Subject, listing: bool, trace: Trace | None = None
) -> tuple[bool, tuple[ConditionTrace, ...]]:
    """Whether a resource set admits the request, and (when tracing) how its condition went.

    The listing rule: a list shows what the caller may call for SOME
    arguments, so a resource-set grant counts unless its condition is false
    whatever the absent arguments are. The call itself is checked later with
    the real arguments, two-valued.
    """
    condition = resource_set.condition
    if listing:
        value = condition.may_hold(subject)
        admitted = value is not False
    else:
        value = condition.holds(subject)
        admitted = value
    if trace is None:
        return admitted, ()
    inner = condition.explain(subject, listing)
    titled = ConditionTrace(
        text=f"resource set {resource_set.name!r}", value=value, children=(inner,)
    )
    return admitted, (titled,)


def certainty(conditions: tuple[ConditionTrace, ...]) -> Truth:
    """``True`` when every traced condition held, ``None`` when one was unknown (a list)."""
    return None if any(c.value is None for c in conditions) else True


def assigned_role(
    facts: Facts,
    request: AuthzRequest,
    wanted: frozenset[str],
    listing: bool,
    trace: Trace | None = None,
) -> Decision | None:
    """An allow from a resource role assigned on the instance, or ``None``."""
    resource = request.resource
    type_name, action, user_key = resource.type, request.action, request.user.key
    if resource.key is not None:
        held = facts.instance_roles.get((user_key, type_name, resource.key), ())
        for role in held:
            if role in wanted:
                reason = f"resource role {role!r} on {type_name}:{resource.key} grants {action}"
                if trace is not None:
                    trace.add("resource-role", role, True, reason)
                return Decision(allowed=True, reason=reason)
        if trace is not None:
            names = ", ".join(repr(r) for r in held) or "none"
            trace.add(
                "resource-role",
                "",
                False,
                f"resource roles assigned on {type_name}:{resource.key} ({names}) grant {action}",
            )
        return None
    if not listing:
        return None
    # The listing rule for ReBAC: the instance comes from the call's arguments,
    # so a list shows the component to a caller holding a granting resource
    # role on some instance of the type.
    for role, key in facts.roles_on_type.get((user_key, type_name), {}).items():
        if role in wanted:
            if trace is not None:
                detail = f"resource role {role!r} (held on {type_name}:{key}) grants {action}"
                trace.add("resource-role", role, None, detail)
            return Decision(
                allowed=True,
                reason=(
                    f"resource role {role!r} on {type_name}:{key} grants {action} "
                    "(listing: held on some instance)"
                ),
            )
    if trace is not None:
        trace.add(
            "resource-role", "", False, f"a resource role assigned on some {type_name} grants"
        )
    return None


def derived_role(
    rules: RoleRules,
    facts: Facts,
    request: AuthzRequest,
    wanted: frozenset[str],
    listing: bool,
    trace: Trace | None = None,
) -> Decision | None:
    """An allow from a resource role derived along tuples, or ``None``."""
    resource = request.resource
    type_name, action, user_key = resource.type, request.action, request.user.key
    if resource.key is not None:
        instance = (type_name, resource.key)
        path = derive(rules, facts.instance_roles, facts.parents, user_key, instance, wanted)
        listed = ""
        where = f"{type_name}:{resource.key}"
    elif listing:
        question = (user_key, type_name, wanted)
        if question in facts.reached:
            path = facts.reached[question]
        else:
            held = facts.holdings.get(user_key)
            path = reach(rules, held, facts.children, type_name, wanted) if held else None
            if len(facts.reached) >= MAX_REACHED:
                facts.reached.clear()
            facts.reached[question] = path
        listed = "listing: held on some instance; "
        where = f"some {type_name}"
    else:
        return None
    if path is None:
        if trace is not None:
            detail = f"a resource role derived along relations onto {where} grants {action}"
            trace.add("derived", "", False, detail)
        return None
    reason = (
        f"resource role {path[-1].role!r} on {type_name}:{path[-1].key} grants "
        f"{action} ({listed}derived: {describe(path)})"
    )
    if trace is not None:
        granted: Truth = None if listing and resource.key is None else True
        trace.add("derived", path[-1].role, granted, f"derived: {describe(path)}")
    return Decision(allowed=True, reason=reason)


def how(listing: bool) -> str:
    """How a resource set's condition counted, for reasons."""
    return "(listing: condition not excluded)" if listing else "(condition met)"
