"""Decision plans: remembered per state of the facts, so every change counts at once.

The embedded engine works a decision out once per (tenant, user, type, action,
instance, listing) and remembers it with the model and facts it read. These
tests ask a question until its plan is remembered, then change the facts
(through ``engine.api``, or a reload of the policy file) and ask again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from permit_guard import AuthzRequest, LocalPolicyEngine, Principal, Resource
from permit_guard.engines.local.plans import MAX_PLANS

POLICY: dict[str, Any] = {
    "resources": {
        "workspace": {"actions": ["read"], "roles": {"admin": ["read"]}},
        "project": {
            "actions": ["read", "rename", "delete"],
            "relations": {"parent": "workspace"},
            "roles": {
                "owner": {
                    "permissions": ["read", "rename", "delete"],
                    "granted_to": {
                        "users_with_role": [
                            {
                                "role": "admin",
                                "on_resource": "workspace",
                                "linked_by_relation": "parent",
                            }
                        ]
                    },
                }
            },
        },
        "mcp_server": {"actions": ["refund", "greet"]},
    },
    "resource_sets": {
        "active_projects": {
            "resource": "project",
            "condition": {"allOf": [{"resource.archived": {"equals": False}}]},
        },
        "small_refunds": {
            "resource": "mcp_server",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 100}}]},
        },
    },
    "user_sets": {
        "finance": {
            "condition": {"user.department": {"equals": "finance"}},
            "grants": {"mcp_server": ["greet"]},
        }
    },
    "roles": {
        "member": {"grants": {"project": ["read"]}},
        "editor": {"grants": {"active_projects": ["rename"]}},
        "refunder": {"grants": {"small_refunds": ["refund"]}},
    },
    "users": {
        "alice": {"roles": {"acme": ["member", "editor", "refunder"]}},
        "bob": {"resource_roles": {"project:p1": ["owner"]}},
        "carol": {"resource_roles": {"workspace:w1": ["admin"]}},
        "dave": {"attributes": {"department": "finance"}},
    },
    "resource_instances": {
        "workspace:w1": {"tenant": "acme"},
        "project:p1": {"tenant": "acme", "attributes": {"archived": False}},
        "project:p2": {"tenant": "acme", "attributes": {"archived": False}},
    },
    "relationships": [{"subject": "workspace:w1", "relation": "parent", "object": "project:p2"}],
}


def ask(
    user: str, action: str, key: str | None = None, *, type_name: str = "project", **attributes: Any
) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user),
        action=action,
        resource=Resource(type=type_name, key=key, tenant="acme", attributes=attributes),
    )


def remembered(engine: LocalPolicyEngine, request: AuthzRequest) -> bool:
    """Decide ``request`` twice (the second time from its plan); whether it is allowed."""
    first, second = engine.decide(request), engine.decide(request)
    assert (first.allowed, first.reason) == (second.allowed, second.reason)
    return second.allowed


@pytest.fixture
def engine() -> LocalPolicyEngine:
    return LocalPolicyEngine.from_dict(POLICY)


async def test_an_unassigned_tenant_role_grants_nothing_from_the_next_decision(
    engine: LocalPolicyEngine,
) -> None:
    """A role granting outright, unassigned through engine.api: the next decision denies."""
    request = ask("alice", "read")
    assert remembered(engine, request)
    await engine.api.role_assignments.unassign(
        {"user": "alice", "role": "member", "tenant": "acme"}
    )
    decision = engine.decide(request)
    assert not decision.allowed
    assert decision.reason == (
        "no role, user set or resource role of user 'alice' in tenant 'acme' grants project:read"
    )


async def test_an_unassigned_resource_role_grants_nothing_from_the_next_decision(
    engine: LocalPolicyEngine,
) -> None:
    """A resource role on an instance, unassigned: the next decision on the instance denies."""
    request = ask("bob", "delete", "p1")
    assert remembered(engine, request)
    await engine.api.role_assignments.unassign(
        {"user": "bob", "role": "owner", "tenant": "acme", "resource_instance": "project:p1"}
    )
    assert not engine.decide(request).allowed


async def test_a_deleted_tuple_derives_nothing_from_the_next_decision(
    engine: LocalPolicyEngine,
) -> None:
    """A role derived along a tuple: once the tuple is deleted, the next decision denies."""
    request = ask("carol", "delete", "p2")
    assert remembered(engine, request)
    assert "derived: 'admin' on workspace:w1" in engine.decide(request).reason
    await engine.api.relationship_tuples.delete(
        {"subject": "workspace:w1", "relation": "parent", "object": "project:p2"}
    )
    assert not engine.decide(request).allowed


async def test_updated_instance_attributes_count_from_the_next_decision(
    engine: LocalPolicyEngine,
) -> None:
    """A resource set on an instance's attributes: archiving it denies the next decision."""
    request = ask("alice", "rename", "p1")
    assert remembered(engine, request)
    await engine.api.resource_instances.update("project:p1", {"attributes": {"archived": True}})
    assert not engine.decide(request).allowed
    # The instance's attributes win over the request's, on a remembered plan too.
    assert not engine.decide(ask("alice", "rename", "p1", archived=False)).allowed


