"""The export as Terraform for Permit.io's provider (``permitio/permit-io``).

Blocks name each other by reference, so Terraform creates each after what it
names: ``permitio_tenant``, ``permitio_resource``, ``permitio_user_attribute``,
``permitio_role`` (a tenant role; with ``resource``, a resource role),
``permitio_relation``, ``permitio_role_derivation``, ``permitio_resource_set``,
``permitio_user_set``, ``permitio_condition_set_rule``,
``permitio_resource_instance``, ``permitio_role_assignment`` and
``permitio_resource_instance_role_assignment``. A rule of a role on a
resource set names the role's own user set, ``"__autogen_<role>"``; a rule of
a user set on a whole type, the type's own resource set, ``"__autogen_<type>"``
(the provider has no ``is_role`` / ``is_resource``).

The provider has no resource for users or for relationship tuples: they are
listed in comments and are in the JSON export only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from permit_guard.cli import hcl
from permit_guard.cli.permit_io.records import PermitExport, ResourceType
from permit_guard.cli.permit_io.terraform_facts import directory_blocks
from permit_guard.cli.permit_io.terraform_labels import Names

__all__ = ["terraform"]


def terraform(export: PermitExport) -> str:
    """The whole export as one Terraform file."""
    names = Names(export)
    lines = _header(export)
    for tenant in export.tenants:
        lines += _block(
            "permitio_tenant",
            names.tenant(tenant),
            [("key", hcl.string(tenant)), ("name", hcl.string(tenant))],
        )
    for resource in export.resources:
        lines += _resource(resource, names.resource(resource.key))
    for key, kind in export.user_attributes.items():
        lines += _block(
            "permitio_user_attribute",
            names.user_attribute(key),
            [
                ("key", hcl.string(key)),
                ("type", hcl.string(kind)),
                ("description", hcl.string("a user attribute of the policy")),
            ],
        )
    for role in export.roles:
        types = dict.fromkeys(p.partition(":")[0] for p in role.permissions)
        pairs = [("key", hcl.string(role.key)), ("name", hcl.string(role.key))]
        pairs.append(("permissions", _list(hcl.string(p) for p in role.permissions)))
        if types:
            pairs.append(
                ("depends_on", _list(names.resource_key(t)[: -len(".key")] for t in types))
            )
        lines += _block("permitio_role", names.role(role.key), pairs)
    for relation in export.relations:
        lines += _block(
            "permitio_relation",
            names.relation(relation.resource, relation.key),
            [
                ("key", hcl.string(relation.key)),
                ("name", hcl.string(relation.key)),
                ("subject_resource", names.resource_key(relation.subject)),
                ("object_resource", names.resource_key(relation.resource)),
            ],
        )
    for resource_role in export.resource_roles:
        lines += _block(
            "permitio_role",
            names.role(resource_role.key, resource_role.resource),
            [
                ("key", hcl.string(resource_role.key)),
                ("name", hcl.string(resource_role.key)),
                ("resource", names.resource_key(resource_role.resource)),
                ("permissions", _list(hcl.string(p) for p in resource_role.permissions)),
            ],
        )
    for d in export.derivations:
        lines += _block(
            "permitio_role_derivation",
            names.derivation(d),
            [
                ("role", names.role_key(d.from_role, d.on_resource)),
                ("on_resource", names.resource_key(d.on_resource)),
                ("to_role", names.role_key(d.role, d.resource)),
                ("resource", names.resource_key(d.resource)),
                ("linked_by", names.relation_key(d.resource, d.linked_by)),
            ],
        )
    lines += _condition_sets(export, names)
    lines += directory_blocks(export, names)
    return "\n".join(lines) + "\n"


def _header(export: PermitExport) -> list[str]:
    if export.policy is None:
        return [
            f"# The resource types the MCP server {export.server!r} needs in Permit.io",
            "# (provider permitio/permit-io; see docs/example_policies/permit.tf for the provider",
            "# block). Add your roles, resource sets and user sets beside them.",
        ]
    lines = [f"# The policy {export.policy} in Permit.io"]
    if export.server is not None:
        lines.append(f"# with the resource types the MCP server {export.server!r} needs")
    return [
        *lines,
        "# (provider permitio/permit-io; see docs/example_policies/permit.tf for the provider",
        "# block). The provider has no resource for users or relationship tuples: they are",
        "# listed in comments below and are in the JSON export (--format json) only. Create",
        "# the users before applying (the role assignments name them), the tuples after.",
    ]


def _resource(resource: ResourceType, label: str) -> list[str]:
    lines = ["", f'resource "permitio_resource" "{label}" {{']
    lines += hcl.aligned([("key", hcl.string(resource.key)), ("name", hcl.string(resource.key))])
    lines.append("  actions = {")
    lines += hcl.aligned(
        [(hcl.string(a), f"{{ name = {hcl.string(a)} }}") for a in resource.actions],
        indent="    ",
    )
    lines.append("  }")
    if resource.attributes:
        lines.append("  attributes = {")
        lines += hcl.aligned(
            [
                (hcl.string(n), f"{{ name = {hcl.string(n)}, type = {hcl.string(t)} }}")
                for n, t in resource.attributes.items()
            ],
            indent="    ",
        )
        lines.append("  }")
    lines.append("}")
    return lines


def _condition_sets(export: PermitExport, names: Names) -> list[str]:
    lines: list[str] = []
    for s in export.condition_sets:
        pairs = [("key", hcl.string(s.key)), ("name", hcl.string(s.key))]
        if s.resource is not None:
            pairs.append(("resource", names.resource_key(s.resource)))
        pairs.append(("conditions", f"jsonencode({hcl.value(dict(s.conditions), '  ')})"))
        used = [
            f"permitio_user_attribute.{names.user_attribute(a)}"
            for a in names.user_attributes_of(s)
        ]
        if used:
            pairs.append(("depends_on", _list(used)))
        kind = "permitio_resource_set" if s.kind == "resourceset" else "permitio_user_set"
        lines += _block(kind, names.condition_set(s.key), pairs)
    for rule in export.rules:
        user_set = (
            f'"__autogen_${{{names.role_key(rule.user_set)}}}"'
            if rule.is_role
            else names.condition_set_key(rule.user_set, "permitio_user_set")
        )
        resource_set = (
            f'"__autogen_${{{names.resource_key(rule.resource_set)}}}"'
            if rule.is_resource
            else names.condition_set_key(rule.resource_set, "permitio_resource_set")
        )
        lines += _block(
            "permitio_condition_set_rule",
            names.rule(rule),
            [
                ("user_set", user_set),
                ("permission", hcl.string(rule.permission)),
                ("resource_set", resource_set),
            ],
        )
    return lines


def _block(kind: str, label: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
    return ["", f'resource "{kind}" "{label}" {{', *hcl.aligned(pairs), "}"]


def _list(items: Iterable[str], indent: str = "  ") -> str:
    """An HCL list of expressions: on one line when short, else one item a line."""
    listed = list(items)
    short = "[" + ", ".join(listed) + "]"
    if len(short) <= _WIDTH:
        return short
    return "[\n" + "".join(f"{indent}  {item},\n" for item in listed) + f"{indent}]"


#: Where a list breaks over lines.
_WIDTH = 72
