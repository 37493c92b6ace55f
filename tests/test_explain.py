"""Explanations: the embedded engine's decision as a tree, with the values it saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from permit_guard import LocalPolicyEngine
from permit_guard.engines.base import Explainer
from permit_guard.model import AuthzRequest, Principal, Resource
from tests.test_cli import POLICY, QUICKSTART, cli
from tests.test_conditions import (
    compiled,
    conditions,
    json_values,
    subjects,
    without,
)
from tests.test_derivation_properties import (
    ACTIONS,
    PROPERTIES,
    USERS,
    Model,
    World,
    keyed,
    listing,
    policy,
    scenarios,
    targets,
)

ROOT = Path(__file__).resolve().parent.parent
TRACKER = ROOT / "examples/project_tracker/policy.yaml"


@pytest.fixture(scope="module")
def billing() -> LocalPolicyEngine:
    return LocalPolicyEngine.from_file(ROOT / POLICY)


@pytest.fixture(scope="module")
def tracker() -> LocalPolicyEngine:
    return LocalPolicyEngine.from_file(TRACKER)


def ask(
    user: str,
    action: str,
    type_name: str = "mcp_server",
    *,
    key: str | None = None,
    tenant: str = "default",
    attributes: dict[str, Any] | None = None,
    user_attributes: dict[str, Any] | None = None,
) -> AuthzRequest:
    return AuthzRequest(
        user=Principal(key=user, attributes=user_attributes or {}),
        action=action,
        resource=Resource(type=type_name, key=key, tenant=tenant, attributes=attributes or {}),
    )


def test_the_embedded_engine_is_an_explainer_and_decide_explains_nothing(
    billing: LocalPolicyEngine,
) -> None:
    """explain() is the engine's; decide() leaves the explanation out (the hot path)."""
    assert isinstance(billing, Explainer)
    assert billing.decide(ask("alice", "greet")).explanation is None


def test_rbac_explanation_ends_in_the_granting_role(billing: LocalPolicyEngine) -> None:
    """A role grant is the last step considered, and decides."""
    explanation = billing.explain(ask("alice", "greet")).explanation
    assert explanation is not None
    assert explanation.lines() == [
        "alice in tenant 'default' asks mcp_server:greet",
        "  roles in 'default': admin",
        "  - role 'admin' grants mcp_server:greet: yes",
        "  = allowed: role 'admin' grants mcp_server:greet in tenant 'default'",
    ]
    assert explanation.decided_by is not None
    assert explanation.decided_by.name == "admin"


def test_user_set_denial_shows_the_failing_comparison_with_its_value(
    billing: LocalPolicyEngine,
) -> None:
    """bob is in 'finance', but small_refunds fails because amount was 500."""
    decision = billing.explain(
        ask(
            "bob",
            "refund",
            attributes={"arg_amount": 500, "arg_currency": "EUR"},
            user_attributes={"department": "finance"},
        )
    )
    assert decision.allowed is False
    assert decision.explanation is not None
    assert decision.explanation.lines() == [
        "bob in tenant 'default' asks mcp_server:refund",
        "  roles in 'default': clerk",
        "  - role 'clerk' grants mcp_server:refund: no",
        "  - user set 'finance' grants refund on resource set 'small_refunds': no",
        "      user set 'finance' -> true",
        '        user.department = "finance" equals "finance" -> true',
        "      resource set 'small_refunds' -> false",
        "        allOf -> false",
        "          resource.arg_amount = 500 less-than-equals 100 -> false",
        '          resource.arg_currency = "EUR" equals "EUR" -> true',
        f"  = denied: {decision.reason}",
    ]
    assert decision.explanation.decided_by is None


def test_user_set_not_joined_is_not_followed_into_its_resource_set(
    billing: LocalPolicyEngine,
) -> None:
    """When the caller is not in the user set, its resource set is not evaluated."""
    explanation = billing.explain(ask("eve", "refund", attributes={"arg_amount": 5})).explanation
    assert explanation is not None
    step = explanation.considered[-1]
    assert (step.kind, step.granted) == ("user-set", False)
    assert [c.text for c in step.conditions] == ["user set 'finance'"]
    assert step.conditions[0].children[0].text == 'user.department = <missing> equals "finance"'


