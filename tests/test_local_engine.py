"""LocalPolicyEngine: loading the policy file and deciding requests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.local import LISTING_METHODS, LocalPolicyEngine, is_listing
from permit_guard.exceptions import PermitGuardError, PolicyFileError
from permit_guard.model import AuthzRequest, Decision, Principal, Resource
from tests.models import workspace_owned_projects

POLICIES = Path(__file__).parent / "policies"
BILLING_YAML = POLICIES / "billing.yaml"
BILLING_JSON = POLICIES / "billing.json"
DOC = Path(__file__).parent.parent / "docs" / "policy-file.md"


@pytest.fixture(scope="module")
def billing() -> LocalPolicyEngine:
    """The engine of tests/policies/billing.yaml."""
    return LocalPolicyEngine.from_file(BILLING_YAML)


def ask(
    user: str,
    action: str,
    resource: str = "mcp_server",
    *,
    key: str | None = None,
    tenant: str = "default",
    attributes: dict[str, Any] | None = None,
    user_attributes: dict[str, Any] | None = None,
) -> AuthzRequest:
    """A request, with the defaults of a tool call on the server."""
    return AuthzRequest(
        user=Principal(key=user, attributes=user_attributes or {}),
        action=action,
        resource=Resource(type=resource, key=key, tenant=tenant, attributes=attributes or {}),
    )


def listing(user: str, action: str, **attributes: Any) -> AuthzRequest:
    """The per-item check of a tools/list response: no argument attributes."""
    return ask(
        user, action, attributes={"mcp_method": "tools/list", "tool_name": action, **attributes}
    )


def calling(user: str, action: str, **arguments: Any) -> AuthzRequest:
    """The check of a tools/call, with its arguments as arg_* attributes."""
    attributes = {f"arg_{name}": value for name, value in arguments.items()}
    return ask(
        user, action, attributes={"mcp_method": "tools/call", "tool_name": action, **attributes}
    )


def load_error(data: Any) -> PolicyFileError:
    """The PolicyFileError from_dict raises for ``data``."""
    with pytest.raises(PolicyFileError) as caught:
        LocalPolicyEngine.from_dict(data)
    return caught.value


# -- the engine as a PolicyEngine --------------------------------------------------------------


def test_is_a_policy_engine_named_local(billing: LocalPolicyEngine) -> None:
    """The engine satisfies the PolicyEngine protocol and names itself "local"."""
    assert isinstance(billing, PolicyEngine)
    assert billing.name == "local"
    assert billing.source == str(BILLING_YAML)


async def test_check_answers_like_decide(billing: LocalPolicyEngine) -> None:
    """check() gives the same decision as the synchronous decide()."""
    request = ask("alice", "refund")
    assert await billing.check(request) == billing.decide(request)


async def test_check_many_preserves_order(billing: LocalPolicyEngine) -> None:
    """check_many answers every request, in request order."""
    requests = [
        ask("alice", "refund"),
        ask("dave", "refund"),
        ask("bob", "greet"),
        ask("bob", "delete", "invoice", key="43"),
        ask("bob", "delete", "invoice", key="42"),
        ask("nobody", "greet"),
    ]
    decisions = await billing.check_many(requests)
    assert [d.allowed for d in decisions] == [True, False, True, False, True, False]
    assert decisions == [billing.decide(r) for r in requests]


async def test_check_many_of_nothing_is_empty(billing: LocalPolicyEngine) -> None:
    """check_many of no requests answers an empty list."""
    assert await billing.check_many([]) == []


# -- roles -------------------------------------------------------------------------------------


def test_role_grants_action_and_reason_names_it(billing: LocalPolicyEngine) -> None:
    """A role that grants the action allows it, and the reason names the role."""
    decision = billing.decide(ask("alice", "refund"))
    assert decision.allowed
    assert "role 'admin' grants mcp_server:refund" in decision.reason


@pytest.mark.parametrize(
    ("resource", "action"),
    [
        ("mcp_server", "greet"),
        ("mcp_server", "refund"),
        ("mcp_server", "conditional-greet"),
        ("mcp_server", "delete-account"),
        ("invoice", "pay"),
    ],
)
def test_wildcard_grants_every_action_of_the_type(
    billing: LocalPolicyEngine, resource: str, action: str
) -> None:
    """A "*" grant allows every action of the resource type."""
    assert billing.decide(ask("alice", action, resource)).allowed


def test_role_without_the_action_denies(billing: LocalPolicyEngine) -> None:
    """A role that does not list the action does not allow it."""
    decision = billing.decide(ask("dave", "refund"))
    assert decision == Decision(
        allowed=False,
        reason="no role, user set or resource role of user 'dave' in tenant 'default' "
        "grants mcp_server:refund",
    )


def test_roles_are_per_tenant(billing: LocalPolicyEngine) -> None:
    """bob is a viewer in tenant default and an admin in tenant acme."""
    assert billing.decide(ask("bob", "greet")).allowed
    assert not billing.decide(ask("bob", "delete-account")).allowed
    in_acme = billing.decide(ask("bob", "delete-account", tenant="acme"))
    assert in_acme.allowed
    assert "role 'admin'" in in_acme.reason
    assert "'acme'" in in_acme.reason


def test_list_of_roles_means_tenant_default(billing: LocalPolicyEngine) -> None:
    """Roles given as a plain list hold in tenant default and nowhere else."""
    assert billing.decide(ask("alice", "refund", tenant="default")).allowed
    denied = billing.decide(ask("alice", "refund", tenant="acme"))
    assert not denied.allowed
    assert "tenant 'acme'" in denied.reason


def test_role_does_not_grant_on_other_types(billing: LocalPolicyEngine) -> None:
    """A grant on one resource type says nothing about another."""
    assert billing.decide(ask("dave", "list", "mcp_server_tools")).allowed
    assert not billing.decide(ask("dave", "read", "invoice", key="42")).allowed


# -- resource sets -----------------------------------------------------------------------------


def test_resource_set_grant_allows_when_condition_met(billing: LocalPolicyEngine) -> None:
    """A role granted refund on small_refunds may refund 50, and the reason names the set."""
    decision = billing.decide(calling("carol", "refund", amount=50))
    assert decision.allowed
    assert "role 'refunder'" in decision.reason
    assert "resource set 'small_refunds' in tenant 'default' (condition met)" in decision.reason


@pytest.mark.parametrize("amount", [500, 100.5, "50", True, None])
def test_resource_set_grant_denies_when_condition_not_met(
    billing: LocalPolicyEngine, amount: object
) -> None:
    """Too large, wrongly typed or null amounts are outside small_refunds."""
    assert not billing.decide(calling("carol", "refund", amount=amount)).allowed


def test_resource_set_boundary_is_inclusive(billing: LocalPolicyEngine) -> None:
    """less-than-equals 100 includes 100 itself (and 100.0)."""
    assert billing.decide(calling("carol", "refund", amount=100)).allowed
    assert billing.decide(calling("carol", "refund", amount=100.0)).allowed


def test_resource_set_grant_denies_when_attribute_missing(billing: LocalPolicyEngine) -> None:
    """A call without the amount is not in small_refunds."""
    assert not billing.decide(calling("carol", "refund")).allowed


def test_resource_set_wildcard_means_actions_of_its_type(billing: LocalPolicyEngine) -> None:
    """A "*" grant on a resource set covers every action of the set's type, under its condition."""
    hello_world = calling("carol", "conditional-greet", name="World")
    hello_world_tool = AuthzRequest(
        user=hello_world.user,
        action="delete-account",
        resource=Resource(
            type="mcp_server", attributes={"tool_name": "conditional-greet", "arg_name": "World"}
        ),
    )
    assert billing.decide(hello_world).allowed
    assert billing.decide(hello_world_tool).allowed
    assert not billing.decide(calling("carol", "conditional-greet", name="Bob")).allowed


