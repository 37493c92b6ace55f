"""``permit-guard lint``: what would go wrong, found before a request does.

Undecorated components; components the guard refuses to every caller (the
planner's own refusals: a method outside ``known_methods``, default deny, a
spec that cannot be found, unmappable arguments); components and list gates no
grant of the policy can reach; grants that name what the server never asks;
and roles that nothing in the policy grants anybody (neither an assignment nor
a derivation from one), which only runtime assignments can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from permit_guard.cli.inventory import ComponentInfo, GateInfo, Inventory
from permit_guard.engines.local.policy import WILDCARD, Policy
from permit_guard.engines.local.relations import RoleRules
from permit_guard.methods import Kind

__all__ = ["Finding", "Severity", "lint"]

_NOUNS: Mapping[Kind, str] = {
    "tool": "tool",
    "resource": "resource",
    "template": "resource template",
    "prompt": "prompt",
}


Severity = Literal["error", "warning"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One problem ``lint`` found.

    Attributes:
        kind: ``invalid-policy``, ``undecorated``, ``unreachable``,
            ``ambiguous-action``, ``dead-grant`` or ``ungrantable-role``.
        severity: ``error`` or ``warning``.
        component: The component (``tool greet``) or list method it is about.
        location: Where in the policy file, for policy findings.
        message: What is wrong, and what follows from it.
    """

    kind: str
    severity: Severity
    component: str | None
    location: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "component": self.component,
            "location": self.location,
            "message": self.message,
        }


def lint(
    found: Inventory,
    *,
    policy: Policy | None = None,
    policy_problems: Sequence[str] = (),
    policy_source: str | None = None,
) -> list[Finding]:
    """Find undecorated components and, with a policy, unreachable components and dead grants.

    Args:
        found: The server's inventory.
        policy: The validated policy, if one was given and is valid.
        policy_problems: The problems of a policy that did not load.
        policy_source: The policy file, for messages.

    Returns:
        The findings, errors first.
    """
    findings = [
        Finding(
            kind="invalid-policy",
            severity="error",
            component=None,
            location=policy_source,
            message=problem,
        )
        for problem in policy_problems
    ]
    default_deny = found.settings.default_deny
    for row in found.components:
        label = f"{row.kind} {row.name}"
        if row.guard in ("default", "default-deny"):
            findings.append(
                Finding(
                    kind="undecorated",
                    severity="error" if default_deny else "warning",
                    component=label,
                    location=None,
                    message=(
                        f"{_function(row)} has neither @require_permission nor @public: under "
                        "default deny it is hidden and denied to everyone"
                        if default_deny
                        else f"{_function(row)} has neither @require_permission nor @public: it "
                        f"is checked with the default mapping{_as_pair(row)}"
                    ),
                )
            )
        if row.guard != "default-deny" and not row.reachable:
            findings.append(
                Finding(
                    kind="ambiguous-action" if row.why == "ambiguous" else "unreachable",
                    severity="error",
                    component=label,
                    location=None,
                    message=f"the guard always denies it ({row.note})",
                )
            )
    families = found.families()
    for gate in found.gates:
        if gate.refusal is not None and gate.method in families:
            findings.append(_public_only(gate, gate.refusal))
    if policy is not None:
        findings.extend(_policy_findings(found, policy))
        findings.extend(_ungrantable_roles(policy))
    return sorted(findings, key=lambda f: f.severity != "error")


def _function(row: ComponentInfo) -> str:
    return f"{_NOUNS[row.kind]} {row.name!r}"


def _public_only(gate: GateInfo, why: str) -> Finding:
    """A list that answers everyone with the @public components only, and why."""
    return Finding(
        kind="unreachable",
        severity="warning",
        component=gate.method,
        location=None,
        message=f"{why}: {gate.method} answers everyone with the @public components only",
    )


def _as_pair(row: ComponentInfo) -> str:
    request = row.request
    return f", as {request.resource.type}:{request.action}" if request is not None else ""