def test_a_list_explains_an_allow_that_depends_on_arguments(billing: LocalPolicyEngine) -> None:
    """For tools/list, absent arguments are unknown: the allow holds for some arguments only."""
    explanation = billing.explain(
        ask(
            "bob",
            "refund",
            attributes={"mcp_method": "tools/list"},
            user_attributes={"department": "finance"},
        )
    ).explanation
    assert explanation is not None
    assert explanation.listing
    assert explanation.allowed
    assert explanation.depends_on_arguments
    assert "resource.arg_amount = <missing> less-than-equals 100 -> unknown" in "\n".join(
        explanation.lines()
    )


def test_resource_role_on_the_instance(billing: LocalPolicyEngine) -> None:
    """bob owns invoice 42, and owns no other."""
    owned = billing.explain(ask("bob", "delete", "invoice", key="42")).explanation
    other = billing.explain(ask("bob", "delete", "invoice", key="7")).explanation
    assert owned is not None
    assert other is not None
    assert owned.lines()[-2:] == [
        "  - resource role 'owner' on invoice:42 grants delete: yes",
        "  = allowed: resource role 'owner' on invoice:42 grants delete",
    ]
    assert "  - resource roles assigned on invoice:7 (none) grant delete: no" in other.lines()


def test_role_on_a_resource_set_and_a_derived_role(tracker: LocalPolicyEngine) -> None:
    """The tracker: rename via active_projects (archived = false) and delete via derivation."""
    rename = tracker.explain(ask("bob", "rename", "project", key="acme-2", tenant="acme"))
    assert rename.allowed is False
    assert rename.explanation is not None
    text = "\n".join(rename.explanation.lines())
    assert "role 'editor' grants rename on resource set 'active_projects': no" in text
    assert "resource.archived = true equals false -> false" in text

    delete = tracker.explain(ask("alice", "delete", "project", key="acme-1", tenant="acme"))
    assert delete.allowed is True
    assert delete.explanation is not None
    assert delete.explanation.considered[-1].kind == "derived"
    assert delete.explanation.lines()[-2] == (
        "  - derived: 'admin' on workspace:acme-hq -parent-> 'owner' on project:acme-1: yes"
    )
    assert delete.explanation.roles == {"acme": ("editor",)}


def test_ref_comparisons_show_both_values() -> None:
    """A {ref: ...} operand is shown with the value it read."""
    engine = LocalPolicyEngine.from_dict(
        {
            "resources": {"doc": {"actions": ["read"]}},
            "resource_sets": {
                "own": {
                    "resource": "doc",
                    "condition": {"resource.owner": {"equals": {"ref": "user.key"}}},
                }
            },
            "roles": {"reader": {"grants": {"own": ["read"]}}},
            "users": {"bob": {"roles": ["reader"]}},
        }
    )
    explanation = engine.explain(
        ask("bob", "read", "doc", attributes={"owner": "alice"})
    ).explanation
    assert explanation is not None
    assert (
        '        resource.owner = "alice" equals user.key = "bob" -> false' in explanation.lines()
    )


def test_unknown_user_and_target_are_explained_in_words(billing: LocalPolicyEngine) -> None:
    """Nothing to consider still ends in the reason."""
    unknown = billing.explain(ask("mallory", "greet")).explanation
    assert unknown is not None
    assert unknown.lines()[1] == "  roles: none in any tenant"
    assert unknown.lines()[-1].startswith("  = denied: user 'mallory' is not in the policy")
    nothing = billing.explain(ask("alice", "fly")).explanation
    assert nothing is not None
    assert nothing.lines()[-1] == "  = denied: resource type 'mcp_server' has no action 'fly'"


def test_explanation_json_is_the_tree(billing: LocalPolicyEngine) -> None:
    """to_json carries every step, condition and value."""
    explanation = billing.explain(
        ask(
            "bob",
            "refund",
            attributes={"arg_amount": 5, "arg_currency": "EUR"},
            user_attributes={"department": "finance"},
        )
    ).explanation
    assert explanation is not None
    data = explanation.to_json()
    assert data["allowed"] is True
    assert data["depends_on_arguments"] is False
    step = data["considered"][-1]
    assert step["kind"] == "user-set"
    assert step["granted"] is True
    assert step["conditions"][1]["children"][0]["children"][0] == {
        "text": "resource.arg_amount = 5 less-than-equals 100",
        "value": True,
    }


# -- properties: an explanation never disagrees with the decision --------------------------------


@given(conditions, subjects(), st.sets(st.sampled_from(("a", "b"))))
def test_a_condition_trace_evaluates_like_the_condition(
    raw: dict[str, Any], s: Any, dropped: set[str]
) -> None:
    """The traced value is holds() two-valued and may_hold() three-valued."""
    condition = compiled(raw)
    assert condition.explain(s, False).value is condition.holds(s)
    partial = without(s, dropped, drop_key=True)
    assert condition.explain(partial, True).value is condition.may_hold(partial)
    assert condition.explain(partial, False).value is condition.holds(partial)