# -- user sets ---------------------------------------------------------------------------------


def test_user_set_grants_on_attribute_from_file(billing: LocalPolicyEngine) -> None:
    """bob's department (finance) comes from the file and puts him in user set finance."""
    decision = billing.decide(calling("bob", "refund", amount=20))
    assert decision.allowed
    assert "user set 'finance' grants refund on resource set 'small_refunds'" in decision.reason


def test_user_set_still_needs_the_resource_set_condition(billing: LocalPolicyEngine) -> None:
    """A user set granted on a resource set allows only inside that set."""
    assert not billing.decide(calling("bob", "refund", amount=2000)).allowed


def test_user_set_attribute_mismatch_denies(billing: LocalPolicyEngine) -> None:
    """dave (department sales) is not in user set finance."""
    assert not billing.decide(calling("dave", "refund", amount=20)).allowed


def test_request_user_attributes_win_over_the_file(billing: LocalPolicyEngine) -> None:
    """Request attributes override the file's: dave as finance is in, bob as sales is out."""
    dave = ask(
        "dave",
        "refund",
        attributes={"arg_amount": 20},
        user_attributes={"department": "finance"},
    )
    bob = ask(
        "bob", "refund", attributes={"arg_amount": 20}, user_attributes={"department": "sales"}
    )
    assert billing.decide(dave).allowed
    assert not billing.decide(bob).allowed


