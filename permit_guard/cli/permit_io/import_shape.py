"""The shape of a JSON export that ``permit-guard policy import`` reads, as frozen pydantic models.

The lists and bodies of :mod:`~permit_guard.cli.permit_io.endpoints`, with
the fields ``permit-guard export`` writes and the optional ones Permit.io's
models add that change no decision (``name``, ``description``). A field the
local policy cannot express (a role's ``extends``, a derivation's ``when``
rule, a condition set's ``parent_id``) is refused rather than dropped:
dropping it would change who may do what.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "AssignmentIn",
    "ConditionSetIn",
    "DerivationIn",
    "ExportIn",
    "InstanceIn",
    "RelationIn",
    "ResourceIn",
    "ResourceRoleIn",
    "RoleIn",
    "RuleIn",
    "TupleIn",
    "UserIn",
    "shape_problems",
]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Named(_Shape):
    name: str | None = None
    description: str | None = None


class TenantIn(_Named):
    """A tenant (``TenantCreate``)."""

    key: str
    attributes: dict[str, Any] = Field(default_factory=dict)


class _Action(_Named):
    attributes: dict[str, Any] | None = None


class _Attribute(_Shape):
    type: str
    description: str | None = None


class ResourceIn(_Named):
    """A resource type (``ResourceCreate``); its attributes are Permit.io's schema only."""

    key: str
    actions: dict[str, _Action]
    attributes: dict[str, _Attribute] = Field(default_factory=dict)


class UserAttributeIn(_Shape):
    """A user attribute (``ResourceAttributeCreate`` on ``__user``): schema only."""

    key: str
    type: str
    description: str | None = None


class RoleIn(_Named):
    """A tenant role (``RoleCreate``) and its ``"<type>:<action>"`` permissions."""

    key: str
    permissions: list[str] = Field(default_factory=list)


class _RelationBody(_Named):
    key: str
    subject_resource: str


class RelationIn(_Shape):
    """A relation (``RelationCreate``) of ``resource``."""

    resource: str
    body: _RelationBody


class _ResourceRoleBody(_Named):
    key: str
    permissions: list[str] = Field(default_factory=list)


class ResourceRoleIn(_Shape):
    """A resource role (``ResourceRoleCreate``) of ``resource``."""

    resource: str
    body: _ResourceRoleBody


class _When(_Shape):
    no_direct_roles_on_object: Literal[False] = False


class _DerivationBody(_Shape):
    role: str
    on_resource: str
    linked_by_relation: str
    when: _When | None = None


class DerivationIn(_Shape):
    """A derivation (``DerivedRoleRuleCreate``) of ``resource``'s resource role ``role``."""

    resource: str
    role: str
    body: _DerivationBody


class ConditionSetIn(_Named):
    """A resource set or user set (``ConditionSetCreate``)."""

    key: str
    type: Literal["resourceset", "userset"] = "userset"
    resource_id: str | None = None
    conditions: dict[str, Any] = Field(default_factory=dict)


class RuleIn(_Shape):
    """A condition set rule (``ConditionSetRuleCreate``)."""

    user_set: str
    permission: str
    resource_set: str
    is_role: bool = False
    is_resource: bool = False


class UserIn(_Shape):
    """A user (``UserCreate``); ``email`` and the names become attributes."""

    key: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class InstanceIn(_Shape):
    """A resource instance (``ResourceInstanceCreate``)."""

    key: str
    resource: str
    tenant: str
    attributes: dict[str, Any] = Field(default_factory=dict)


class AssignmentIn(_Shape):
    """A role assignment (``RoleAssignmentCreate``)."""

    user: str
    role: str
    tenant: str | None = None
    resource_instance: str | None = None


class TupleIn(_Shape):
    """A relationship tuple (``RelationshipTupleCreate``); its ``tenant`` places new instances."""

    subject: str
    relation: str
    object: str
    tenant: str | None = None


class ExportIn(_Shape):
    """A whole export: ``description`` and ``endpoints`` are read by people, not here."""

    description: str | None = None
    endpoints: dict[str, Any] | None = None
    tenants: list[TenantIn] = Field(default_factory=list)
    resources: list[ResourceIn] = Field(default_factory=list)
    user_attributes: list[UserAttributeIn] = Field(default_factory=list)
    roles: list[RoleIn] = Field(default_factory=list)
    resource_relations: list[RelationIn] = Field(default_factory=list)
    resource_roles: list[ResourceRoleIn] = Field(default_factory=list)
    role_derivations: list[DerivationIn] = Field(default_factory=list)
    condition_sets: list[ConditionSetIn] = Field(default_factory=list)
    condition_set_rules: list[RuleIn] = Field(default_factory=list)
    users: list[UserIn] = Field(default_factory=list)
    resource_instances: list[InstanceIn] = Field(default_factory=list)
    role_assignments: list[AssignmentIn] = Field(default_factory=list)
    relationship_tuples: list[TupleIn] = Field(default_factory=list)


def shape_problems(error: ValidationError) -> list[str]:
    """One line per error: ``role_assignments[3].role: Field required``."""
    problems = []
    for item in error.errors():
        where = ""
        for part in item["loc"]:
            where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
        problems.append(f"{where or 'top level'}: {_sentence(item['type'], item['msg'])}")
    return problems


def _sentence(kind: str, message: str) -> str:
    if kind == "extra_forbidden":
        return "unknown field: permit-guard policy import cannot read it"
    if kind == "literal_error" and "False" in message:
        return "only false can be imported: the local policy has no such condition"
    return message