def _policy_findings(found: Inventory, policy: Policy) -> list[Finding]:
    asked = {
        (row.request.resource.type, row.request.action)
        for row in found.components
        if row.request is not None
    }
    asked |= {(g.request.resource.type, g.request.action) for g in found.gates if g.checked}
    asked_types = {type_name for type_name, _ in asked}
    granted = _granted_pairs(policy)
    findings: list[Finding] = []

    for row in found.components:
        request = row.request
        if request is None:
            continue
        pair = (request.resource.type, request.action)
        if pair not in granted:
            findings.append(
                Finding(
                    kind="unreachable",
                    severity="error",
                    component=f"{row.kind} {row.name}",
                    location=None,
                    message=f"{_why_ungranted(policy, *pair)}: no role, user set or resource "
                    f"role can ever use {_function(row)}",
                )
            )
    families = found.families()
    reported: set[tuple[str, str]] = set()
    for gate in found.gates:
        pair = (gate.request.resource.type, gate.request.action)
        if not gate.checked or gate.refusal is not None or gate.method not in families:
            continue
        if pair in granted or pair in reported:
            continue
        reported.add(pair)
        findings.append(_public_only(gate, _why_ungranted(policy, *pair)))

    derives = RoleRules.build(policy).leads_to
    for where, type_name, actions, resource_role in _grants(policy):
        if not actions:
            continue
        if type_name not in asked_types and resource_role in derives:
            # Held on a related instance, it derives a role of what the server asks about.
            continue
        if type_name not in asked_types:
            findings.append(
                Finding(
                    kind="dead-grant",
                    severity="warning",
                    component=None,
                    location=where,
                    message=f"grants {_listing(actions)} on {type_name!r}, a resource type the "
                    "server never asks about",
                )
            )
            continue
        for action in actions:
            if action != WILDCARD and (type_name, action) not in asked:
                findings.append(
                    Finding(
                        kind="dead-grant",
                        severity="warning",
                        component=None,
                        location=where,
                        message=f"grants {type_name}:{action}, which no component of the server "
                        "asks for",
                    )
                )
    return findings


def _listing(actions: Sequence[str]) -> str:
    if WILDCARD in actions:
        return "every action"
    return ", ".join(actions)


def _grants(policy: Policy) -> Iterable[tuple[str, str, list[str], tuple[str, str] | None]]:
    """Every grant: roles, user sets, resource roles.

    Each as (location, resource type, actions, ``(type, role)`` for a resource role).
    """
    for holder, section in (("roles", policy.roles), ("user_sets", policy.user_sets)):
        for name, entry in section.items():
            for target, actions in entry.grants.items():
                resource_set = policy.resource_sets.get(target)
                type_name = resource_set.resource if resource_set is not None else target
                yield f"{holder}.{name}.grants.{target}", type_name, actions, None
    for type_name, resource in policy.resources.items():
        for role, resource_role in resource.roles.items():
            where = f"resources.{type_name}.roles.{role}"
            yield where, type_name, resource_role.permissions, (type_name, role)


def _granted_pairs(policy: Policy) -> set[tuple[str, str]]:
    granted: set[tuple[str, str]] = set()
    for _, type_name, actions, _ in _grants(policy):
        resource = policy.resources.get(type_name)
        known = resource.actions if resource is not None else []
        expanded = known if WILDCARD in actions else actions
        granted.update((type_name, action) for action in expanded)
    return granted


def _why_ungranted(policy: Policy, type_name: str, action: str) -> str:
    resource = policy.resources.get(type_name)
    if resource is None:
        return f"the policy has no resource type {type_name!r}"
    if action not in resource.actions:
        return f"resource type {type_name!r} of the policy has no action {action!r}"
    return f"nothing in the policy grants {type_name}:{action}"


def _ungrantable_roles(policy: Policy) -> list[Finding]:
    """Roles no user of the policy holds, assigned or derived: only runtime assignments can grant.

    A resource role is grantable when some user is assigned it on an instance,
    or when it is derived (``granted_to``) from a grantable role; whether tuples
    link the instances is data, which the directory may add at run time.
    """
    assigned_roles: set[str] = set()
    reached: set[tuple[str, str]] = set()
    for user in policy.users.values():
        for role_names in user.roles_by_tenant().values():
            assigned_roles.update(role_names)
        for instance, role_names in user.resource_roles.items():
            type_name = instance.partition(":")[0]
            reached.update((type_name, role) for role in role_names)
    leads_to = RoleRules.build(policy).leads_to
    frontier = list(reached)
    while frontier:
        for _, object_type, object_role in leads_to.get(frontier.pop(), ()):
            if (object_type, object_role) not in reached:
                reached.add((object_type, object_role))
                frontier.append((object_type, object_role))
    findings = [
        Finding(
            kind="ungrantable-role",
            severity="warning",
            component=None,
            location=f"roles.{name}",
            message=f"role {name!r}: no assignment in the policy grants it in any tenant; only "
            "runtime assignments can",
        )
        for name in policy.roles
        if name not in assigned_roles
    ]
    for type_name, resource in policy.resources.items():
        for name, role in resource.roles.items():
            if (type_name, name) in reached:
                continue
            sources = ", ".join(
                f"{rule.role!r} on {rule.on_resource}" for rule in role.granted_to.users_with_role
            )
            derived = f" (it is derived from {sources}, which nothing grants either)"
            findings.append(
                Finding(
                    kind="ungrantable-role",
                    severity="warning",
                    component=None,
                    location=f"resources.{type_name}.roles.{name}",
                    message=f"resource role {name!r} of {type_name!r}: no assignment in the "
                    "policy or derivation grants it; only runtime assignments can"
                    + (derived if sources else ""),
                )
            )
    return findings