def test_user_set_grants_on_the_whole_type(billing: LocalPolicyEngine) -> None:
    """A user set granted on a resource type allows like a role, and says so."""
    decision = billing.decide(ask("erin", "greet", user_attributes={"department": "support"}))
    assert decision == Decision(allowed=True, reason="user set 'support' grants mcp_server:greet")


def test_unknown_user_gets_user_sets_from_request_attributes(billing: LocalPolicyEngine) -> None:
    """A user absent from the file is judged on the request's attributes alone."""
    request = ask(
        "erin", "refund", attributes={"arg_amount": 5}, user_attributes={"department": "finance"}
    )
    assert billing.decide(request).allowed


def test_unknown_user_is_denied_with_a_reason(billing: LocalPolicyEngine) -> None:
    """A user absent from the file, in no user set, is denied and the reason says so."""
    decision = billing.decide(ask("mallory", "greet"))
    assert not decision.allowed
    assert "'mallory' is not in the policy" in decision.reason


# -- resource roles ----------------------------------------------------------------------------


def test_resource_role_grants_on_its_instance(billing: LocalPolicyEngine) -> None:
    """bob owns invoice 42: he may delete it, and the reason names the resource role."""
    decision = billing.decide(ask("bob", "delete", "invoice", key="42"))
    assert decision == Decision(
        allowed=True, reason="resource role 'owner' on invoice:42 grants delete"
    )


@pytest.mark.parametrize(
    "request_",
    [
        ask("bob", "delete", "invoice", key="43"),
        ask("bob", "delete", "invoice"),
        ask("bob", "pay", "invoice", key="42"),
        ask("dave", "delete", "invoice", key="42"),
    ],
    ids=["other-instance", "no-instance", "action-not-in-role", "other-user"],
)
def test_resource_role_grants_nothing_else(
    billing: LocalPolicyEngine, request_: AuthzRequest
) -> None:
    """A resource role grants only its actions, only on its instance, only to its holder."""
    assert not billing.decide(request_).allowed


def test_resource_role_key_is_split_at_first_colon() -> None:
    """Instance keys may contain colons (URIs): the type is what precedes the first one."""
    engine = LocalPolicyEngine.from_dict(
        {
            "resources": {"doc": {"actions": ["read"], "roles": {"reader": ["*"]}}},
            "users": {"eve": {"resource_roles": {"doc:file:///a.txt": ["reader"]}}},
        }
    )
    assert engine.decide(ask("eve", "read", "doc", key="file:///a.txt")).allowed
    assert not engine.decide(ask("eve", "read", "doc", key="file:///b.txt")).allowed


# -- unknown types and actions -----------------------------------------------------------------


def test_unknown_resource_type_denies_with_reason(billing: LocalPolicyEngine) -> None:
    """A resource type the policy does not define is denied, never an error."""
    decision = billing.decide(ask("alice", "read", "payroll"))
    assert not decision.allowed
    assert "unknown resource type 'payroll'" in decision.reason


def test_unknown_action_denies_with_reason(billing: LocalPolicyEngine) -> None:
    """An action the resource type does not define is denied even for "*" grants."""
    decision = billing.decide(ask("alice", "launch-missiles"))
    assert decision == Decision(
        allowed=False, reason="resource type 'mcp_server' has no action 'launch-missiles'"
    )


def test_empty_policy_denies_everything() -> None:
    """A policy with no sections loads and allows nothing."""
    engine = LocalPolicyEngine.from_dict({})
    assert not engine.decide(ask("alice", "greet")).allowed


# -- the listing rule --------------------------------------------------------------------------


