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

from permit_guard.engines.local.conditions import Condition
from permit_guard.engines.local.loading import LoadedPolicy
from permit_guard.engines.local.policy import WILDCARD, Policy
from permit_guard.engines.local.relations import RoleRules

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
    """The policy's model, keyed the way requests ask (the facts are in :class:`Facts`).

    Attributes:
        loaded: The checked policy it was built from.
        resource_actions: Resource type -> its actions.
        grants: ``(resource type, action)`` -> what may grant it.
        rules: How resource roles are derived along relations.
    """

    loaded: LoadedPolicy
    resource_actions: Mapping[str, frozenset[str]]
    grants: Mapping[tuple[str, str], Grants]
    rules: RoleRules

    @property
    def policy(self) -> Policy:
        """The checked policy's model (what the directory checks changes against)."""
        return self.loaded.policy

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
            for role_name, resource_role in resource.roles.items():
                for action in _expand(resource_role.permissions, resource.actions):
                    builders[type_name, action].resource_roles.add(role_name)

        return cls(
            loaded=loaded,
            resource_actions=MappingProxyType(
                {name: frozenset(r.actions) for name, r in policy.resources.items()}
            ),
            grants=MappingProxyType({key: builder.build() for key, builder in builders.items()}),
            rules=RoleRules.build(policy),
        )
