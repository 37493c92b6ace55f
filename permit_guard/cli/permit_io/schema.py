"""Resource types, actions and attributes for Permit.io, from the server's requests and a policy.

The server's requests name the types and actions the guard asks about and the
attributes they carry (typed from the components' schemas). A policy adds its
own types with their actions, the attributes its resource instances carry
(typed from their values), and every attribute its conditions use
(``resource.<name>`` on the resource set's type, or on the types a user set
grants on; ``user.<name>`` as a user attribute), typed from the operator and
operand (``less-than`` compares numbers; ``equals: EUR`` strings). Permit.io
needs an attribute declared before a condition set may use it. An attribute
typed two ways is ``json``; one whose type cannot be told is ``json`` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from permit_guard.cli.inventory import Attribute, Inventory, attributes_of, permit_type
from permit_guard.cli.permit_io.records import ResourceType
from permit_guard.engines.local.policy import Policy
from permit_guard.model import AuthzRequest

__all__ = [
    "BUILT_IN",
    "ResourceSchema",
    "condition_attributes",
    "resource_types",
    "user_attributes",
]

#: Attributes Permit.io has on every user and resource: never declared.
BUILT_IN: Final[Mapping[str, frozenset[str]]] = {
    "user": frozenset({"key", "email", "first_name", "last_name", "roles"}),
    "resource": frozenset({"key", "type", "tenant"}),
}

#: Operator -> (type of the attribute, type of the operand); ``None``: the operand's own.
_OPERATORS: Final[Mapping[str, tuple[str | None, str | None]]] = {
    "greater-than": ("number", "number"),
    "greater-than-equals": ("number", "number"),
    "less-than": ("number", "number"),
    "less-than-equals": ("number", "number"),
    "contains": ("string", "string"),
    "array_contains": ("array", None),
    "array_subset": ("array", "array"),
    "array_superset": ("array", "array"),
    "array_intersect": ("array", "array"),
}


@dataclass(kw_only=True, slots=True)
class ResourceSchema:
    """One resource type being gathered: its actions and typed attributes.

    Attributes:
        key: The resource type.
        actions: Its actions, in the order first met.
        attributes: Attribute name -> Permit.io type (``None`` while unknown).
    """

    key: str
    actions: list[str] = field(default_factory=list)
    attributes: dict[str, str | None] = field(default_factory=dict)

    def add(self, action: str | None, attributes: Iterable[Attribute] = ()) -> None:
        """Record an action (or ``None``) and attributes."""
        if action is not None and action not in self.actions:
            self.actions.append(action)
        for attribute in attributes:
            self.type_attribute(attribute.name, attribute.type)

    def type_attribute(self, name: str, kind: str | None) -> None:
        """Record that attribute ``name`` has type ``kind`` (``None``: not known)."""
        known = self.attributes.get(name)
        if name not in self.attributes or known is None:
            self.attributes[name] = kind
        elif kind is not None and kind != known:
            self.attributes[name] = "json"

    def value(self) -> ResourceType:
        """The gathered type, attributes sorted by name."""
        return ResourceType(
            key=self.key,
            actions=tuple(self.actions),
            attributes={name: kind or "json" for name, kind in sorted(self.attributes.items())},
        )


def resource_types(found: Inventory | None, policy: Policy | None) -> tuple[ResourceType, ...]:
    """The server's resource types (list gates included), then the policy's others.

    Public components and those the guard refuses without asking the engine
    need nothing.
    """
    schemas: dict[str, ResourceSchema] = {}

    def add(request: AuthzRequest, attributes: Iterable[Attribute]) -> None:
        type_name = request.resource.type
        schemas.setdefault(type_name, ResourceSchema(key=type_name)).add(request.action, attributes)

    if found is not None:
        for row in found.components:
            if row.request is not None:
                add(row.request, row.attributes)
        families = found.families()
        for gate in found.gates:
            if gate.checked and gate.refusal is None and gate.method in families:
                add(gate.request, attributes_of(gate.request))
    if policy is not None:
        _add_policy(schemas, policy)
    return tuple(schema.value() for schema in schemas.values())


def _add_policy(schemas: dict[str, ResourceSchema], policy: Policy) -> None:
    for type_name, resource in policy.resources.items():
        schema = schemas.setdefault(type_name, ResourceSchema(key=type_name))
        for action in resource.actions:
            schema.add(action)
    for name, instance in policy.resource_instances.items():
        instance_type = schemas.get(name.partition(":")[0])
        if instance_type is not None:
            for key, value in instance.attributes.items():
                instance_type.type_attribute(key, permit_type(value))
    for resource_set in policy.resource_sets.values():
        _type_condition(schemas, [resource_set.resource], resource_set.condition)
    for user_set in policy.user_sets.values():
        targets = [
            policy.resource_sets[key].resource if key in policy.resource_sets else key
            for key in user_set.grants
        ]
        _type_condition(schemas, targets, user_set.condition)


def _type_condition(
    schemas: dict[str, ResourceSchema], types: Iterable[str], condition: Mapping[str, Any]
) -> None:
    found = [
        (name, kind)
        for side, name, kind in condition_attributes(condition)
        if side == "resource" and name not in BUILT_IN["resource"]
    ]
    for type_name in dict.fromkeys(types):
        if type_name in schemas:
            for name, kind in found:
                schemas[type_name].type_attribute(name, kind)


def user_attributes(policy: Policy | None) -> dict[str, str]:
    """User attribute name -> Permit.io type: the conditions' ``user.*`` and the users' own."""
    if policy is None:
        return {}
    schema = ResourceSchema(key="user")
    conditions = [s.condition for s in policy.resource_sets.values()]
    conditions += [s.condition for s in policy.user_sets.values()]
    for condition in conditions:
        for side, name, kind in condition_attributes(condition):
            if side == "user" and name not in BUILT_IN["user"]:
                schema.type_attribute(name, kind)
    for user in policy.users.values():
        for name, value in user.attributes.items():
            if name not in BUILT_IN["user"]:
                schema.type_attribute(name, permit_type(value))
    return dict(schema.value().attributes)


def condition_attributes(condition: Mapping[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """``(side, name, type)`` of each attribute a checked condition compares, refs included.

    ``side`` is ``user`` or ``resource``; ``type`` is ``None`` when the
    comparison does not tell it (``equals`` another attribute).
    """
    for key, value in condition.items():
        if key in ("allOf", "anyOf"):
            for part in value:
                yield from condition_attributes(part)
        elif key == "not":
            yield from condition_attributes(value)
        else:
            side, _, name = key.partition(".")
            for operator, operand in value.items():
                ref = operand.get("ref") if isinstance(operand, Mapping) else None
                attribute_type, operand_type = _OPERATORS.get(operator, (None, None))
                if operator not in _OPERATORS:  # equals, not-equals: the operand's type
                    attribute_type = operand_type = (
                        permit_type(operand) if ref is None else _ref_type(ref)
                    )
                yield side, name, attribute_type
                if isinstance(ref, str):
                    ref_side, _, ref_name = ref.partition(".")
                    yield ref_side, ref_name, operand_type


def _ref_type(ref: object) -> str | None:
    # The built-in attributes a reference may name are all strings.
    if isinstance(ref, str):
        side, _, name = ref.partition(".")
        if name in BUILT_IN.get(side, ()):
            return "string"
    return None