def test_argument_gated_tool_is_visible_in_lists(billing: LocalPolicyEngine) -> None:
    """A tool granted only on a resource set over its arguments shows in tools/list."""
    decision = billing.decide(listing("carol", "refund"))
    assert decision.allowed
    assert "small_refunds" in decision.reason
    assert "(listing: condition not excluded)" in decision.reason


def test_argument_gated_tool_call_still_checks_arguments(billing: LocalPolicyEngine) -> None:
    """Visible in lists, the tool is still denied when called with no or bad arguments."""
    assert not billing.decide(calling("carol", "refund")).allowed
    assert not billing.decide(calling("carol", "refund", amount=1000)).allowed


def test_set_false_whatever_the_arguments_stays_hidden(billing: LocalPolicyEngine) -> None:
    """A set whose condition fails on attributes the list request carries hides the tool."""
    # greetings_to_world needs tool_name conditional-greet; the greet item says "greet".
    assert billing.decide(listing("carol", "conditional-greet")).allowed
    assert not billing.decide(listing("carol", "greet")).allowed


def test_resource_role_on_some_instance_shows_keyless_list_items(
    billing: LocalPolicyEngine,
) -> None:
    """A list item without a key is granted by a resource role held on some instance."""
    attributes = {"mcp_method": "tools/list", "tool_name": "delete_invoice"}
    decision = billing.decide(ask("bob", "delete", "invoice", attributes=attributes))
    assert decision.allowed
    assert decision.reason == (
        "resource role 'owner' on invoice:42 grants delete (listing: held on some instance)"
    )
    # Outside lists the real instance decides; without any resource role nothing is shown.
    calling_43 = {"mcp_method": "tools/call", "tool_name": "delete_invoice"}
    assert not billing.decide(
        ask("bob", "delete", "invoice", key="43", attributes=calling_43)
    ).allowed
    assert not billing.decide(ask("bob", "delete", "invoice", attributes=calling_43)).allowed
    assert not billing.decide(ask("dave", "delete", "invoice", attributes=attributes)).allowed


def test_listing_does_not_relax_user_sets(billing: LocalPolicyEngine) -> None:
    """User-set conditions stay two-valued in lists: dave (sales) does not see refund."""
    assert billing.decide(listing("bob", "refund")).allowed
    assert not billing.decide(listing("dave", "refund")).allowed


def test_listing_keeps_present_arguments_binding(billing: LocalPolicyEngine) -> None:
    """In listing mode an argument that is present and fails the condition still excludes."""
    assert not billing.decide(listing("carol", "refund", arg_amount=500)).allowed


@pytest.mark.parametrize("method", sorted(LISTING_METHODS))
def test_every_list_method_is_listing_mode(billing: LocalPolicyEngine, method: str) -> None:
    """tools/list, resources/list, resources/templates/list and prompts/list use the rule."""
    request = ask("carol", "refund", attributes={"mcp_method": method})
    assert is_listing(request)
    assert billing.decide(request).allowed


@pytest.mark.parametrize("method", ["tools/call", "resources/read", "prompts/get", None])
def test_other_methods_are_not_listing_mode(billing: LocalPolicyEngine, method: str) -> None:
    """Calls, reads and requests without mcp_method are judged two-valued."""
    attributes = {} if method is None else {"mcp_method": method}
    request = ask("carol", "refund", attributes=attributes)
    assert not is_listing(request)
    assert not billing.decide(request).allowed


def test_odd_mcp_method_is_not_listing_mode(billing: LocalPolicyEngine) -> None:
    """An mcp_method that is not a string (even an unhashable one) is not listing mode."""
    request = ask("carol", "refund", attributes={"mcp_method": ["tools/list"]})
    assert not is_listing(request)
    assert not billing.decide(request).allowed


