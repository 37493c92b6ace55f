"""The facts of a Terraform export: instances and role assignments as blocks, the rest as comments.

The provider has ``permitio_resource_instance``, ``permitio_role_assignment``
and ``permitio_resource_instance_role_assignment``, but no resource for users
or relationship tuples: those are listed in comments (they are in the JSON
export). The users must exist before the assignments are applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from permit_guard.cli import hcl
from permit_guard.cli.permit_io.records import PermitExport
from permit_guard.cli.permit_io.terraform_labels import Names

__all__ = ["directory_blocks"]


def directory_blocks(export: PermitExport, names: Names) -> list[str]:
    """Instance and assignment blocks, with the users and tuples in comments."""
    if export.policy is None:
        return []
    lines: list[str] = []
    for instance in export.instances:
        name = f"{instance.resource}:{instance.key}"
        pairs = [
            ("key", hcl.string(instance.key)),
            ("resource", names.resource_key(instance.resource)),
            ("tenant", names.tenant_key(instance.tenant)),
        ]
        if instance.attributes:
            pairs.append(
                ("attributes", f"jsonencode({hcl.value(dict(instance.attributes), '  ')})")
            )
        lines += _block("permitio_resource_instance", names.instance(name), pairs)
    if export.users:
        lines += [
            "",
            f"# Users ({len(export.users)}): the provider has no resource for them. Create them",
            '# from the JSON export\'s "users" (permit.api.users.create) before applying:',
            *_wrapped([u.key for u in export.users]),
        ]
    for a in export.assignments:
        if a.instance is None:
            lines += _block(
                "permitio_role_assignment",
                names.assignment(f"{a.user}__{a.role}__{a.tenant}"),
                [
                    ("user", hcl.string(a.user)),
                    ("role", names.role_key(a.role)),
                    ("tenant", names.tenant_key(a.tenant)),
                ],
            )
            continue
        type_name = a.instance.partition(":")[0]
        lines += _block(
            "permitio_resource_instance_role_assignment",
            names.assignment(f"{a.user}__{a.role}__{a.instance}".replace(":", "__")),
            [
                ("user", hcl.string(a.user)),
                ("role", names.role_key(a.role, type_name)),
                ("resource", names.resource_key(type_name)),
                ("resource_instance", names.instance_key(a.instance)),
                ("tenant", names.tenant_key(a.tenant)),
            ],
        )
    if export.links:
        lines += [
            "",
            f"# Relationship tuples ({len(export.links)}): the provider has no resource for them.",
            '# Create them from the JSON export\'s "relationship_tuples"',
            "# (permit.api.relationship_tuples.create) after applying:",
            *(f"#   {t.subject} {t.relation} {t.object}" for t in export.links),
        ]
    return lines


def _wrapped(keys: Sequence[str], width: int = 96) -> list[str]:
    lines: list[str] = []
    line = "#  "
    for key in keys:
        if len(line) + len(key) + 2 > width and line != "#  ":
            lines.append(line.rstrip(","))
            line = "#  "
        line += f" {key},"
    lines.append(line.rstrip(","))
    return lines


def _block(kind: str, label: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
    return ["", f'resource "{kind}" "{label}" {{', *hcl.aligned(pairs), "}"]
