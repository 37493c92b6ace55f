"""The Permit.io API endpoints an export fills, in the order they must be called.

The JSON export has one list per endpoint, keyed as here. Items of a flat
endpoint are request bodies; items of an endpoint under a resource type (or
a resource role) carry that key beside the body, as the ``permit`` SDK's
calls take them: ``{"resource": "project", "body": {...}}`` is
``permit.api.resource_roles.create("project", {...})``. Each body is the
``permit.api.models`` class named by :attr:`Endpoint.model`.

The order is one Permit.io accepts: each object after what it names, and
resource instances before the role assignments on them (an assignment on an
instance that does not exist yet would create it without its attributes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["ENDPOINTS", "MODELS", "USER_RESOURCE", "Endpoint"]

_SCHEMA = "/v2/schema/{proj_id}/{env_id}"
_FACTS = "/v2/facts/{proj_id}/{env_id}"

#: The resource type holding user attributes in Permit.io.
USER_RESOURCE: Final = "__user"


@dataclass(frozen=True, kw_only=True, slots=True)
class Endpoint:
    """One Permit.io API endpoint.

    Attributes:
        key: The endpoint's list in the JSON export.
        method: The HTTP method.
        path: Under ``https://api.permit.io``; ``{resource}`` and ``{role}``
            are filled from the item's ``resource`` and ``role``.
        sdk: The ``permit`` SDK call that sends one item.
        model: The ``permit.api.models`` class of a body.
        params: The path parameters each item carries beside its ``body``
            (none: the item is the body).
    """

    key: str
    path: str
    sdk: str
    model: str
    params: tuple[str, ...] = ()
    method: str = "POST"


ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    Endpoint(
        key="tenants",
        path=f"{_FACTS}/tenants",
        sdk="permit.api.tenants.create(body)",
        model="TenantCreate",
    ),
    Endpoint(
        key="resources",
        path=f"{_SCHEMA}/resources",
        sdk="permit.api.resources.create(body)",
        model="ResourceCreate",
    ),
    Endpoint(
        key="user_attributes",
        path=f"{_SCHEMA}/resources/{USER_RESOURCE}/attributes",
        sdk=f'permit.api.resource_attributes.create("{USER_RESOURCE}", body)',
        model="ResourceAttributeCreate",
    ),
    Endpoint(
        key="roles",
        path=f"{_SCHEMA}/roles",
        sdk="permit.api.roles.create(body)",
        model="RoleCreate",
    ),
    Endpoint(
        key="resource_relations",
        path=f"{_SCHEMA}/resources/{{resource}}/relations",
        sdk="permit.api.resource_relations.create(resource, body)",
        model="RelationCreate",
        params=("resource",),
    ),
    Endpoint(
        key="resource_roles",
        path=f"{_SCHEMA}/resources/{{resource}}/roles",
        sdk="permit.api.resource_roles.create(resource, body)",
        model="ResourceRoleCreate",
        params=("resource",),
    ),
    Endpoint(
        key="role_derivations",
        path=f"{_SCHEMA}/resources/{{resource}}/roles/{{role}}/implicit_grants",
        sdk="permit.api.resource_roles.create_role_derivation(resource, role, body)",
        model="DerivedRoleRuleCreate",
        params=("resource", "role"),
    ),
    Endpoint(
        key="condition_sets",
        path=f"{_SCHEMA}/condition_sets",
        sdk="permit.api.condition_sets.create(body)",
        model="ConditionSetCreate",
    ),
    Endpoint(
        key="condition_set_rules",
        path=f"{_FACTS}/set_rules",
        sdk="permit.api.condition_set_rules.create(body)",
        model="ConditionSetRuleCreate",
    ),
    Endpoint(
        key="users",
        path=f"{_FACTS}/users",
        sdk="permit.api.users.create(body)",
        model="UserCreate",
    ),
    Endpoint(
        key="resource_instances",
        path=f"{_FACTS}/resource_instances",
        sdk="permit.api.resource_instances.create(body)",
        model="ResourceInstanceCreate",
    ),
    Endpoint(
        key="role_assignments",
        path=f"{_FACTS}/role_assignments",
        sdk="permit.api.role_assignments.assign(body)",
        model="RoleAssignmentCreate",
    ),
    Endpoint(
        key="relationship_tuples",
        path=f"{_FACTS}/relationship_tuples",
        sdk="permit.api.relationship_tuples.create(body)",
        model="RelationshipTupleCreate",
    ),
)

#: Endpoint list -> the ``permit.api.models`` class of its bodies.
MODELS: Final[Mapping[str, str]] = {endpoint.key: endpoint.model for endpoint in ENDPOINTS}