def test_listing_rule_with_negation_and_user_attributes() -> None:
    """In lists, not(unknown) stays unknown, and a missing user attribute is still false."""
    engine = LocalPolicyEngine.from_dict(
        {
            "resources": {"mcp_server": {"actions": ["refund", "export"]}},
            "resource_sets": {
                "not_huge": {
                    "resource": "mcp_server",
                    "condition": {"not": {"resource.arg_amount": {"greater-than": 10_000}}},
                },
                "own_region": {
                    "resource": "mcp_server",
                    "condition": {"resource.arg_region": {"equals": {"ref": "user.region"}}},
                },
            },
            "roles": {"clerk": {"grants": {"not_huge": ["refund"], "own_region": ["export"]}}},
            "users": {"zoe": {"roles": ["clerk"]}, "yan": {"roles": ["clerk"]}},
        }
    )
    assert engine.decide(listing("zoe", "refund")).allowed
    assert not engine.decide(listing("zoe", "export")).allowed
    with_region = ask(
        "yan",
        "export",
        attributes={"mcp_method": "tools/list"},
        user_attributes={"region": "eu"},
    )
    assert engine.decide(with_region).allowed


# -- loading -----------------------------------------------------------------------------------


def battery() -> list[AuthzRequest]:
    """Requests that together exercise every part of the billing policy."""
    return [
        ask("alice", "refund"),
        ask("alice", "refund", tenant="acme"),
        ask("bob", "greet"),
        ask("bob", "delete-account", tenant="acme"),
        ask("bob", "delete", "invoice", key="42"),
        ask("bob", "delete", "invoice", key="43"),
        calling("carol", "refund", amount=50),
        calling("carol", "refund", amount=500),
        listing("carol", "refund"),
        listing("carol", "greet"),
        calling("bob", "refund", amount=20),
        calling("dave", "refund", amount=20),
        ask("nobody", "greet"),
        ask("alice", "nope"),
    ]


def test_json_policy_decides_like_yaml(billing: LocalPolicyEngine) -> None:
    """The same policy in JSON loads and decides exactly as the YAML one."""
    from_json = LocalPolicyEngine.from_file(BILLING_JSON)
    assert yaml.safe_load(BILLING_YAML.read_text()) == json.loads(BILLING_JSON.read_text())
    for request in battery():
        assert from_json.decide(request) == billing.decide(request)


def test_from_dict_decides_like_from_file(billing: LocalPolicyEngine) -> None:
    """from_dict of the parsed file gives the same engine as from_file."""
    from_dict = LocalPolicyEngine.from_dict(yaml.safe_load(BILLING_YAML.read_text()))
    assert from_dict.source == "<dict>"
    for request in battery():
        assert from_dict.decide(request) == billing.decide(request)


@pytest.mark.parametrize("suffix", [".yml", ".YAML"])
def test_yml_and_upper_case_extensions_load(tmp_path: Path, suffix: str) -> None:
    """.yml and upper-case extensions are YAML too."""
    path = tmp_path / f"policy{suffix}"
    path.write_text(BILLING_YAML.read_text())
    assert LocalPolicyEngine.from_file(path).decide(ask("alice", "refund")).allowed


def test_blank_sections_and_entries_are_empty(tmp_path: Path) -> None:
    """A section or entry left empty in YAML (null) reads as empty, not as an error."""
    path = tmp_path / "policy.yaml"
    path.write_text(
        "resources:\n  mcp_server: {actions: [greet]}\nroles:\n  viewer:\n"
        "resource_sets:\nusers:\n  amy:\n"
    )
    engine = LocalPolicyEngine.from_file(path)
    assert not engine.decide(ask("amy", "greet")).allowed


def test_numeric_user_keys_are_names() -> None:
    """A YAML user key such as 1001 is the user "1001"."""
    numeric = LocalPolicyEngine.from_dict(
        {
            "resources": {"mcp_server": {"actions": ["greet"]}},
            "roles": {"viewer": {"grants": {"mcp_server": ["greet"]}}},
            "users": {1001: {"roles": ["viewer"]}},
        }
    )
    assert numeric.decide(ask("1001", "greet")).allowed


VALID = {
    "resources": {
        "mcp_server": {"actions": ["greet", "refund"]},
        "invoice": {"actions": ["read", "delete"], "roles": {"owner": ["read", "delete"]}},
    },
    "resource_sets": {
        "small_refunds": {
            "resource": "mcp_server",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 100}}]},
        }
    },
    "roles": {"viewer": {"grants": {"mcp_server": ["greet"]}}},
    "users": {"bob": {"roles": ["viewer"]}},
}


