"""The policy's ReBAC model for Permit.io: relations, resource roles and role derivations.

``permit-guard export --policy FILE`` adds these to the resource types the
server needs, in the shapes of Permit.io's API (resource relations, resource
roles, ``granted_to.users_with_role``) and of its Terraform provider
(``permitio_relation``, ``permitio_role`` with ``resource``,
``permitio_role_derivation``). Resource instances, relationship tuples and
role assignments are data, not schema: they are synced with
``permit.api.resource_instances.create``, ``permit.api.relationship_tuples.create``
and ``permit.api.role_assignments.assign``.

Example::

    from permit_guard.cli.rebac import api_requests, rebac_of
    from permit_guard.engines.local.reading import read_policy_file

    policy = read_policy_file("tests/cli_servers/tracker.yaml").policy
    for request in api_requests(rebac_of(policy, ["project"])):
        print(request["method"], request["path"])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from permit_guard.cli import hcl
from permit_guard.engines.local.policy import WILDCARD, Policy, PolicyDerivation

__all__ = [
    "Rebac",
    "Relation",
    "RoleSchema",
    "api_requests",
    "needed_types",
    "rebac_of",
    "terraform",
]

_SCHEMA = "/schema/{proj_id}/{env_id}/resources"


@dataclass(frozen=True, kw_only=True, slots=True)
class Relation:
    """A relation of a resource type: a ``subject`` instance may be ``key`` of a ``resource`` one.

    Attributes:
        resource: The object's resource type, which declares the relation.
        key: The relation (``parent``).
        subject: The subject's resource type (``workspace``).
    """

    resource: str
    key: str
    subject: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RoleSchema:
    """A resource role of a resource type.

    Attributes:
        resource: The resource type.
        key: The role.
        permissions: The actions it grants (a policy's ``"*"`` expanded).
        granted_to: Its derivations: users with ``role`` on a linked
            ``on_resource`` instance hold it too.
    """

    resource: str
    key: str
    permissions: tuple[str, ...]
    granted_to: tuple[PolicyDerivation, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Rebac:
    """The relations and resource roles of the resource types exported."""

    relations: tuple[Relation, ...] = ()
    roles: tuple[RoleSchema, ...] = ()


def needed_types(policy: Policy, types: Iterable[str]) -> list[str]:
    """The resource types of the policy that ``types`` relate to, directly or not, beyond them.

    A relation's subject type and a derivation's ``on_resource`` must exist in
    Permit.io for the relation and the derived role to be created.
    """
    known = list(dict.fromkeys(types))
    seen = set(known)
    extra: list[str] = []
    frontier = [t for t in known if t in policy.resources]
    while frontier:
        resource = policy.resources[frontier.pop(0)]
        related = list(resource.relations.values()) + [
            rule.on_resource
            for role in resource.roles.values()
            for rule in role.granted_to.users_with_role
        ]
        for type_name in related:
            if type_name not in seen and type_name in policy.resources:
                seen.add(type_name)
                extra.append(type_name)
                frontier.append(type_name)
    return extra


def rebac_of(policy: Policy, types: Sequence[str]) -> Rebac:
    """The relations and resource roles the policy declares on ``types``, in their order."""
    relations: list[Relation] = []
    roles: list[RoleSchema] = []
    for type_name in types:
        resource = policy.resources.get(type_name)
        if resource is None:
            continue
        relations += [
            Relation(resource=type_name, key=key, subject=subject)
            for key, subject in resource.relations.items()
        ]
        for key, role in resource.roles.items():
            permissions = resource.actions if WILDCARD in role.permissions else role.permissions
            roles.append(
                RoleSchema(
                    resource=type_name,
                    key=key,
                    permissions=tuple(dict.fromkeys(permissions)),
                    granted_to=tuple(role.granted_to.users_with_role),
                )
            )
    return Rebac(relations=tuple(relations), roles=tuple(roles))


def api_requests(rebac: Rebac) -> list[dict[str, Any]]:
    """Permit.io API requests that create the relations and roles, each after what it names.

    Relations, then roles with their permissions, then each derived role's
    ``granted_to``: a role may be derived from itself on a parent (folders in
    folders) or from a role created after it, so derivations are set once
    every role exists.
    """
    requests: list[dict[str, Any]] = [
        {
            "method": "POST",
            "path": f"{_SCHEMA}/{relation.resource}/relations",
            "body": {
                "key": relation.key,
                "name": relation.key,
                "subject_resource": relation.subject,
            },
        }
        for relation in rebac.relations
    ]
    requests += [
        {
            "method": "POST",
            "path": f"{_SCHEMA}/{role.resource}/roles",
            "body": {"key": role.key, "name": role.key, "permissions": list(role.permissions)},
        }
        for role in rebac.roles
    ]
    requests += [
        {
            "method": "PATCH",
            "path": f"{_SCHEMA}/{role.resource}/roles/{role.key}",
            "body": {
                "granted_to": {
                    "users_with_role": [
                        {
                            "role": rule.role,
                            "on_resource": rule.on_resource,
                            "linked_by_relation": rule.linked_by_relation,
                        }
                        for rule in role.granted_to
                    ]
                }
            },
        }
        for role in rebac.roles
        if role.granted_to
    ]
    return requests


def terraform(rebac: Rebac) -> list[str]:
    """``permitio_relation``, ``permitio_role`` and ``permitio_role_derivation`` blocks.

    They refer to each other and to the ``permitio_resource`` blocks by
    reference, so Terraform creates each after what it names.
    """
    lines: list[str] = []
    relation_labels: dict[tuple[str, str], str] = {}
    labels = hcl.Labels()
    for relation in rebac.relations:
        name = relation_labels[relation.resource, relation.key] = labels.new(
            f"{relation.resource}__{relation.key}"
        )
        lines += ["", f'resource "permitio_relation" "{name}" {{']
        lines += hcl.aligned(
            [
                ("key", hcl.string(relation.key)),
                ("name", hcl.string(relation.key)),
                ("subject_resource", _resource_key(relation.subject)),
                ("object_resource", _resource_key(relation.resource)),
            ]
        )
        lines.append("}")
    role_labels: dict[tuple[str, str], str] = {}
    labels = hcl.Labels()
    for role in rebac.roles:
        name = role_labels[role.resource, role.key] = labels.new(f"{role.resource}__{role.key}")
        lines += ["", f'resource "permitio_role" "{name}" {{']
        lines += hcl.aligned(
            [
                ("key", hcl.string(role.key)),
                ("name", hcl.string(role.key)),
                ("resource", _resource_key(role.resource)),
                ("permissions", _hcl_list(role.permissions)),
            ]
        )
        lines.append("}")
    labels = hcl.Labels()
    for role in rebac.roles:
        for rule in role.granted_to:
            name = labels.new(f"{rule.on_resource}_{rule.role}_to_{role.resource}_{role.key}")
            lines += ["", f'resource "permitio_role_derivation" "{name}" {{']
            lines += hcl.aligned(
                [
                    ("role", _role_key(role_labels, rule.on_resource, rule.role)),
                    ("on_resource", _resource_key(rule.on_resource)),
                    ("to_role", _role_key(role_labels, role.resource, role.key)),
                    ("resource", _resource_key(role.resource)),
                    (
                        "linked_by",
                        _relation_key(relation_labels, role.resource, rule.linked_by_relation),
                    ),
                ]
            )
            lines.append("}")
    return lines


def _resource_key(type_name: str) -> str:
    return f"permitio_resource.{hcl.label(type_name)}.key"


def _role_key(labels: Mapping[tuple[str, str], str], type_name: str, role: str) -> str:
    # A checked policy derives only from roles it declares, all of which are exported.
    name = labels.get((type_name, role))
    return f"permitio_role.{name}.key" if name is not None else hcl.string(role)


def _relation_key(labels: Mapping[tuple[str, str], str], type_name: str, relation: str) -> str:
    name = labels.get((type_name, relation))
    return f"permitio_relation.{name}.key" if name is not None else hcl.string(relation)


def _hcl_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(hcl.string(item) for item in items) + "]"
