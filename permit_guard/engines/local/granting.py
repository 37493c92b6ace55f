"""The grant paths the embedded engine tries, and the trace that explains a decision.

:func:`decide_in_full` tries, in order: the caller's roles on the resource
type, resource roles assigned on the instance, roles on resource sets, user
sets, and last resource roles derived along relations (the dearest). Each path
takes an optional :class:`Trace`: when given (only by ``explain``), it records
what was considered, with every condition evaluated by the very evaluators the
decision used, so an explanation cannot disagree with the decision it explains.
The reasons decisions give are worded here too, for
:mod:`~permit_guard.engines.local.plans` to word them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from permit_guard.engines.local.conditions import Subject
from permit_guard.engines.local.facts import Facts, State
from permit_guard.engines.local.indexes import DecisionIndex, ResourceSet, UserSetGrant
from permit_guard.engines.local.relations import RoleRules, derive, describe, reach
from permit_guard.explanation import ConditionTrace, Considered, Explanation, GrantKind, Truth
from permit_guard.methods import LIST_METHODS
from permit_guard.model import AuthzRequest, Decision

__all__ = [
    "LISTING_METHODS",
    "MAX_REACHED",
    "Trace",
    "assigned_role",
    "certainty",
    "decide_in_full",
    "denial",
    "derived_role",
    "how",
    "is_listing",
    "role_grant",
    "role_on_set_grant",
    "set_admits",
    "unknown_target",
    "user_set_grant",
]

#: The MCP methods whose per-item checks are answered by the listing rule.
LISTING_METHODS: Final = frozenset(LIST_METHODS)

#: Listing searches remembered per snapshot of the facts, at most.
MAX_REACHED: Final = 4096


def is_listing(request: AuthzRequest) -> bool:
    """Whether a request checks an item for a list response (the listing rule applies).

    Args:
        request: The request; its resource attribute ``mcp_method`` tells.

    Returns:
        True when ``mcp_method`` is one of :data:`LISTING_METHODS`.
    """
    method = request.resource.attributes.get("mcp_method")
    # isinstance first: an unhashable value must not raise in the frozenset look-up.
    return isinstance(method, str) and method in LISTING_METHODS


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


def role_grant(role: str, type_name: str, action: str, tenant: str) -> str:
    """The reason of an allow by a role on the whole resource type."""
    return f"role {role!r} grants {type_name}:{action} in tenant {tenant!r}"


def role_on_set_grant(
    role: str, action: str, resource_set: ResourceSet, tenant: str, *, listing: bool
) -> str:
    """The reason of an allow by a role on a resource set."""
    return (
        f"role {role!r} grants {action} on resource set {resource_set.name!r} "
        f"in tenant {tenant!r} {how(listing)}"
    )


def user_set_grant(grant: UserSetGrant, type_name: str, action: str) -> str:
    """What a user set grants: the reason of its allow (on a resource set, before :func:`how`)."""
    if grant.resource_set is None:
        return f"user set {grant.name!r} grants {type_name}:{action}"
    return f"user set {grant.name!r} grants {action} on resource set {grant.resource_set.name!r}"


def denial(facts: Facts, user_key: str, tenant: str, type_name: str, action: str) -> str:
    """The reason of a denial on a known resource type and action."""
    if user_key not in facts.user_attributes:
        return f"user {user_key!r} is not in the policy and no user set grants {type_name}:{action}"
    return (
        f"no role, user set or resource role of user {user_key!r} in tenant "
        f"{tenant!r} grants {type_name}:{action}"
    )


def unknown_target(model: DecisionIndex, type_name: str, action: str) -> str:
    """The reason of a denial on a resource type or action the policy does not have."""
    if model.resource_actions.get(type_name) is None:
        return f"unknown resource type {type_name!r}: nothing grants {type_name}:{action}"
    return f"resource type {type_name!r} has no action {action!r}"


def decide_in_full(
    state: State[DecisionIndex], request: AuthzRequest, trace: Trace | None
) -> Decision:
    """Decide ``request`` trying every grant path in order, recording each in ``trace``.

    This is how ``explain`` decides. Other decisions come from plans
    (:mod:`~permit_guard.engines.local.plans`), worked out from the same paths
    and reasons, so both give the same decision.
    """
    model, facts = state.model, state.facts
    if facts.instances and request.resource.key is not None:
        request = facts.in_instance(request)
    resource = request.resource
    type_name = resource.type
    action = request.action
    user_key = request.user.key
    tenant = resource.tenant
    grants = model.grants.get((type_name, action))
    if grants is None:
        return Decision(allowed=False, reason=unknown_target(model, type_name, action))

    roles = facts.user_roles.get((tenant, user_key), ())
    for role in roles:
        if role in grants.roles:
            if trace is not None:
                trace.add("role", role, True, f"role {role!r} grants {type_name}:{action}")
            return Decision(allowed=True, reason=role_grant(role, type_name, action, tenant))
    if trace is not None:
        for role in roles:
            trace.add("role", role, False, f"role {role!r} grants {type_name}:{action}")

    listing = is_listing(request)
    if grants.resource_roles:
        held = assigned_role(facts, request, grants.resource_roles, listing, trace)
        if held is not None:
            return held

    subject: Subject | None = None
    if roles and grants.roles_via_sets:
        for role in roles:
            for resource_set in grants.roles_via_sets.get(role, ()):
                if subject is None:
                    subject = facts.subject(request)
                admitted, traced = set_admits(resource_set, subject, listing, trace)
                if not admitted and trace is None:
                    continue
                if trace is not None:
                    detail = f"role {role!r} grants {action} on resource set {resource_set.name!r}"
                    granted = certainty(traced) if admitted else False
                    trace.add("role-on-set", role, granted, detail, traced)
                if admitted:
                    reason = role_on_set_grant(role, action, resource_set, tenant, listing=listing)
                    return Decision(allowed=True, reason=reason)

    if grants.user_sets:
        if subject is None:
            subject = facts.subject(request)
        for grant in grants.user_sets:
            # User sets are about who the caller is: always two-valued, even for lists.
            member = grant.condition.holds(subject)
            traced = ()
            if trace is not None:
                inner = grant.condition.explain(subject, False)
                title = f"user set {grant.name!r}"
                traced = (ConditionTrace(text=title, value=member, children=(inner,)),)
            detail = user_set_grant(grant, type_name, action)
            if grant.resource_set is None:
                if trace is not None:
                    trace.add("user-set", grant.name, member, detail, traced)
                if member:
                    return Decision(allowed=True, reason=detail)
                continue
            admitted = False
            if member:
                admitted, in_set = set_admits(grant.resource_set, subject, listing, trace)
                traced += in_set
            if trace is not None:
                granted = certainty(traced) if admitted else False
                trace.add("user-set", grant.name, granted, detail, traced)
            if admitted:
                return Decision(allowed=True, reason=f"{detail} {how(listing)}")

    if grants.resource_roles and model.rules:
        # Last: walking the tuples costs most, and whatever granted above is cheaper.
        held = derived_role(model.rules, facts, request, grants.resource_roles, listing, trace)
        if held is not None:
            return held
    return Decision(allowed=False, reason=denial(facts, user_key, tenant, type_name, action))