def with_(path: str, value: Any) -> dict[str, Any]:
    """VALID with the value at a dotted path replaced (dots inside keys are not supported)."""
    data: dict[str, Any] = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            with_("users.bob.roles", ["viewr"]),
            "users.bob.roles: unknown role 'viewr' (did you mean 'viewer'? known: viewer)",
            id="unknown-role-in-list",
        ),
        pytest.param(
            with_("users.bob.roles", {"acme": ["admin"]}),
            "users.bob.roles.acme: unknown role 'admin'",
            id="unknown-role-in-tenant",
        ),
        pytest.param(
            with_("roles.viewer.grants.mcp_server", ["gret"]),
            "roles.viewer.grants.mcp_server: unknown action 'gret' "
            "(did you mean 'greet'? known: greet, refund)",
            id="unknown-action-in-grant",
        ),
        pytest.param(
            with_("roles.viewer.grants.tiny_refunds", ["refund"]),
            "roles.viewer.grants: unknown resource type or resource set 'tiny_refunds'",
            id="unknown-resource-set-in-grant",
        ),
        pytest.param(
            with_("roles.viewer.grants.small_refunds", ["delete"]),
            "roles.viewer.grants.small_refunds: unknown action 'delete' (known: greet, refund)",
            id="set-grant-action-of-other-type",
        ),
        pytest.param(
            with_("resource_sets.small_refunds.resource", "mcp_servr"),
            "resource_sets.small_refunds.resource: unknown resource type 'mcp_servr'",
            id="unknown-type-of-resource-set",
        ),
        pytest.param(
            with_("resources.invoice.roles.owner", ["read", "shred"]),
            "resources.invoice.roles.owner: unknown action 'shred'",
            id="unknown-action-in-resource-role",
        ),
        pytest.param(
            with_("users.bob.resource_roles", {"invoice:42": ["ownr"]}),
            "users.bob.resource_roles['invoice:42']: unknown resource role 'ownr' "
            "on resource type 'invoice'",
            id="unknown-resource-role",
        ),
        pytest.param(
            with_("users.bob.resource_roles", {"receipt:42": ["owner"]}),
            "users.bob.resource_roles['receipt:42']: unknown resource type 'receipt'",
            id="unknown-type-of-resource-role",
        ),
        pytest.param(
            with_("users.bob.resource_roles", {"invoice": ["owner"]}),
            "users.bob.resource_roles.invoice: expected '<resource type>:<instance key>'",
            id="resource-role-without-instance",
        ),
        pytest.param(
            with_(
                "resource_sets.small_refunds.condition",
                {"allOf": [{"resource.arg_amount": {"less-then": 100}}]},
            ),
            "resource_sets.small_refunds.condition.allOf[0]['resource.arg_amount']: "
            "unknown operator 'less-then' (did you mean 'less-than'?",
            id="unknown-operator",
        ),
        pytest.param(
            with_(
                "resource_sets.small_refunds.condition", {"resource.arg_amount": {"contains": 1}}
            ),
            "resource_sets.small_refunds.condition['resource.arg_amount'].contains: "
            "'contains' takes a string",
            id="operand-of-wrong-kind",
        ),
        pytest.param(
            with_(
                "resource_sets.small_refunds.condition",
                {"resource.arg_owner": {"equals": {"ref": "context.user"}}},
            ),
            "resource_sets.small_refunds.condition['resource.arg_owner'].equals.ref: "
            "unknown attribute 'context.user'",
            id="bad-ref",
        ),
        pytest.param(
            with_("resource_sets.small_refunds.condition", {"anyOf": {"resource.a": {}}}),
            "resource_sets.small_refunds.condition.anyOf: expected a list of conditions",
            id="malformed-anyOf",
        ),
        pytest.param(
            with_("user_sets", {"finance": {"condition": {"department": {"equals": "x"}}}}),
            "user_sets.finance.condition.department: unknown attribute 'department'",
            id="attribute-without-prefix",
        ),
        pytest.param(
            with_("user_sets", {"finance": {"grants": {}}}),
            "user_sets.finance.condition: Field required",
            id="user-set-without-condition",
        ),
        pytest.param(
            {**VALID, "rols": {}},
            "top level: unknown key 'rols' (known: resources, resource_sets, user_sets, "
            "roles, users, resource_instances, relationships)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            with_("users.bob.role", ["viewer"]),
            "users.bob: unknown key 'role' (known: roles, attributes, resource_roles)",
            id="unknown-nested-key",
        ),
        pytest.param(
            with_("users.bob.roles", "viewer"),
            "users.bob.roles: expected a list of role names, or a mapping tenant -> list",
            id="roles-of-wrong-shape",
        ),
        pytest.param(
            with_("resources.mcp_server.actions", "greet"),
            "resources.mcp_server.actions: Input should be a valid list",
            id="actions-not-a-list",
        ),
        pytest.param(
            with_("resources.mcp_server.actions", ["greet", "*"]),
            "resources.mcp_server.actions: '*' is not an action name",
            id="wildcard-as-action-name",
        ),
        pytest.param(
            with_("resource_sets.invoice", {"resource": "invoice", "condition": {"allOf": []}}),
            "resource_sets.invoice: a resource set cannot share its name with a resource type",
            id="set-named-like-a-type",
        ),
        pytest.param(
            ["resources"],
            "top level: expected a mapping with the sections",
            id="top-level-not-a-mapping",
        ),
    ],
)
def test_invalid_policy_names_the_location(data: Any, expected: str) -> None:
    """Each invalid policy raises PolicyFileError with a problem naming where it stands."""
    error = load_error(data)
    assert error.source == "<dict>"
    assert any(expected in problem for problem in error.problems), error.problems
    assert expected in str(error)