def same(engine: LocalPolicyEngine, request: AuthzRequest) -> None:
    decided, explained = engine.decide(request), engine.explain(request)
    assert (explained.allowed, explained.reason) == (decided.allowed, decided.reason)
    explanation = explained.explanation
    assert explanation is not None
    assert explanation.allowed is decided.allowed
    assert (explanation.decided_by is not None) is decided.allowed
    assert all(step.granted is False for step in explanation.considered[:-1])


@PROPERTIES
@given(scenarios())
def test_explain_decides_like_decide_on_relations(scenario: tuple[Model, World, str]) -> None:
    """Keyed and listing requests: the same outcome and reason, and the tree ends in it."""
    model, world, tenant = scenario
    engine = LocalPolicyEngine.from_dict(policy(model, world))
    for user in USERS:
        for action in ACTIONS:
            for instance in targets(model):
                same(engine, keyed(user, instance, action, tenant))
            for type_name in model.types:
                same(engine, listing(user, type_name, action, tenant))


@PROPERTIES
@given(
    conditions,
    conditions,
    conditions,
    st.dictionaries(st.sampled_from(("a", "b")), json_values),
    st.dictionaries(st.sampled_from(("u", "v")), json_values),
    st.booleans(),
)
def test_explain_decides_like_decide_on_sets(
    on_resource: dict[str, Any],
    on_user: dict[str, Any],
    on_both: dict[str, Any],
    resource: dict[str, Any],
    user: dict[str, Any],
    is_list: bool,
) -> None:
    """Roles on resource sets and user sets, calls and lists: the same outcome and reason."""
    engine = LocalPolicyEngine.from_dict(
        {
            "resources": {"doc": {"actions": ["read"]}},
            "resource_sets": {"s": {"resource": "doc", "condition": on_resource}},
            "user_sets": {
                "g": {"condition": on_user, "grants": {"s": ["read"]}},
                "h": {"condition": on_both, "grants": {"doc": ["read"]}},
            },
            "roles": {"reader": {"grants": {"s": ["read"]}}},
            "users": {"b": {"roles": ["reader"]}, "c": {}},
        }
    )
    attributes = {**resource, **({"mcp_method": "tools/list"} if is_list else {})}
    for key in ("b", "c", "d"):
        same(engine, ask(key, "read", "doc", attributes=attributes, user_attributes=user))


# -- the command ----------------------------------------------------------------------------------


def test_explain_command_prints_the_tree_and_exits_like_check() -> None:
    """permit-guard explain (the console script): the tree, exit 1 for a denial."""
    run = cli(
        "explain",
        QUICKSTART,
        "--user",
        "bob",
        "--user-attributes",
        '{"department": "finance"}',
        "--tool",
        "refund",
        "--args",
        '{"amount": 500, "currency": "EUR"}',
        script=True,
    )
    assert run.code == 1, run.err
    assert "resource.arg_amount = 500.0 less-than-equals 100 -> false" in run.out
    assert run.out.splitlines()[0] == (
        "denied: tool 'refund' for user 'bob', by the server's local policy examples/policy.yaml"
    )


def test_check_verbose_adds_the_tree_and_json_carries_it() -> None:
    """check -v prints how the engine decided; --json -v has the explanation as data."""
    run = cli("check", QUICKSTART, "--user", "alice", "--tool", "greet", "-v")
    assert run.code == 0, run.err
    assert "how the engine decided:" in run.out
    assert "  - role 'admin' grants mcp_server:greet: yes" in run.out
    data = cli("check", QUICKSTART, "--user", "alice", "--tool", "greet", "-v", "--json").json()
    assert data["explanation"]["considered"][0]["name"] == "admin"
    assert (
        "explanation"
        not in cli("check", QUICKSTART, "--user", "alice", "--tool", "greet", "--json").json()
    )


def test_explain_says_when_the_guard_decided_without_the_engine() -> None:
    """Default deny and @public are the guard's: no tree, the guard's reason."""
    run = cli("explain", QUICKSTART, "--user", "bob", "--tool", "debug_dump")
    assert run.code == 1, run.err
    assert "decided by the guard, without asking the engine: undecorated under default deny" in (
        run.out
    )
    public = cli("explain", QUICKSTART, "--user", "bob", "--tool", "health", "--json").json()
    assert public["allowed"] is True
    assert public["explanation"] is None
