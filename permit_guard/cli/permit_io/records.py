"""What ``permit-guard export`` creates in Permit.io, as plain values: one class per kind of object.

:func:`~permit_guard.cli.permit_io.building.build_export` makes a
:class:`PermitExport` from a server's inventory and a local policy;
:mod:`~permit_guard.cli.permit_io.api_json` and
:mod:`~permit_guard.cli.permit_io.terraform` write it out. Keys are Permit's:
a resource type's key, a role's key, ``"<type>:<action>"`` for a permission,
``"<type>:<key>"`` for a resource instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Assignment",
    "ConditionSet",
    "Derivation",
    "Instance",
    "Link",
    "PermitExport",
    "Relation",
    "ResourceRole",
    "ResourceType",
    "SetRule",
    "TenantRole",
    "User",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ResourceType:
    """A resource type with its actions and attributes (``ResourceCreate``).

    Attributes:
        key: The resource type.
        actions: Its actions.
        attributes: Attribute name -> Permit.io type (``string``, ``number``,
            ``bool``, ``array``, ``json``).
    """

    key: str
    actions: tuple[str, ...]
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class TenantRole:
    """A role held per tenant (``RoleCreate``), with its grants on whole resource types.

    Attributes:
        key: The role.
        permissions: ``"<type>:<action>"`` permissions.
    """

    key: str
    permissions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Relation:
    """A relation declared on ``resource``: a ``subject`` instance may be ``key`` of one of it."""

    resource: str
    key: str
    subject: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ResourceRole:
    """A resource role of ``resource`` (``ResourceRoleCreate``) and the actions it grants."""

    resource: str
    key: str
    permissions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class Derivation:
    """A derivation: who holds ``from_role`` on a linked ``on_resource`` instance holds ``role``.

    Attributes:
        resource: The type of the derived role.
        role: The derived role.
        from_role: The role held on the related instance.
        on_resource: The related instance's type.
        linked_by: The relation, declared on ``resource``, that links them.
    """

    resource: str
    role: str
    from_role: str
    on_resource: str
    linked_by: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ConditionSet:
    """A resource set or user set (``ConditionSetCreate``).

    Attributes:
        key: The set.
        kind: ``resourceset`` or ``userset``.
        resource: A resource set's resource type.
        conditions: The condition, in Permit's JSON form.
    """

    key: str
    kind: Literal["resourceset", "userset"]
    resource: str | None
    conditions: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class SetRule:
    """One grant through a condition set (``ConditionSetRuleCreate``).

    A role granting on a resource set is a rule on the role's own user set
    (``is_role``); a user set granting on a whole resource type is a rule on
    the type's own resource set (``is_resource``).

    Attributes:
        user_set: A user set, or a role when ``is_role``.
        permission: ``"<type>:<action>"``.
        resource_set: A resource set, or a resource type when ``is_resource``.
        is_role: ``user_set`` is a role.
        is_resource: ``resource_set`` is a resource type.
    """

    user_set: str
    permission: str
    resource_set: str
    is_role: bool = False
    is_resource: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class User:
    """A user (``UserCreate``) and its attributes."""

    key: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Instance:
    """A resource instance (``ResourceInstanceCreate``): its type, key, tenant and attributes."""

    resource: str
    key: str
    tenant: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Assignment:
    """A role assignment (``RoleAssignmentCreate``).

    Attributes:
        user: The user.
        role: A tenant role, or a resource role of the instance's type.
        tenant: The tenant: where a tenant role holds, or the instance's.
        instance: ``"<type>:<key>"`` for a resource role, else ``None``.
    """

    user: str
    role: str
    tenant: str
    instance: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Link:
    """A relationship tuple (``RelationshipTupleCreate``).

    ``subject`` is ``relation`` of ``object`` (``workspace:w1`` is ``parent``
    of ``project:p1``); ``tenant`` is where Permit.io creates an instance the
    policy does not declare.
    """

    subject: str
    relation: str
    object: str
    tenant: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PermitExport:
    """Everything one export creates in Permit.io, each kind in the order it is created.

    Attributes:
        server: The MCP server's name, when a server was exported.
        policy: The policy file, when one was exported.
        tenants: Tenant keys (not ``default``: every environment has it).
        resources: Resource types.
        user_attributes: User attribute name -> Permit.io type.
        roles: Tenant roles.
        relations: Relations.
        resource_roles: Resource roles.
        derivations: Role derivations.
        condition_sets: Resource sets, then user sets.
        rules: Condition set rules.
        users: Users.
        instances: Resource instances.
        assignments: Role assignments, tenant roles and resource roles.
        links: Relationship tuples.
    """

    server: str | None = None
    policy: str | None = None
    tenants: tuple[str, ...] = ()
    resources: tuple[ResourceType, ...] = ()
    user_attributes: Mapping[str, str] = field(default_factory=dict)
    roles: tuple[TenantRole, ...] = ()
    relations: tuple[Relation, ...] = ()
    resource_roles: tuple[ResourceRole, ...] = ()
    derivations: tuple[Derivation, ...] = ()
    condition_sets: tuple[ConditionSet, ...] = ()
    rules: tuple[SetRule, ...] = ()
    users: tuple[User, ...] = ()
    instances: tuple[Instance, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    links: tuple[Link, ...] = ()