def test_all_problems_are_reported_at_once() -> None:
    """Every reference problem of a policy is listed in one PolicyFileError."""
    data = with_("roles.viewer.grants.mcp_server", ["gret"])
    data["users"]["bob"]["roles"] = ["viewr"]
    data["resource_sets"]["small_refunds"]["condition"] = {"resource.a": {"eq": 1}}
    problems = load_error(data).problems
    assert len(problems) == 3
    assert [p.split(":", 1)[0] for p in problems] == [
        "resource_sets.small_refunds.condition['resource.a']",
        "roles.viewer.grants.mcp_server",
        "users.bob.roles",
    ]


def test_policy_file_error_is_a_permit_guard_error() -> None:
    """PolicyFileError belongs to the library's exception tree and is a ValueError."""
    error = load_error({"rols": {}})
    assert isinstance(error, PermitGuardError)
    assert isinstance(error, ValueError)


def test_from_dict_names_its_source() -> None:
    """The source given to from_dict is how the error names the policy."""
    with pytest.raises(PolicyFileError, match=r"invalid policy settings\.policy:"):
        LocalPolicyEngine.from_dict({"rols": {}}, source="settings.policy")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param(
            "bad.yaml",
            "roles:\n  admin: {grants: [}\n",
            "YAML syntax error at line 2",
            id="yaml-syntax",
        ),
        pytest.param(
            "bad.json", '{"roles": {,}}', "JSON syntax error at line 1, column 12", id="json-syntax"
        ),
        pytest.param("list.yaml", "- alice\n- bob\n", "top level: expected a mapping", id="list"),
        pytest.param("scalar.json", '"policy"', "top level: expected a mapping", id="scalar"),
        pytest.param("empty.yaml", "# nothing yet\n", "the file is empty", id="empty"),
        pytest.param(
            "dup.yaml",
            "users:\n  bob: {roles: []}\n  bob: {roles: []}\n",
            "line 3: duplicate key 'bob'",
            id="yaml-duplicate-key",
        ),
        pytest.param(
            "dup.json", '{"users": {}, "users": {}}', "duplicate key 'users'", id="json-dup"
        ),
        pytest.param("policy.toml", "[roles]\n", "unsupported file extension '.toml'", id="toml"),
        pytest.param("policy", "roles: {}\n", "unsupported file extension '(none)'", id="none"),
        pytest.param(
            "typo.yaml", "resources: {}\nrols: {}\n", "top level: unknown key 'rols'", id="key"
        ),
    ],
)
def test_invalid_file_names_the_file(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    """Every problem with a policy file is a PolicyFileError naming the file."""
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PolicyFileError) as caught:
        LocalPolicyEngine.from_file(path)
    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"invalid policy {path}:")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    """A file that does not exist is a PolicyFileError naming it, not a raw OSError."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(PolicyFileError, match="policy file not found") as caught:
        LocalPolicyEngine.from_file(path)
    assert caught.value.source == str(path)
    assert isinstance(caught.value.__cause__, OSError)


def test_directory_is_not_a_policy_file(tmp_path: Path) -> None:
    """A directory where the file should be is a PolicyFileError."""
    path = tmp_path / "policy.yaml"
    path.mkdir()
    with pytest.raises(PolicyFileError, match="cannot read the file"):
        LocalPolicyEngine.from_file(path)


def test_non_utf8_file_is_a_policy_error(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a PolicyFileError."""
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"roles: {\xff: {}}\n")
    with pytest.raises(PolicyFileError, match="not UTF-8"):
        LocalPolicyEngine.from_file(path)


