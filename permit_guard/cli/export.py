"""``permit-guard export``: the Permit.io schema a server needs, as API JSON or Terraform.

One resource type per type the guard asks about, with the actions it asks for
and the attributes the requests carry, the list gates included; public
components and those the guard refuses without asking need nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from permit_guard.cli.inventory import Attribute, Inventory, attributes_of
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

    def add(self, action: str, attributes: Iterable[Attribute]) -> None:
        """Record one request's action and attributes."""
        if action not in self.actions:
            self.actions.append(action)
        for attribute in attributes:
            known = self.attributes.setdefault(attribute.name, attribute.type)
            if known != attribute.type:
                self.attributes[attribute.name] = "json"


def schema_of(found: Inventory) -> list[ResourceSchema]:
    """The resource types, actions and attributes the server's requests use.

    Includes the list gates of the kinds of component the server has (unless
    bypassed). Public components and those denied without asking the engine
    need nothing.
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
    return list(schemas.values())


def permit_api_json(found: Inventory) -> dict[str, Any]:
    """The schema as Permit.io API requests, like ``docs/example_policies/permit-api.json``."""
    requests = []
    for schema in schema_of(found):
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
    return {
        "description": (
            f"The resource types the MCP server {found.server_name!r} needs in Permit.io, as "
            "API requests. Paths are under https://api.permit.io/v2 with your "
            "{proj_id}/{env_id}; send each body with Authorization: Bearer <your API key>. "
            "Then create the roles, resource sets and user sets of your policy."
        ),
        "requests": requests,
    }


def terraform(found: Inventory) -> str:
    """The schema as ``permitio_resource`` blocks for Permit.io's Terraform provider."""
    lines = [
        f"# The resource types the MCP server {found.server_name!r} needs in Permit.io",
        "# (provider permitio/permit-io; see docs/example_policies/permit.tf for the provider",
        "# block). Add your roles, resource sets and user sets beside them.",
    ]
    for schema in schema_of(found):
        lines += ["", f'resource "permitio_resource" "{_hcl_label(schema.key)}" {{']
        lines += _hcl_aligned([("key", _hcl_string(schema.key)), ("name", _hcl_string(schema.key))])
        lines.append("  actions = {")
        lines += _hcl_aligned(
            [
                (_hcl_string(action), f"{{ name = {_hcl_string(action)} }}")
                for action in schema.actions
            ],
            indent="    ",
        )
        lines.append("  }")
        if schema.attributes:
            lines.append("  attributes = {")
            lines += _hcl_aligned(
                [
                    (
                        _hcl_string(name),
                        f"{{ name = {_hcl_string(name)}, type = {_hcl_string(kind)} }}",
                    )
                    for name, kind in sorted(schema.attributes.items())
                ],
                indent="    ",
            )
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _hcl_aligned(pairs: Sequence[tuple[str, str]], *, indent: str = "  ") -> list[str]:
    """``key = value`` lines with the ``=`` aligned, as ``terraform fmt`` writes them."""
    width = max((len(key) for key, _ in pairs), default=0)
    return [f"{indent}{key.ljust(width)} = {value}" for key, value in pairs]


def _hcl_string(text: str) -> str:
    # JSON string escapes are HCL's; HCL also reads ${ and %{ as templates.
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def _hcl_label(key: str) -> str:
    label = "".join(c if c.isalnum() or c in "_-" else "_" for c in key)
    return label if label[:1].isalpha() or label[:1] == "_" else f"_{label}"
