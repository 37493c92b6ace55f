"""The decision indexes of the local engine, built once from a checked policy.

Everything a decision needs is worked out here, at load time: for each
``(resource type, action)``, the roles, resource sets, user sets and resource
roles that may grant it; each user's roles per tenant and resource roles per
instance. A decision is then a few dictionary look-ups. The indexes are
read-only mappings, so one engine serves any number of threads and tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from permit_guard.engines.local.conditions import Condition
from permit_guard.engines.local.loading import LoadedPolicy
from permit_guard.engines.local.policy import WILDCARD

__all__ = ["DecisionIndex", "Grants", "ResourceSet", "UserSetGrant"]


@dataclass(frozen=True, slots=True)
class ResourceSet:
    """A resource set and its compiled condition."""

    name: str
    condition: Condition


@dataclass(frozen=True, slots=True)
class UserSetGrant:
    """A user set's grant of one action."""

    name: str
    condition: Condition
    #: None: the grant is on the whole resource type.
    resource_set: ResourceSet | None


@dataclass(frozen=True, slots=True)
class Grants:
    """Everything that may grant one action on one resource type."""

    roles: frozenset[str]
    roles_via_sets: Mapping[str, tuple[ResourceSet, ...]]
    user_sets: tuple[UserSetGrant, ...]
    resource_roles: frozenset[str]


@dataclass
class _GrantsBuilder:
    roles: set[str] = field(default_factory=set)
    roles_via_sets: dict[str, list[ResourceSet]] = field(default_factory=dict)
    user_sets: list[UserSetGrant] = field(default_factory=list)
    resource_roles: set[str] = field(default_factory=set)

    def build(self) -> Grants:
        return Grants(
            roles=frozenset(self.roles),
            roles_via_sets=MappingProxyType(
                {role: tuple(sets) for role, sets in self.roles_via_sets.items()}
            ),
            user_sets=tuple(self.user_sets),
            resource_roles=frozenset(self.resource_roles),
        )


def _expand(actions: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    return tuple(known) if WILDCARD in actions else tuple(dict.fromkeys(actions))


@dataclass(frozen=True, kw_only=True, slots=True)
class DecisionIndex:
    """Everything a decision looks up, keyed the way requests ask.

    Attributes:
        resource_actions: Resource type -> its actions.
        grants: ``(resource type, action)`` -> what may grant it.
        user_roles: ``(tenant, user key)`` -> the user's roles there.
        instance_roles: ``(user key, resource type, instance key)`` -> the
            resource roles the user holds on that instance.
        roles_on_type: ``(user key, resource type)`` -> {resource role: one
            instance holding it}, for the listing rule.
        user_attributes: User key -> the file's attributes for the user.
        instances: ``(resource type, instance key)`` -> the instance's tenant
            and attributes (server-side facts).
    """

    resource_actions: Mapping[str, frozenset[str]]
    grants: Mapping[tuple[str, str], Grants]
    user_roles: Mapping[tuple[str, str], tuple[str, ...]]
    instance_roles: Mapping[tuple[str, str, str], tuple[str, ...]]
    roles_on_type: Mapping[tuple[str, str], Mapping[str, str]]
    user_attributes: Mapping[str, Mapping[str, Any]]
    instances: Mapping[tuple[str, str], tuple[str, Mapping[str, Any]]]

    @classmethod
    def build(cls, loaded: LoadedPolicy) -> DecisionIndex:
        """Index a checked policy.

        Args:
            loaded: A policy from :func:`~permit_guard.engines.local.loading.load_policy`
                or :func:`~permit_guard.engines.local.loading.read_policy_file`.

        Returns:
            The indexes.
        """
        policy = loaded.policy
        sets = {
            name: ResourceSet(name, loaded.resource_set_conditions[name])
            for name in policy.resource_sets
        }
        builders = {
            (type_name, action): _GrantsBuilder()
            for type_name, resource in policy.resources.items()
            for action in resource.actions
        }

        def targets(
            grants: Mapping[str, list[str]],
        ) -> list[tuple[str, str, ResourceSet | None]]:
            """(type, action, resource set or None) for every action a grant list gives."""
            found: list[tuple[str, str, ResourceSet | None]] = []
            for target, actions in grants.items():
                resource_set = sets.get(target)
                type_name = policy.resource_sets[target].resource if resource_set else target
                known = policy.resources[type_name].actions
                found.extend((type_name, a, resource_set) for a in _expand(actions, known))
            return found

        for role_name, role in policy.roles.items():
            for type_name, action, resource_set in targets(role.grants):
                builder = builders[type_name, action]
                if resource_set is None:
                    builder.roles.add(role_name)
                else:
                    builder.roles_via_sets.setdefault(role_name, []).append(resource_set)
        for set_name, user_set in policy.user_sets.items():
            condition = loaded.user_set_conditions[set_name]
            for type_name, action, resource_set in targets(user_set.grants):
                builders[type_name, action].user_sets.append(
                    UserSetGrant(set_name, condition, resource_set)
                )
        for type_name, resource in policy.resources.items():
            for role_name, actions in resource.roles.items():
                for action in _expand(actions, resource.actions):
                    builders[type_name, action].resource_roles.add(role_name)

        user_roles: dict[tuple[str, str], tuple[str, ...]] = {}
        instance_roles: dict[tuple[str, str, str], tuple[str, ...]] = {}
        for user_key, user in policy.users.items():
            for tenant, role_names in user.roles_by_tenant().items():
                user_roles[tenant, user_key] = tuple(dict.fromkeys(role_names))
            for instance, role_names in user.resource_roles.items():
                type_name, _, key = instance.partition(":")
                instance_roles[user_key, type_name, key] = tuple(dict.fromkeys(role_names))
        roles_on_type: dict[tuple[str, str], dict[str, str]] = {}
        for (holder, held_type, held_key), held_roles in instance_roles.items():
            for role_name in held_roles:
                roles_on_type.setdefault((holder, held_type), {}).setdefault(role_name, held_key)

        instances: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
        for name, facts in policy.resource_instances.items():
            type_name, _, key = name.partition(":")
            instances[type_name, key] = (facts.tenant, MappingProxyType(facts.attributes))

        return cls(
            resource_actions=MappingProxyType(
                {name: frozenset(r.actions) for name, r in policy.resources.items()}
            ),
            grants=MappingProxyType({key: builder.build() for key, builder in builders.items()}),
            user_roles=MappingProxyType(user_roles),
            instance_roles=MappingProxyType(instance_roles),
            roles_on_type=MappingProxyType(
                {pair: MappingProxyType(roles) for pair, roles in roles_on_type.items()}
            ),
            user_attributes=MappingProxyType(
                {key: MappingProxyType(dict(u.attributes)) for key, u in policy.users.items()}
            ),
            instances=MappingProxyType(instances),
        )
