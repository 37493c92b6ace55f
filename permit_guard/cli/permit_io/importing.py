"""``permit-guard policy import``: a JSON export read back into a local policy.

The inverse of :func:`~permit_guard.cli.permit_io.api_json.api_json`: resource
types with their relations, resource roles and derivations; roles with their
permissions; condition sets as resource sets and user sets, and each
condition set rule as a grant (a rule on ``__autogen_<role>`` or with
``is_role`` is the role's, one on ``__autogen_<type>`` or with
``is_resource`` is on the whole type); users with their attributes; role
assignments per tenant and on instances; instances; tuples. Permit.io's
attribute declarations and tenants carry no decision and are only checked
against what names them.

Every reference is checked where it stands, e.g.
``role_assignments[3].role: unknown role 'admn' (did you mean 'admin'? ...)``;
the policy made is then loaded like a policy file, so it is one the engine takes.

Example::

    import json
    from permit_guard.cli.permit_io.importing import import_policy

    with open("export.json") as f:
        policy = import_policy(json.load(f), source="export.json")
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from permit_guard.cli.permit_io.import_shape import ExportIn, RuleIn, shape_problems
from permit_guard.engines.local.references import unknown
from permit_guard.exceptions import PermitGuardError
from permit_guard.model import DEFAULT_TENANT

__all__ = ["ImportFileError", "import_policy"]

#: Permit.io's own condition sets: a role's user set, a resource type's resource set.
AUTOGEN: Final = "__autogen_"


class ImportFileError(PermitGuardError, ValueError):
    """An export that cannot be imported.

    Attributes:
        source: The file.
        problems: One line per problem, each starting with the item at fault.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"cannot import {source}:\n{listing}")
        self.source = source
        self.problems = problems


def import_policy(document: object, *, source: str) -> dict[str, Any]:
    """The local policy (as a mapping, in the policy file's form) of a JSON export.

    Args:
        document: The parsed JSON export.
        source: How errors name it.

    Returns:
        The policy: ``resources``, ``resource_sets``, ``user_sets``, ``roles``,
        ``users``, ``resource_instances``, ``relationships`` (empty ones left out).

    Raises:
        ImportFileError: Naming every item at fault.
    """
    if not isinstance(document, dict):
        raise ImportFileError(
            source, [f"top level: expected a JSON object, not {type(document).__name__}"]
        )
    try:
        shape = ExportIn.model_validate(document)
    except ValidationError as exc:
        raise ImportFileError(source, shape_problems(exc)) from None
    builder = _Builder()
    builder.build(shape)
    if builder.problems:
        raise ImportFileError(source, builder.problems)
    return builder.policy()


