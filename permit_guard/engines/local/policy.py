"""The local policy file's model: its sections and entries, as frozen pydantic models.

The file is YAML or JSON; every section is optional::

    resources:                  # resource types, their actions, their resource roles
      invoice:
        actions: [read, delete]
        relations: {parent: folder}           # a folder:f1 may be parent of an invoice
        roles:
          owner: [read, delete]
          auditor:                              # derived: a folder's admin audits its invoices
            permissions: [read]
            granted_to: {users_with_role: [{role: admin, on_resource: folder,
                                            linked_by_relation: parent}]}
    resource_sets:              # ABAC on the resource
      small_refunds: {resource: mcp_server, condition: {...}}
    user_sets:                  # ABAC on the user; grants like a role
      finance: {condition: {...}, grants: {small_refunds: [refund]}}
    roles:
      admin: {grants: {mcp_server: ["*"]}}
    users:
      alice: {roles: [admin]}
      bob:
        roles: {default: [viewer], acme: [admin]}
        attributes: {department: finance}
        resource_roles: {"invoice:42": [owner]}
    resource_instances:         # server-side facts: tenant and attributes of an instance
      "invoice:42": {tenant: acme, attributes: {archived: false}}
    relationships:              # tuples: subject relation object
      - {subject: "folder:f1", relation: parent, object: "invoice:42"}

These models check the shape only; cross-references and conditions are checked
by :func:`~permit_guard.engines.local.loading.load_policy`. See
``docs/policy-file.md`` for the full format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from permit_guard.methods import BUILT_IN_ATTRIBUTES
from permit_guard.model import DEFAULT_TENANT

__all__ = [
    "WILDCARD",
    "Policy",
    "PolicyDerivation",
    "PolicyGrantedTo",
    "PolicyRelationship",
    "PolicyResourceInstance",
    "PolicyResourceRole",
    "PolicyResourceSet",
    "PolicyResourceType",
    "PolicyRole",
    "PolicyUser",
    "PolicyUserSet",
]

#: In a grant, every action of the resource type.
WILDCARD: Final = "*"


class _Model(BaseModel):
    # Unknown keys are typos until proven otherwise; numbers in YAML keys or
    # names (user 1001) are meant as names.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # A YAML section whose entries are all commented out parses as null;
        # read it as "nothing here" rather than as a type error.
        if data is None:
            return {}
        if isinstance(data, Mapping):
            return {
                key: value
                for key, value in data.items()
                if not (
                    value is None
                    and key in cls.model_fields
                    and not cls.model_fields[key].is_required()
                )
            }
        return data


class PolicyDerivation(_Model):
    """One way a resource role is derived (Permit's ``users_with_role`` entry).

    Attributes:
        role: The resource role a user holds on the related instance.
        on_resource: The related instance's resource type.
        linked_by_relation: The relation, declared on this resource type, that
            links the related instance (the tuple's subject) to this one.
    """

    role: str
    on_resource: str
    linked_by_relation: str


class PolicyGrantedTo(_Model):
    """Who holds a resource role without being assigned it (Permit's ``granted_to``).

    Attributes:
        users_with_role: The derivations: a user with ``role`` on an instance
            linked by ``linked_by_relation`` holds this role too.
    """

    users_with_role: list[PolicyDerivation] = Field(default_factory=list)


class PolicyResourceRole(_Model):
    """A resource role: the actions it grants, and how it may be derived.

    Written either as a list of actions, or as Permit's
    ``{permissions: [...], granted_to: {users_with_role: [...]}}``.

    Attributes:
        permissions: The actions it grants on the instance it is held on.
        granted_to: Its derivations, if any.
    """

    permissions: list[str] = Field(default_factory=list)
    granted_to: PolicyGrantedTo = Field(default_factory=PolicyGrantedTo)

    @model_validator(mode="before")
    @classmethod
    def _actions_list(cls, data: Any) -> Any:
        # Today's short form: a role written as its list of actions.
        return {"permissions": data} if isinstance(data, list) else data


class PolicyResourceType(_Model):
    """A resource type: its actions, its relations and its resource roles.

    Attributes:
        actions: The actions that can be granted on the type.
        relations: Relation name -> the resource type of its subject (Permit's
            ``relations``): ``{parent: workspace}`` on ``project`` lets a tuple
            ``workspace:w1 parent project:p1`` link them.
        roles: Resource roles (ReBAC), each with the actions it grants on the
            instance a user holds it on, and how it may be derived.
    """

    actions: list[str] = Field(default_factory=list)
    relations: dict[str, str] = Field(default_factory=dict)
    roles: dict[str, PolicyResourceRole] = Field(default_factory=dict)


class PolicyResourceSet(_Model):
    """A resource set: the resources of one type whose attributes meet a condition.

    Attributes:
        resource: The resource type.
        condition: The condition, in Permit's JSON form.
    """

    resource: str
    condition: dict[str, Any]


class PolicyUserSet(_Model):
    """A user set: the users whose attributes meet a condition; grants like a role.

    Attributes:
        condition: The condition, in Permit's JSON form.
        grants: Resource type or resource set -> actions (``"*"``: all).
    """

    condition: dict[str, Any]
    grants: dict[str, list[str]] = Field(default_factory=dict)


class PolicyRole(_Model):
    """A role.

    Attributes:
        grants: Resource type or resource set -> actions (``"*"``: all).
    """

    grants: dict[str, list[str]] = Field(default_factory=dict)


class PolicyUser(_Model):
    """A user known to the policy.

    Attributes:
        roles: Role names in tenant ``default``, or tenant -> role names.
        attributes: User attributes; a request's own user attributes win over these.
        resource_roles: ``"<resource type>:<instance key>"`` -> resource roles.
    """

    roles: list[str] | dict[str, list[str]] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    resource_roles: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        plain: dict[str, Any] = plain_json(value)
        return plain

    @field_validator("roles", mode="before")
    @classmethod
    def _list_or_tenant_mapping(cls, value: Any) -> Any:
        # Checked here so a wrong shape reads as one sentence rather than as
        # one pydantic error per member of the union.
        def names(items: Any) -> bool:
            return isinstance(items, list) and all(isinstance(i, str | int) for i in items)

        if names(value) or (
            isinstance(value, Mapping)
            and all(isinstance(k, str) and names(v) for k, v in value.items())
        ):
            return value
        raise ValueError("expected a list of role names, or a mapping tenant -> list of role names")

    def roles_by_tenant(self) -> dict[str, list[str]]:
        """The user's roles, tenant by tenant."""
        if isinstance(self.roles, list):
            return {DEFAULT_TENANT: self.roles}
        return self.roles


class PolicyResourceInstance(_Model):
    """One resource instance the server knows (Permit's resource instances).

    Attributes:
        tenant: The tenant the instance lives in: a request naming the
            instance is decided there, whatever tenant it names.
        attributes: Server-side facts about the instance; they join the
            request's resource attributes and win over any sent under the
            same name.
    """

    tenant: str = Field(default=DEFAULT_TENANT, min_length=1)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _plain_and_not_built_in(cls, value: dict[str, Any]) -> dict[str, Any]:
        return reserved_names_free(plain_json(value))


#: How deeply attribute values may nest.
MAX_VALUE_DEPTH: Final = 32

#: Integers beyond 64 bits are no JSON value a PDP or a data file can carry.
_INT_RANGE: Final = range(-(2**63), 2**64)


def plain_json(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON: ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``.

    Subclasses become their plain base (a ``str`` enum its text), so what is
    decided, saved and audited is what was checked.

    Raises:
        ValueError: For anything else: a date, bytes, a set, an object, a
            number that is not finite or beyond 64 bits, a key that is not a
            string, or nesting deeper than :data:`MAX_VALUE_DEPTH`.
    """
    if depth > MAX_VALUE_DEPTH:
        raise ValueError(f"attribute values nest at most {MAX_VALUE_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value not in _INT_RANGE:
            raise ValueError("attribute numbers must fit in 64 bits")
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("attribute numbers must be finite")
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list | tuple):
        return [plain_json(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"attribute keys must be strings, not {type(key).__name__}")
            plain[str.__str__(key)] = plain_json(item, depth + 1)
        return plain
    raise ValueError(
        f"attributes must be JSON values (strings, numbers, booleans, null, lists, "
        f"mappings), not {type(value).__name__}"
    )


def reserved_names_free(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes``, if none has a name the guard sets itself.

    Raises:
        ValueError: Naming the first built-in attribute found.
    """
    taken = sorted(BUILT_IN_ATTRIBUTES.intersection(attributes))
    if taken:
        raise ValueError(
            f"{taken[0]!r} is an attribute the guard sets on every request; "
            "an instance cannot have it"
        )
    return attributes


class PolicyRelationship(_Model):
    """A relationship tuple: ``subject`` is ``relation`` of ``object``.

    Attributes:
        subject: ``"<resource type>:<instance key>"``, e.g. ``"workspace:w1"``.
        relation: A relation declared on the object's resource type.
        object: ``"<resource type>:<instance key>"``, e.g. ``"project:acme-1"``.
    """

    subject: str
    relation: str
    object: str


class Policy(_Model):
    """A whole policy file.

    Attributes:
        resources: Resource types by name.
        resource_sets: Resource sets by name.
        user_sets: User sets by name.
        roles: Roles by name.
        users: Users by key.
        resource_instances: Known resource instances, by ``"<type>:<key>"``.
        relationships: Relationship tuples between instances.
    """

    resources: dict[str, PolicyResourceType] = Field(default_factory=dict)
    resource_sets: dict[str, PolicyResourceSet] = Field(default_factory=dict)
    user_sets: dict[str, PolicyUserSet] = Field(default_factory=dict)
    roles: dict[str, PolicyRole] = Field(default_factory=dict)
    users: dict[str, PolicyUser] = Field(default_factory=dict)
    resource_instances: dict[str, PolicyResourceInstance] = Field(default_factory=dict)
    relationships: list[PolicyRelationship] = Field(default_factory=list)
