"""Loading a local policy: reading the file, then checking everything at once.

Loading checks the shape (pydantic, :mod:`permit_guard.engines.local.policy`)
and then every cross-reference and condition, and reports all problems of a
stage at once in one :class:`~permit_guard.exceptions.PolicyFileError`, each
with its location. YAML and JSON are read strictly: a repeated key is an error
rather than a silently replaced entry. See ``docs/policy-file.md`` for the
format.

Example:
    >>> policy = load_policy(
    ...     {"resources": {"invoice": {"actions": ["read"]}},
    ...      "roles": {"reader": {"grants": {"invoice": ["raed"]}}}},
    ...     source="<dict>",
    ... )
    Traceback (most recent call last):
    ...
    permit_guard.exceptions.PolicyFileError: invalid policy <dict>:
      - roles.reader.grants.invoice: unknown action 'raed' (did you mean 'read'? known: read)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from permit_guard.engines.local.bounds import check_data
from permit_guard.engines.local.compiler import child_location, compile_condition
from permit_guard.engines.local.conditions import Condition
from permit_guard.engines.local.facts import Facts
from permit_guard.engines.local.policy import (
    WILDCARD,
    Policy,
    PolicyResourceRole,
    PolicyResourceSet,
    PolicyResourceType,
    PolicyRole,
    PolicyUser,
    PolicyUserSet,
)
from permit_guard.engines.local.references import (
    names,
    resource_role_problem,
    split_instance,
    tuple_problem,
    unknown,
)
from permit_guard.engines.local.relations import graph_problem, instance_of
from permit_guard.exceptions import PolicyFileError

__all__ = ["LoadedPolicy", "load_policy"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadedPolicy:
    """A policy that passed every check, with its conditions compiled.

    Attributes:
        source: Where it came from (a file path, or ``"<dict>"``).
        policy: The validated policy.
        resource_set_conditions: Resource set name -> compiled condition.
        user_set_conditions: User set name -> compiled condition.
        facts: The facts the policy states (a snapshot; never changed).
    """

    source: str
    policy: Policy
    resource_set_conditions: Mapping[str, Condition]
    user_set_conditions: Mapping[str, Condition]
    facts: Facts


# -- loading -----------------------------------------------------------------------------------


def load_policy(data: object, *, source: str = "<dict>") -> LoadedPolicy:
    """Validate a parsed policy: its shape, then its references and conditions.

    Args:
        data: The policy as parsed from YAML or JSON (a mapping).
        source: Where it came from, for error messages.

    Returns:
        The checked policy with its conditions compiled.

    Raises:
        PolicyFileError: With one line per problem. Shape problems are reported
            first; references are checked once the shape is right. A policy
            that contains itself or is beyond the bounds of
            :mod:`~permit_guard.engines.local.bounds` is refused before either.
    """
    if not isinstance(data, Mapping):
        raise PolicyFileError(
            source,
            [
                f"top level: expected a mapping with the sections {names(Policy.model_fields)}, "
                f"not {_describe(data)}"
            ],
        )
    check_data(data, source=source)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(source, [_shape_problem(e) for e in exc.errors()]) from exc
    except RecursionError as exc:
        raise PolicyFileError(source, ["top level: the policy is nested too deeply"]) from exc
    checker = _Checker(policy)
    problems = checker.check()
    if problems:
        raise PolicyFileError(source, problems)
    return LoadedPolicy(
        source=source,
        policy=policy,
        resource_set_conditions=checker.resource_set_conditions,
        user_set_conditions=checker.user_set_conditions,
        # Built once, by the check of the tuples; the engine starts from it.
        facts=checker.facts if checker.facts is not None else Facts.build(policy),
    )


# -- problems ----------------------------------------------------------------------------------

#: The model found at each depth of a location, for "unknown key" messages.
_SECTION_ENTRIES: Final[Mapping[str, type[BaseModel]]] = {
    "resources": PolicyResourceType,
    "resource_sets": PolicyResourceSet,
    "user_sets": PolicyUserSet,
    "roles": PolicyRole,
    "users": PolicyUser,
}


def _location(loc: Iterable[int | str]) -> str:
    where = ""
    for part in loc:
        where = child_location(where, part)
    return where or "top level"


def _shape_problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    if error["type"] == "extra_forbidden" and loc:
        parent = loc[:-1]
        model: type[BaseModel] | None = None
        if not parent:
            model = Policy
        elif len(parent) == 2 and isinstance(parent[0], str):
            model = _SECTION_ENTRIES.get(parent[0])
        known = f" (known: {names(model.model_fields)})" if model else ""
        return f"{_location(parent)}: unknown key {loc[-1]!r}{known}"
    message = error["msg"].removeprefix("Value error, ")
    return f"{_location(loc)}: {message}"


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


class _Checker:
    """Cross-references and conditions of a policy whose shape is valid."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.problems: list[str] = []
        self.resource_set_conditions: dict[str, Condition] = {}
        self.user_set_conditions: dict[str, Condition] = {}
        self.facts: Facts | None = None

    def check(self) -> list[str]:
        p = self.policy
        for type_name, resource in p.resources.items():
            where = child_location("resources", type_name)
            if WILDCARD in resource.actions:
                self.problems.append(
                    f"{child_location(where, 'actions')}: {WILDCARD!r} is not an action name; "
                    "in grants it means every action"
                )
            for relation, subject_type in resource.relations.items():
                if subject_type not in p.resources:
                    here = child_location(child_location(where, "relations"), relation)
                    self.problems.append(
                        f"{here}: " + unknown("resource type", subject_type, list(p.resources))
                    )
            for role_name, resource_role in resource.roles.items():
                here = child_location(child_location(where, "roles"), role_name)
                self._actions(resource_role.permissions, type_name, here)
                self._derivations(type_name, resource_role, child_location(here, "granted_to"))
        for set_name, resource_set in p.resource_sets.items():
            where = child_location("resource_sets", set_name)
            if set_name in p.resources:
                self.problems.append(
                    f"{where}: a resource set cannot share its name with a resource type "
                    "(grants would not know which is meant)"
                )
            if resource_set.resource not in p.resources:
                self.problems.append(
                    f"{child_location(where, 'resource')}: "
                    + unknown("resource type", resource_set.resource, list(p.resources))
                )
            self.resource_set_conditions[set_name] = compile_condition(
                resource_set.condition,
                location=child_location(where, "condition"),
                problems=self.problems,
            )
        for set_name, user_set in p.user_sets.items():
            where = child_location("user_sets", set_name)
            self.user_set_conditions[set_name] = compile_condition(
                user_set.condition,
                location=child_location(where, "condition"),
                problems=self.problems,
            )
            self._grants(user_set.grants, child_location(where, "grants"))
        for role_name, role in p.roles.items():
            self._grants(role.grants, child_location(child_location("roles", role_name), "grants"))
        for user_key, user in p.users.items():
            self._user(user_key, user)
        for instance in p.resource_instances:
            self._instance_key(instance, child_location("resource_instances", instance))
        self._relationships()
        return self.problems

    def _derivations(self, type_name: str, role: PolicyResourceRole, where: str) -> None:
        p = self.policy
        for i, rule in enumerate(role.granted_to.users_with_role):
            here = child_location(child_location(where, "users_with_role"), i)
            if rule.on_resource not in p.resources:
                self.problems.append(
                    f"{child_location(here, 'on_resource')}: "
                    + unknown("resource type", rule.on_resource, list(p.resources))
                )
                continue
            problem = resource_role_problem(p, rule.on_resource, rule.role)
            if problem:
                self.problems.append(f"{child_location(here, 'role')}: {problem}")
            problem = tuple_problem(p, rule.on_resource, rule.linked_by_relation, type_name)
            if problem:
                self.problems.append(f"{child_location(here, 'linked_by_relation')}: {problem}")

    def _relationships(self) -> None:
        p = self.policy
        for i, link in enumerate(p.relationships):
            here = child_location("relationships", i)
            subject, problem = split_instance(p, link.subject)
            if problem:
                self.problems.append(f"{child_location(here, 'subject')}: {problem}")
            obj, problem = split_instance(p, link.object)
            if problem:
                self.problems.append(f"{child_location(here, 'object')}: {problem}")
            if subject is None or obj is None:
                continue
            problem = tuple_problem(p, subject[0], link.relation, obj[0])
            if problem:
                self.problems.append(f"{child_location(here, 'relation')}: {problem}")
        if not self.problems:
            self.facts = facts = Facts.build(p)
            problem = graph_problem(facts)
            if problem:
                self.problems.append(f"relationships: {problem}")
            for i, link in enumerate(p.relationships):
                subject, obj = instance_of(link.subject), instance_of(link.object)
                problem = facts.tenant_problem(subject, obj)
                if problem:
                    self.problems.append(f"{child_location('relationships', i)}: {problem}")

    def _instance_key(self, instance: str, here: str) -> str | None:
        """The resource type of ``"<type>:<key>"``, or ``None`` (the problem recorded)."""
        found, problem = split_instance(self.policy, instance)
        if found is None:
            self.problems.append(f"{here}: {problem}")
            return None
        return found[0]

    def _grants(self, grants: Mapping[str, list[str]], where: str) -> None:
        p = self.policy
        for target, actions in grants.items():
            if target in p.resources:
                self._actions(actions, target, child_location(where, target))
            elif target in p.resource_sets:
                type_name = p.resource_sets[target].resource
                # An unknown type of the set is reported at the set itself.
                if type_name in p.resources:
                    self._actions(actions, type_name, child_location(where, target))
            else:
                known = [*p.resources, *p.resource_sets]
                self.problems.append(
                    f"{where}: " + unknown("resource type or resource set", target, known)
                )

    def _actions(self, actions: list[str], type_name: str, where: str) -> None:
        known = self.policy.resources[type_name].actions
        for action in actions:
            if action != WILDCARD and action not in known:
                self.problems.append(f"{where}: " + unknown("action", action, known))

    def _user(self, user_key: str, user: PolicyUser) -> None:
        p = self.policy
        where = child_location("users", user_key)
        roles_where = child_location(where, "roles")
        for tenant, role_names in user.roles_by_tenant().items():
            here = (
                roles_where if isinstance(user.roles, list) else child_location(roles_where, tenant)
            )
            for role_name in role_names:
                if role_name not in p.roles:
                    self.problems.append(f"{here}: " + unknown("role", role_name, list(p.roles)))
        for instance, role_names in user.resource_roles.items():
            here = child_location(child_location(where, "resource_roles"), instance)
            type_name = self._instance_key(instance, here)
            if type_name is None:
                continue
            for role_name in role_names:
                problem = resource_role_problem(p, type_name, role_name)
                if problem:
                    self.problems.append(f"{here}: {problem}")