def test_file_with_byte_order_mark_loads(tmp_path: Path) -> None:
    """A UTF-8 byte-order mark at the start of a JSON file is ignored."""
    path = tmp_path / "policy.json"
    path.write_bytes(b"\xef\xbb\xbf" + BILLING_JSON.read_bytes())
    assert LocalPolicyEngine.from_file(path).decide(ask("alice", "refund")).allowed


def test_file_is_read_once(tmp_path: Path) -> None:
    """Changing the file after loading changes nothing: the engine is immutable."""
    path = tmp_path / "policy.yaml"
    path.write_text(BILLING_YAML.read_text())
    engine = LocalPolicyEngine.from_file(path)
    path.write_text("resources: {}\n")
    assert engine.decide(ask("alice", "refund")).allowed


def test_engine_does_not_share_the_callers_dict() -> None:
    """Mutating the dict given to from_dict afterwards does not change decisions."""
    data = yaml.safe_load(BILLING_YAML.read_text())
    engine = LocalPolicyEngine.from_dict(data)
    data["users"]["alice"]["roles"] = []
    data["users"]["bob"]["attributes"]["department"] = "sales"
    assert engine.decide(ask("alice", "refund")).allowed
    assert engine.decide(calling("bob", "refund", amount=20)).allowed


# -- the documentation -------------------------------------------------------------------------


def documented_engine() -> LocalPolicyEngine:
    """The example policy of docs/policy-file.md, plus the roles and sets the doc adds in prose."""
    text = DOC.read_text()
    example = re.search(r"```yaml\n(resources:.*?)```", text, re.DOTALL)
    assert example is not None
    data = yaml.safe_load(example.group(1))
    data["roles"]["refunder"] = {"grants": {"small_refunds": ["refund"]}}
    data["users"]["carol"] = {"roles": ["refunder"]}
    data["user_sets"]["support"] = {
        "condition": {"user.department": {"equals": "support"}},
        "grants": {"mcp_server": ["greet"]},
    }
    return LocalPolicyEngine.from_dict(data)


def test_documented_reasons_are_the_real_ones() -> None:
    """Every reason in the table of docs/policy-file.md is one the engine gives."""
    text = DOC.read_text()
    table = text[text.index("| role, on the type") : text.index("When several")]
    documented = re.findall(r"^\| [^|]+ \| `(.+)` \|$", table, re.MULTILINE)
    assert len(documented) == 10
    engine = documented_engine()
    derived = LocalPolicyEngine.from_dict(
        {
            "resources": workspace_owned_projects("delete"),
            "users": {"alice": {"resource_roles": {"workspace:w1": ["admin"]}}},
            "relationships": [
                {"subject": "workspace:w1", "relation": "parent", "object": "project:p1"}
            ],
        }
    )
    given = {
        engine.decide(request).reason
        for request in [
            ask("alice", "refund"),
            calling("carol", "refund", amount=50),
            ask("erin", "greet", user_attributes={"department": "support"}),
            calling("bob", "refund", amount=50),
            ask("bob", "delete", "invoice", key="42"),
            ask("bob", "refund"),
            ask("mallory", "greet"),
            ask("alice", "read", "payroll"),
            ask("alice", "launch-missiles"),
        ]
    }
    given.add(derived.decide(ask("alice", "delete", "project", key="p1")).reason)
    assert set(documented) == given


def test_documented_listing_table_holds() -> None:
    """The listing example of docs/policy-file.md decides as its table says."""
    engine = documented_engine()
    assert engine.decide(listing("carol", "refund")).allowed
    assert engine.decide(calling("carol", "refund", amount=50)).allowed
    assert not engine.decide(calling("carol", "refund", amount=500)).allowed
    assert not engine.decide(calling("carol", "refund")).allowed
