"""The policy's facts in Permit.io's terms: tenants, users, instances, assignments, tuples.

- every tenant a role assignment or an instance names, but ``default``, which
  every Permit.io environment has;
- each user with its attributes (``UserCreate``), its roles per tenant and
  its resource roles as role assignments (``RoleAssignmentCreate``; a
  resource role's with ``resource_instance``);
- each resource instance with its tenant and attributes;
- each relationship tuple.

Permit.io scopes an instance, and so a resource role on it, to one tenant;
the local engine binds resource roles to the instance key alone. An
assignment or tuple on an instance the policy does not declare names tenant
``default``, where Permit.io creates the instance.
"""

from __future__ import annotations

from permit_guard.cli.permit_io.records import Assignment, Instance, Link, User
from permit_guard.engines.local.policy import Policy
from permit_guard.model import DEFAULT_TENANT

__all__ = ["assignments", "instances", "links", "tenants", "users"]


def tenants(policy: Policy) -> tuple[str, ...]:
    """The tenants the policy names, in the order first named, without ``default``."""
    named = [t for user in policy.users.values() for t in user.roles_by_tenant()]
    named += [instance.tenant for instance in policy.resource_instances.values()]
    return tuple(t for t in dict.fromkeys(named) if t != DEFAULT_TENANT)


def users(policy: Policy) -> tuple[User, ...]:
    """Every user, with its attributes."""
    return tuple(User(key=key, attributes=user.attributes) for key, user in policy.users.items())


def instances(policy: Policy) -> tuple[Instance, ...]:
    """Every declared resource instance."""
    found = []
    for name, instance in policy.resource_instances.items():
        type_name, _, key = name.partition(":")
        found.append(
            Instance(
                resource=type_name, key=key, tenant=instance.tenant, attributes=instance.attributes
            )
        )
    return tuple(found)


def _tenant_of(policy: Policy, instance: str) -> str:
    declared = policy.resource_instances.get(instance)
    return declared.tenant if declared is not None else DEFAULT_TENANT


def assignments(policy: Policy) -> tuple[Assignment, ...]:
    """Each user's roles per tenant, then its resource roles, user by user."""
    found: list[Assignment] = []
    for key, user in policy.users.items():
        found += [
            Assignment(user=key, role=role, tenant=tenant)
            for tenant, roles in user.roles_by_tenant().items()
            for role in dict.fromkeys(roles)
        ]
        found += [
            Assignment(user=key, role=role, tenant=_tenant_of(policy, instance), instance=instance)
            for instance, roles in user.resource_roles.items()
            for role in dict.fromkeys(roles)
        ]
    return tuple(found)


def links(policy: Policy) -> tuple[Link, ...]:
    """Every relationship tuple, with the tenant its instances live in."""
    return tuple(
        Link(
            subject=link.subject,
            relation=link.relation,
            object=link.object,
            tenant=_tenant_of(
                policy, link.object if link.object in policy.resource_instances else link.subject
            ),
        )
        for link in policy.relationships
    )