async def test_new_user_attributes_count_from_the_next_decision(
    engine: LocalPolicyEngine,
) -> None:
    """A user set on a known user's attributes: a users.sync that changes them counts at once."""
    request = ask("dave", "greet", type_name="mcp_server")
    assert remembered(engine, request)
    await engine.api.users.sync({"key": "dave", "attributes": {"department": "sales"}})
    assert not engine.decide(request).allowed


def test_a_reload_takes_a_role_away_from_the_next_decision(tmp_path: Path) -> None:
    """A policy file reloaded without the role: the next decision denies."""
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    engine = LocalPolicyEngine.from_file(path, reload=True)
    try:
        request = ask("alice", "read")
        assert remembered(engine, request)
        edited = {**POLICY, "users": {**POLICY["users"], "alice": {"roles": {"acme": ["editor"]}}}}
        partial = path.with_suffix(".tmp")
        partial.write_text(yaml.safe_dump(edited))
        os.replace(partial, path)
        assert engine.reload()
        assert not engine.decide(request).allowed
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("amount", "allowed"), [(50, True), (500, False), (100, True), ("50", False)]
)
def test_conditions_are_evaluated_on_every_request_of_a_plan(
    engine: LocalPolicyEngine, amount: object, allowed: bool
) -> None:
    """One plan, many arguments: each request's own attributes decide the resource set."""
    for warm in (10, 1_000):
        engine.decide(ask("alice", "refund", type_name="mcp_server", arg_amount=warm))
    decision = engine.decide(ask("alice", "refund", type_name="mcp_server", arg_amount=amount))
    assert decision.allowed is allowed


def test_a_list_and_a_call_have_plans_of_their_own(engine: LocalPolicyEngine) -> None:
    """Without the argument, a list shows the tool (condition not excluded); a call is denied."""
    call = ask("alice", "refund", type_name="mcp_server", mcp_method="tools/call")
    listing = ask("alice", "refund", type_name="mcp_server", mcp_method="tools/list")
    assert not remembered(engine, call)
    assert remembered(engine, listing)
    assert engine.decide(listing).reason.endswith("(listing: condition not excluded)")
    assert not engine.decide(call).allowed


def test_explain_gives_the_decision_a_plan_gives(engine: LocalPolicyEngine) -> None:
    """explain() decides in full, and agrees with the remembered decision."""
    for request in (
        ask("alice", "read"),
        ask("alice", "rename", "p1"),
        ask("bob", "delete", "p1"),
        ask("carol", "delete", "p2"),
        ask("dave", "greet", type_name="mcp_server"),
        ask("nobody", "read"),
        ask("alice", "refund", type_name="mcp_server", arg_amount=5),
    ):
        remembered(engine, request)
        planned, explained = engine.decide(request), engine.explain(request)
        assert (planned.allowed, planned.reason) == (explained.allowed, explained.reason)
        assert explained.explanation is not None
        assert planned.explanation is None


def test_remembered_plans_are_bounded(engine: LocalPolicyEngine) -> None:
    """However many distinct questions are asked, at most MAX_PLANS plans are kept."""
    for index in range(MAX_PLANS + 10):
        engine.decide(ask(f"user-{index}", "read"))
    assert len(engine._store.state.plans) <= MAX_PLANS
    assert engine.decide(ask("alice", "read")).allowed
