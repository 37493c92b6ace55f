"""Decision plans: a decision worked out once from the facts, its conditions left for each request.

Whether a request is allowed depends on the facts (who holds which role where,
the instances, their tuples) and on the request's attributes, which only
conditions read. :func:`plan` reads the facts once for everything a request
may ask, ``(tenant, user, resource type, action, instance key, listing)``,
and leaves the conditions: its result is the decision itself when no
condition could change it, or a :class:`Plan` holding the grants with a
condition, in the order the engine tries them, and what follows when none
admits the request. Every allow and denial in it is built beforehand, with the
reason :func:`~permit_guard.engines.local.granting.decide_in_full` would give.

The engine remembers plans in the :class:`~permit_guard.engines.local.facts.State`
they were worked out from, and only there: a change through the directory or a
reload publishes a new state, which starts with no plans, so a revoked role
grants nothing from the next decision on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from permit_guard.engines.local.conditions import Condition, Subject
from permit_guard.engines.local.facts import Facts, as_known
from permit_guard.engines.local.granting import (
    assigned_role,
    denial,
    derived_role,
    how,
    role_grant,
    role_on_set_grant,
    unknown_target,
    user_set_grant,
)
from permit_guard.engines.local.indexes import DecisionIndex
from permit_guard.model import AuthzRequest, Decision

__all__ = ["MAX_PLANS", "Plan", "PlanKey", "Step", "plan"]

#: Plans remembered per state, at most; past that the memo starts again empty.
MAX_PLANS: Final = 1 << 15

#: ``(tenant, user key, resource type, action, instance key, listing)``, as the request says.
PlanKey: TypeAlias = tuple[str, str, str, str, str | None, bool]

#: A grant with a condition: the user set the caller must be in (or ``None``),
#: the resource set's condition the request must meet (or ``None``), and the allow.
Step: TypeAlias = tuple[Condition | None, Condition | None, Decision]


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """What is left of a decision once the facts are read: its conditions.

    Attributes:
        instance: The tenant and attributes of the instance the request
            names, when it is known: the conditions see them.
        user_attributes: The user's known attributes (the request's own win).
        listing: Whether the request checks an item of a list (the listing rule).
        steps: The grants with a condition, in the order they are tried.
        then: The decision when no step admits the request.
    """

    instance: tuple[str, Mapping[str, Any]] | None
    user_attributes: Mapping[str, Any] | None
    listing: bool
    steps: tuple[Step, ...]
    then: Decision

    def decide(self, request: AuthzRequest) -> Decision:
        """The allow of the first step whose conditions the request meets, else :attr:`then`."""
        # What the facts say was read with the plan: no look-up in them here.
        resource = request.resource
        if self.instance is not None:
            resource = as_known(resource, self.instance)
        subject = Subject.of(request.user, self.user_attributes, resource)
        listing = self.listing
        for member_of, in_set, allow in self.steps:
            # User sets are about who the caller is: always two-valued, even for lists.
            if member_of is not None and not member_of.holds(subject):
                continue
            if in_set is not None:
                # The listing rule: the condition counts unless false whatever is missing.
                if listing:
                    if in_set.may_hold(subject) is False:
                        continue
                elif not in_set.holds(subject):
                    continue
            return allow
        return self.then


def plan(model: DecisionIndex, facts: Facts, asked: AuthzRequest, listing: bool) -> Decision | Plan:
    """The decision on ``asked``, or its plan, from this model and these facts.

    Args:
        model: The policy's indexes.
        facts: The facts of the same state.
        asked: A request; the plan holds for every request with the same
            :data:`PlanKey`, whatever its attributes.
        listing: Whether it checks an item of a list.

    Returns:
        The decision, when no condition could change it; else its plan.
    """
    request, known = asked, None
    if facts.instances and asked.resource.key is not None:
        known = facts.instances.get((asked.resource.type, asked.resource.key))
        request = facts.in_instance(asked)
    resource, action, user_key = request.resource, request.action, request.user.key
    type_name, tenant = resource.type, resource.tenant
    grants = model.grants.get((type_name, action))
    if grants is None:
        return Decision(allowed=False, reason=unknown_target(model, type_name, action))
    roles = facts.user_roles.get((tenant, user_key), ())
    for role in roles:
        if role in grants.roles:
            return Decision(allowed=True, reason=role_grant(role, type_name, action, tenant))
    wanted = grants.resource_roles
    if wanted:
        held = assigned_role(facts, request, wanted, listing)
        if held is not None:
            return held
    steps: list[Step] = [
        (
            None,
            resource_set.condition,
            _allow(role_on_set_grant(role, action, resource_set, tenant, listing=listing)),
        )
        for role in roles
        for resource_set in grants.roles_via_sets.get(role, ())
    ]
    for grant in grants.user_sets:
        reason = user_set_grant(grant, type_name, action)
        if grant.resource_set is None:
            steps.append((grant.condition, None, _allow(reason)))
        else:
            steps.append(
                (grant.condition, grant.resource_set.condition, _allow(f"{reason} {how(listing)}"))
            )
    then = (
        derived_role(model.rules, facts, request, wanted, listing)
        if wanted and model.rules
        else None
    )
    if then is None:
        then = Decision(allowed=False, reason=denial(facts, user_key, tenant, type_name, action))
    if not steps:
        return then
    # Copies of the few facts the conditions read, made with the plan and kept
    # next to it: deciding never reaches into tables that grow with the facts.
    user_attributes = facts.user_attributes.get(user_key)
    return Plan(
        instance=None if known is None else (known[0], dict(known[1])),
        user_attributes=dict(user_attributes) if user_attributes else None,
        listing=listing,
        steps=tuple(steps),
        then=then,
    )


def _allow(reason: str) -> Decision:
    return Decision(allowed=True, reason=reason)
