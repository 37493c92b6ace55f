"""``permit-guard export``: the Permit.io schema a server needs, as API JSON or Terraform.

One resource type per type the guard asks about, with the actions it asks for
and the attributes the requests carry, the list gates included; public
components and those the guard refuses without asking need nothing. With a
policy, also the types those relate to, each type's relations and resource
roles, and the roles' derivations (see :mod:`~permit_guard.cli.rebac`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from permit_guard.cli import hcl, rebac
from permit_guard.cli.inventory import Attribute, Inventory, attributes_of, permit_type
from permit_guard.engines.local.policy import Policy
from permit_guard.model import AuthzRequest

__all__ = ["ResourceSchema", "permit_api_json", "schema_of", "terraform"]


@dataclass(kw_only=True, slots=True)
class ResourceSchema:
    """One resource type the server needs in Permit.io.

    Attributes:
        key: The resource type.
        actions: Its actions, in the order the server uses them.
        attributes: Attribute name -> Permit.io type (``json`` when components disagree).
    """

    key: str
    actions: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)

    def add(self, action: str | None, attributes: Iterable[Attribute] = ()) -> None:
        """Record one request's action and attributes (or a policy's action, or attributes)."""
        if action is not None and action not in self.actions:
            self.actions.append(action)
        for attribute in attributes:
            known = self.attributes.setdefault(attribute.name, attribute.type)
            if known != attribute.type:
                self.attributes[attribute.name] = "json"


def schema_of(found: Inventory, policy: Policy | None = None) -> list[ResourceSchema]:
    """The resource types, actions and attributes the server's requests use.

    Includes the list gates of the kinds of component the server has (unless
    bypassed). Public components and those denied without asking the engine
    need nothing. With a policy, the types the server's types relate to are
    added, and each type the policy declares gets the policy's actions (its
    resource roles may grant them) and the attributes of its instances.
    """
    schemas: dict[str, ResourceSchema] = {}

    def add(request: AuthzRequest, attributes: Iterable[Attribute]) -> None:
        type_name = request.resource.type
        schemas.setdefault(type_name, ResourceSchema(key=type_name)).add(request.action, attributes)

    for row in found.components:
        if row.request is not None:
            add(row.request, row.attributes)
    families = found.families()
    for gate in found.gates:
        if gate.checked and gate.refusal is None and gate.method in families:
            add(gate.request, attributes_of(gate.request))
    if policy is not None:
        _add_policy(schemas, policy)
    return list(schemas.values())


def _add_policy(schemas: dict[str, ResourceSchema], policy: Policy) -> None:
    """The types the server's relate to, and each type's actions and instance attributes."""
    for type_name in rebac.needed_types(policy, schemas):
        schemas[type_name] = ResourceSchema(key=type_name)
    for schema in schemas.values():
        resource = policy.resources.get(schema.key)
        for action in resource.actions if resource is not None else ():
            schema.add(action)
    for name, instance in policy.resource_instances.items():
        instance_type = schemas.get(name.partition(":")[0])
        if instance_type is not None:
            instance_type.add(
                None,
                (Attribute(name=k, type=permit_type(v)) for k, v in instance.attributes.items()),
            )


def permit_api_json(found: Inventory, policy: Policy | None = None) -> dict[str, Any]:
    """The schema as Permit.io API requests, like ``docs/example_policies/permit-api.json``.

    With a policy, the requests that create its relations, resource roles and
    derivations follow the resource types.
    """
    requests = []
    schemas = schema_of(found, policy)
    for schema in schemas:
        body: dict[str, Any] = {
            "key": schema.key,
            "name": schema.key,
            "actions": {action: {"name": action} for action in schema.actions},
        }
        if schema.attributes:
            body["attributes"] = {
                name: {"type": kind} for name, kind in sorted(schema.attributes.items())
            }
        requests.append(
            {"method": "POST", "path": "/schema/{proj_id}/{env_id}/resources", "body": body}
        )
    then = "Then create the roles, resource sets and user sets of your policy."
    if policy is not None:
        requests += rebac.api_requests(rebac.rebac_of(policy, [s.key for s in schemas]))
        then = (
            "The relations, resource roles and role derivations of the policy follow the "
            "resource types, each after what it names; then create its tenant roles, resource "
            f"sets and user sets. {_DATA}"
        )
    return {
        "description": (
            f"The resource types the MCP server {found.server_name!r} needs in Permit.io, as "
            "API requests. Paths are under https://api.permit.io/v2 with your "
            "{proj_id}/{env_id}; send each body with Authorization: Bearer <your API key>. " + then
        ),
        "requests": requests,
    }


_DATA = (
    "Resource instances, relationship tuples and role assignments are data, not schema: sync "
    "them with permit.api.resource_instances.create, permit.api.relationship_tuples.create "
    "and permit.api.role_assignments.assign."
)


def terraform(found: Inventory, policy: Policy | None = None) -> str:
    """The schema as ``permitio_resource`` blocks for Permit.io's Terraform provider.

    With a policy, its relations, resource roles and derivations follow, as
    ``permitio_relation``, ``permitio_role`` and ``permitio_role_derivation`` blocks.
    """
    lines = [
        f"# The resource types the MCP server {found.server_name!r} needs in Permit.io",
        "# (provider permitio/permit-io; see docs/example_policies/permit.tf for the provider",
    ]
    if policy is None:
        lines.append("# block). Add your roles, resource sets and user sets beside them.")
    else:
        lines += [
            "# block), with the relations, resource roles and role derivations of the policy.",
            "# Add its tenant roles, resource sets and user sets beside them. Resource instances,",
            "# relationship tuples and role assignments are data: sync them with",
            "# permit.api.resource_instances.create, permit.api.relationship_tuples.create and",
            "# permit.api.role_assignments.assign.",
        ]
    schemas = schema_of(found, policy)
    for schema in schemas:
        lines += ["", f'resource "permitio_resource" "{hcl.label(schema.key)}" {{']
        lines += hcl.aligned([("key", hcl.string(schema.key)), ("name", hcl.string(schema.key))])
        lines.append("  actions = {")
        lines += hcl.aligned(
            [
                (hcl.string(action), f"{{ name = {hcl.string(action)} }}")
                for action in schema.actions
            ],
            indent="    ",
        )
        lines.append("  }")
        if schema.attributes:
            lines.append("  attributes = {")
            lines += hcl.aligned(
                [
                    (
                        hcl.string(name),
                        f"{{ name = {hcl.string(name)}, type = {hcl.string(kind)} }}",
                    )
                    for name, kind in sorted(schema.attributes.items())
                ],
                indent="    ",
            )
            lines.append("  }")
        lines.append("}")
    if policy is not None:
        lines += rebac.terraform(rebac.rebac_of(policy, [s.key for s in schemas]))
    return "\n".join(lines) + "\n"