class _Builder:
    """The policy being built, and the problems found so far."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.resources: dict[str, dict[str, Any]] = {}
        self.resource_sets: dict[str, dict[str, Any]] = {}
        self.user_sets: dict[str, dict[str, Any]] = {}
        self.roles: dict[str, dict[str, list[str]]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.instances: dict[str, dict[str, Any]] = {}
        self.relationships: list[dict[str, str]] = []
        self.tenants: list[str] = [DEFAULT_TENANT]

    def fail(self, where: str, problem: str) -> None:
        self.problems.append(f"{where}: {problem}")

    def build(self, shape: ExportIn) -> None:
        self.tenants += [t.key for t in shape.tenants]
        self._schema(shape)
        self._access(shape)
        self._directory(shape)

    # -- resource types, relations, resource roles ----------------------------------------------

    def _type(self, where: str, name: str) -> dict[str, Any] | None:
        found = self.resources.get(name)
        if found is None:
            self.fail(where, unknown("resource type", name, list(self.resources)))
        return found

    def _actions_known(self, where: str, type_name: str, actions: list[str]) -> bool:
        known = self.resources[type_name]["actions"]
        bad = [a for a in actions if a not in known]
        for action in bad:
            self.fail(where, unknown("action", action, known, of=f" of {type_name!r}"))
        return not bad

    def _schema(self, shape: ExportIn) -> None:
        for i, r in enumerate(shape.resources):
            if r.key in self.resources:
                self.fail(f"resources[{i}].key", f"resource type {r.key!r} is listed twice")
            self.resources[r.key] = {"actions": list(r.actions), "relations": {}, "roles": {}}
        for i, relation in enumerate(shape.resource_relations):
            where = f"resource_relations[{i}]"
            found = self._type(f"{where}.resource", relation.resource)
            subject = relation.body.subject_resource
            if found is not None and self._type(f"{where}.body.subject_resource", subject):
                found["relations"][relation.body.key] = subject
        for i, role in enumerate(shape.resource_roles):
            where = f"resource_roles[{i}]"
            found = self._type(f"{where}.resource", role.resource)
            permissions = role.body.permissions
            if found is not None and self._actions_known(
                f"{where}.body.permissions", role.resource, permissions
            ):
                found["roles"][role.body.key] = {"permissions": list(permissions)}
        for i, d in enumerate(shape.role_derivations):
            where = f"role_derivations[{i}]"
            target = self._resource_role(where, d.resource, d.role, "resource", "role")
            source = self._resource_role(
                f"{where}.body", d.body.on_resource, d.body.role, "on_resource", "role"
            )
            found = self.resources.get(d.resource)
            if found is not None and d.body.linked_by_relation not in found["relations"]:
                self.fail(
                    f"{where}.body.linked_by_relation",
                    unknown(
                        "relation",
                        d.body.linked_by_relation,
                        list(found["relations"]),
                        of=f" on resource type {d.resource!r}",
                    ),
                )
            elif target is not None and source is not None:
                target.setdefault("granted_to", {"users_with_role": []})["users_with_role"].append(
                    {
                        "role": d.body.role,
                        "on_resource": d.body.on_resource,
                        "linked_by_relation": d.body.linked_by_relation,
                    }
                )

    def _resource_role(
        self, where: str, type_name: str, role: str, type_field: str, role_field: str
    ) -> dict[str, Any] | None:
        found = self._type(f"{where}.{type_field}", type_name)
        if found is None:
            return None
        if role not in found["roles"]:
            self.fail(
                f"{where}.{role_field}",
                unknown("resource role", role, list(found["roles"]), of=f" on {type_name!r}"),
            )
            return None
        role_entry: dict[str, Any] = found["roles"][role]
        return role_entry

    # -- roles, condition sets, rules -----------------------------------------------------------

    def _permission(self, where: str, permission: str) -> tuple[str, str] | None:
        type_name, colon, action = permission.partition(":")
        if not colon or not type_name or not action:
            self.fail(where, f"expected '<resource type>:<action>', not {permission!r}")
            return None
        if self._type(where, type_name) is None or not self._actions_known(
            where, type_name, [action]
        ):
            return None
        return type_name, action

    def _access(self, shape: ExportIn) -> None:
        for i, role in enumerate(shape.roles):
            grants = self.roles.setdefault(role.key, {})
            for j, permission in enumerate(role.permissions):
                found = self._permission(f"roles[{i}].permissions[{j}]", permission)
                if found is not None:
                    _add(grants, found[0], found[1])
        for i, s in enumerate(shape.condition_sets):
            where = f"condition_sets[{i}]"
            if s.key in self.resource_sets or s.key in self.user_sets:
                self.fail(f"{where}.key", f"condition set {s.key!r} is listed twice")
            if s.type == "userset":
                self.user_sets[s.key] = {"condition": s.conditions, "grants": {}}
            elif s.resource_id is None:
                self.fail(f"{where}.resource_id", "a resource set needs its resource type")
            elif self._type(f"{where}.resource_id", s.resource_id) is not None:
                self.resource_sets[s.key] = {"resource": s.resource_id, "condition": s.conditions}
        for i, rule in enumerate(shape.condition_set_rules):
            self._rule(f"condition_set_rules[{i}]", rule)

    def _rule(self, where: str, rule: RuleIn) -> None:
        found = self._permission(f"{where}.permission", rule.permission)
        is_role = rule.is_role or rule.user_set.startswith(AUTOGEN)
        subject = rule.user_set.removeprefix(AUTOGEN)
        grants: dict[str, list[str]] | None
        if is_role:
            grants = self.roles.get(subject)
            if grants is None:
                self.fail(f"{where}.user_set", unknown("role", subject, list(self.roles)))
        else:
            user_set = self.user_sets.get(subject)
            grants = None if user_set is None else user_set["grants"]
            if grants is None:
                self.fail(f"{where}.user_set", unknown("user set", subject, list(self.user_sets)))
        is_type = rule.is_resource or rule.resource_set.startswith(AUTOGEN)
        target = rule.resource_set.removeprefix(AUTOGEN)
        if is_type:
            target_type = target if self._type(f"{where}.resource_set", target) else None
        elif target in self.resource_sets:
            target_type = self.resource_sets[target]["resource"]
        else:
            self.fail(
                f"{where}.resource_set", unknown("resource set", target, list(self.resource_sets))
            )
            target_type = None
        if found is None or grants is None or target_type is None:
            return
        if found[0] != target_type:
            self.fail(
                f"{where}.permission",
                f"{rule.permission!r} is not a permission on {target_type!r}, the type of "
                f"{target!r}",
            )
            return
        _add(grants, target, found[1])

    # -- users, instances, assignments, tuples --------------------------------------------------

    def _directory(self, shape: ExportIn) -> None:
        for i, user in enumerate(shape.users):
            if user.key in self.users:
                self.fail(f"users[{i}].key", f"user {user.key!r} is listed twice")
            attributes = dict(user.attributes)
            for name in ("email", "first_name", "last_name"):
                if getattr(user, name) is not None:
                    attributes.setdefault(name, getattr(user, name))
            self.users[user.key] = {"attributes": attributes, "roles": {}, "resource_roles": {}}
        for i, instance in enumerate(shape.resource_instances):
            where = f"resource_instances[{i}]"
            name = f"{instance.resource}:{instance.key}"
            if name in self.instances:
                self.fail(where, f"resource instance {name!r} is listed twice")
            if self._type(f"{where}.resource", instance.resource) is not None and self._tenant(
                f"{where}.tenant", instance.tenant
            ):
                self.instances[name] = {
                    "tenant": instance.tenant,
                    "attributes": instance.attributes,
                }
        for i, a in enumerate(shape.role_assignments):
            self._assignment(
                f"role_assignments[{i}]", a.user, a.role, a.tenant, a.resource_instance
            )
        for i, t in enumerate(shape.relationship_tuples):
            where = f"relationship_tuples[{i}]"
            subject = self._instance(f"{where}.subject", t.subject)
            target = self._instance(f"{where}.object", t.object)
            if subject is None or target is None:
                continue
            relations = self.resources[target]["relations"]
            if relations.get(t.relation) != subject:
                linked = ", ".join(f"{k} -> {v}" for k, v in relations.items()) or "none"
                self.fail(
                    f"{where}.relation",
                    f"resource type {target!r} has no relation {t.relation!r} to a {subject!r}"
                    f" (its relations: {linked})",
                )
                continue
            self.relationships.append(
                {"subject": t.subject, "relation": t.relation, "object": t.object}
            )

    def _tenant(self, where: str, tenant: str) -> bool:
        if tenant in self.tenants:
            return True
        self.fail(where, unknown("tenant", tenant, self.tenants))
        return False

    def _instance(self, where: str, name: str) -> str | None:
        """The type of instance ``name``; ``None`` (said) when not ``<known type>:<key>``."""
        type_name, colon, key = name.partition(":")
        if not colon or not type_name or not key:
            self.fail(where, f"expected '<resource type>:<instance key>', not {name!r}")
            return None
        return type_name if self._type(where, type_name) is not None else None

    def _assignment(
        self, where: str, user: str, role: str, tenant: str | None, instance: str | None
    ) -> None:
        entry = self.users.get(user)
        if entry is None:
            self.fail(f"{where}.user", unknown("user", user, list(self.users)))
        tenant_known = self._tenant(f"{where}.tenant", tenant or DEFAULT_TENANT)
        if instance is None:
            if role not in self.roles:
                self.fail(f"{where}.role", unknown("role", role, list(self.roles)))
            elif entry is not None and tenant_known:
                _add(entry["roles"], tenant or DEFAULT_TENANT, role)
            return
        type_name = self._instance(f"{where}.resource_instance", instance)
        known = type_name is not None and self._resource_role(
            where, type_name, role, "resource_instance", "role"
        )
        if known and entry is not None:
            _add(entry["resource_roles"], instance, role)

    # -- the policy -----------------------------------------------------------------------------

    def policy(self) -> dict[str, Any]:
        """The policy in the file's form, short forms where they say the same."""
        policy: dict[str, Any] = {
            "resources": {k: _resource(v) for k, v in self.resources.items()},
            "resource_sets": self.resource_sets,
            "user_sets": {
                k: {"condition": v["condition"], **({"grants": v["grants"]} if v["grants"] else {})}
                for k, v in self.user_sets.items()
            },
            "roles": {k: {"grants": v} if v else {} for k, v in self.roles.items()},
            "users": {k: _user(v) for k, v in self.users.items()},
            "resource_instances": {
                k: {
                    "tenant": v["tenant"],
                    **({"attributes": v["attributes"]} if v["attributes"] else {}),
                }
                for k, v in self.instances.items()
            },
            "relationships": self.relationships,
        }
        return {section: entries for section, entries in policy.items() if entries}


def _add(grants: dict[str, list[str]], key: str, item: str) -> None:
    items = grants.setdefault(key, [])
    if item not in items:
        items.append(item)


def _resource(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"actions": entry["actions"]}
    if entry["relations"]:
        out["relations"] = entry["relations"]
    if entry["roles"]:
        # A role without derivations in the short form: its list of actions.
        out["roles"] = {
            k: v if "granted_to" in v else v["permissions"] for k, v in entry["roles"].items()
        }
    return out


def _user(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    roles = entry["roles"]
    if roles:
        out["roles"] = roles[DEFAULT_TENANT] if list(roles) == [DEFAULT_TENANT] else roles
    if entry["attributes"]:
        out["attributes"] = entry["attributes"]
    if entry["resource_roles"]:
        out["resource_roles"] = entry["resource_roles"]
    return out
