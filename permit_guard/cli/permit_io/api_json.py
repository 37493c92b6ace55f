"""The export as Permit.io API requests: one list of bodies per endpoint, in creation order.

See :mod:`~permit_guard.cli.permit_io.endpoints` for the lists, their paths
and the ``permit.api.models`` class of each body.
"""

from __future__ import annotations

from typing import Any

from permit_guard.cli.permit_io.endpoints import ENDPOINTS
from permit_guard.cli.permit_io.records import PermitExport, SetRule

__all__ = ["api_json"]


def api_json(export: PermitExport) -> dict[str, Any]:
    """``{"description", "endpoints", <one list per endpoint>}``, ready for ``json.dumps``."""
    lists: dict[str, list[Any]] = {
        "tenants": [{"key": key, "name": key} for key in export.tenants],
        "resources": [
            {
                "key": r.key,
                "name": r.key,
                "actions": {action: {"name": action} for action in r.actions},
            }
            | (
                {"attributes": {n: {"type": t} for n, t in r.attributes.items()}}
                if r.attributes
                else {}
            )
            for r in export.resources
        ],
        "user_attributes": [{"key": n, "type": t} for n, t in export.user_attributes.items()],
        "roles": [
            {"key": r.key, "name": r.key, "permissions": list(r.permissions)} for r in export.roles
        ],
        "resource_relations": [
            {
                "resource": r.resource,
                "body": {"key": r.key, "name": r.key, "subject_resource": r.subject},
            }
            for r in export.relations
        ],
        "resource_roles": [
            {
                "resource": r.resource,
                "body": {"key": r.key, "name": r.key, "permissions": list(r.permissions)},
            }
            for r in export.resource_roles
        ],
        "role_derivations": [
            {
                "resource": d.resource,
                "role": d.role,
                "body": {
                    "role": d.from_role,
                    "on_resource": d.on_resource,
                    "linked_by_relation": d.linked_by,
                },
            }
            for d in export.derivations
        ],
        "condition_sets": [
            {"key": s.key, "name": s.key, "type": s.kind}
            | ({"resource_id": s.resource} if s.resource is not None else {})
            | {"conditions": dict(s.conditions)}
            for s in export.condition_sets
        ],
        "condition_set_rules": [_rule(rule) for rule in export.rules],
        "users": [
            {"key": u.key} | ({"attributes": dict(u.attributes)} if u.attributes else {})
            for u in export.users
        ],
        "resource_instances": [
            {"key": i.key, "resource": i.resource, "tenant": i.tenant}
            | ({"attributes": dict(i.attributes)} if i.attributes else {})
            for i in export.instances
        ],
        "role_assignments": [
            {"user": a.user, "role": a.role, "tenant": a.tenant}
            | ({"resource_instance": a.instance} if a.instance is not None else {})
            for a in export.assignments
        ],
        "relationship_tuples": [
            {"subject": t.subject, "relation": t.relation, "object": t.object, "tenant": t.tenant}
            for t in export.links
        ],
    }
    return {
        "description": _description(export),
        "endpoints": {
            e.key: {"method": e.method, "path": e.path, "sdk": e.sdk, "model": e.model}
            for e in ENDPOINTS
        },
        **{e.key: lists[e.key] for e in ENDPOINTS},
    }


def _rule(rule: SetRule) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_set": rule.user_set,
        "permission": rule.permission,
        "resource_set": rule.resource_set,
    }
    if rule.is_role:
        body["is_role"] = True
    if rule.is_resource:
        body["is_resource"] = True
    return body


def _description(export: PermitExport) -> str:
    what = []
    if export.server is not None:
        what.append(f"the resource types the MCP server {export.server!r} needs")
    if export.policy is not None:
        what.append(f"the whole policy {export.policy}")
    head = f"Permit.io API requests for {' and '.join(what)}."
    steps = (
        " Send the lists in this order, each item to its endpoint (under https://api.permit.io,"
        " with your {proj_id}/{env_id} and Authorization: Bearer <your API key>): an item with a"
        " 'body' fills the path's {resource} and {role} from its other keys. The tenant"
        " 'default' is not created: every Permit.io environment has it."
    )
    if export.policy is None:
        return head + steps + " Then create the roles, resource sets and user sets of your policy."
    return head + steps
