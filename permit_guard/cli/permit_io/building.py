"""Everything one ``permit-guard export`` creates in Permit.io, gathered from a server and a policy.

Example::

    from permit_guard.cli.permit_io import api_json, build_export
    from permit_guard.engines.local.reading import read_policy_file

    policy = read_policy_file("examples/policy.yaml").policy
    export = build_export(None, policy, policy_source="examples/policy.yaml")
    print([rule.permission for rule in export.rules])   # ['mcp_server:refund']
    print(api_json(export)["roles"][1])
"""

from __future__ import annotations

from permit_guard.cli.inventory import Inventory
from permit_guard.cli.permit_io import access, directory
from permit_guard.cli.permit_io.keys import key_problems
from permit_guard.cli.permit_io.records import PermitExport
from permit_guard.cli.permit_io.schema import resource_types, user_attributes
from permit_guard.engines.local.policy import Policy
from permit_guard.exceptions import PermitGuardError

__all__ = ["ExportError", "build_export"]


class ExportError(PermitGuardError, ValueError):
    """An export Permit.io would refuse.

    Attributes:
        problems: One line per problem, each naming the object at fault.
    """

    def __init__(self, problems: list[str]) -> None:
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"cannot export to Permit.io:\n{listing}")
        self.problems = problems


def build_export(
    found: Inventory | None, policy: Policy | None, *, policy_source: str | None = None
) -> PermitExport:
    """The Permit.io objects for a server's requests, a checked policy, or both.

    Args:
        found: The server's inventory (its resource types, actions and attributes).
        policy: A policy that loaded (its model and its facts).
        policy_source: How to name the policy in the output.

    Returns:
        The export.

    Raises:
        ExportError: Naming every key Permit.io would refuse.
    """
    server = found.server_name if found is not None else None
    resources = resource_types(found, policy)
    if policy is None:
        export = PermitExport(server=server, resources=resources)
    else:
        export = PermitExport(
            server=server,
            policy=policy_source,
            tenants=directory.tenants(policy),
            resources=resources,
            user_attributes=user_attributes(policy),
            roles=access.tenant_roles(policy),
            relations=access.relations(policy),
            resource_roles=access.resource_roles(policy),
            derivations=access.derivations(policy),
            condition_sets=access.condition_sets(policy),
            rules=access.rules(policy),
            users=directory.users(policy),
            instances=directory.instances(policy),
            assignments=directory.assignments(policy),
            links=directory.links(policy),
        )
    problems = key_problems(export)
    if problems:
        raise ExportError(problems)
    return export
