"""``permit-guard export --policy`` (everything a policy holds) and ``permit-guard policy import``.

The JSON is checked with the ``permit`` SDK's own models, the Terraform with an
HCL parser, and the round trip by deciding a table of requests on the policy
and on the policy imported back from its export.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from typer.testing import CliRunner

from permit_guard import LocalPolicyEngine
from permit_guard.cli import app
from permit_guard.cli.permit_io import ENDPOINTS, MODELS
from permit_guard.model import DEFAULT_TENANT, AuthzRequest, Principal, Resource
from tests.test_cli import ROOT, cli

with warnings.catch_warnings():
    # The SDK warns about its own deprecated imports when imported.
    warnings.simplefilter("ignore", DeprecationWarning)
    from permit.api import models as permit_models

QUICKSTART = ("examples/quickstart.py", "examples/policy.yaml")
SEED = ("tests/cli_servers/seed.py", "examples/seed_server/policy.yaml")
TRACKER = (None, "examples/project_tracker/policy.yaml")
CLI_TRACKER = ("tests/cli_servers/tracker.py", "tests/cli_servers/tracker.yaml")
EXAMPLES = [QUICKSTART, SEED, TRACKER, CLI_TRACKER]
IDS = ["quickstart", "seed", "project_tracker", "cli_tracker"]

#: The block type of each JSON list the Terraform has blocks for.
BLOCKS = {
    "tenants": "permitio_tenant",
    "resources": "permitio_resource",
    "user_attributes": "permitio_user_attribute",
    "resource_relations": "permitio_relation",
    "role_derivations": "permitio_role_derivation",
    "condition_set_rules": "permitio_condition_set_rule",
    "resource_instances": "permitio_resource_instance",
}

_HCL = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)


def export(*args: str) -> str:
    """Run ``permit-guard export`` in process; it must succeed."""
    result = CliRunner().invoke(app, ["export", *args])
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


def export_args(example: tuple[str | None, str], fmt: str = "json") -> list[str]:
    """The export command line of an example: its server (if it has one) and its policy."""
    server, policy = example
    return [*([server] if server else []), "--policy", policy, "--format", fmt]


@pytest.fixture(scope="module")
def exported() -> dict[tuple[str | None, str], dict[str, Any]]:
    """Each example's JSON export."""
    return {example: json.loads(export(*export_args(example))) for example in EXAMPLES}


# -- the JSON, checked by the permit SDK's models --------------------------------------------------


def test_the_lists_are_permit_endpoints_in_creation_order(
    exported: dict[tuple[str | None, str], dict[str, Any]],
) -> None:
    """The export has description, endpoints, then one list per endpoint in creation order."""
    document = exported[QUICKSTART]
    assert list(document) == ["description", "endpoints", *(e.key for e in ENDPOINTS)]
    assert list(MODELS) == [e.key for e in ENDPOINTS]
    assert document["endpoints"]["role_assignments"] == {
        "method": "POST",
        "path": "/v2/facts/{proj_id}/{env_id}/role_assignments",
        "sdk": "permit.api.role_assignments.assign(body)",
        "model": "RoleAssignmentCreate",
    }
    # Instances come before the assignments on them, tuples last.
    keys = list(MODELS)
    assert keys.index("resource_instances") < keys.index("role_assignments") < len(keys) - 1


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_every_item_parses_as_its_permit_sdk_model(
    exported: dict[tuple[str | None, str], dict[str, Any]], example: tuple[str | None, str]
) -> None:
    """Each body parses as the SDK model of its endpoint and has no field the model lacks."""
    document = exported[example]
    for endpoint in ENDPOINTS:
        model = getattr(permit_models, MODELS[endpoint.key])
        for item in document[endpoint.key]:
            if endpoint.params:
                assert set(item) == {*endpoint.params, "body"}, (endpoint.key, item)
                body = item["body"]
            else:
                body = item
            model.parse_obj(body)
            assert set(body) <= set(model.__fields__), (endpoint.key, body)


def test_the_quickstart_policy_in_permit_terms(
    exported: dict[tuple[str | None, str], dict[str, Any]],
) -> None:
    """Roles, condition sets and rules, users and assignments of examples/policy.yaml."""
    document = exported[QUICKSTART]
    roles = {r["key"]: r["permissions"] for r in document["roles"]}
    assert roles["clerk"] == [
        "mcp_server:greet",
        "mcp_server_tools:list",
        "mcp_server_prompts:read",
        "mcp_server_prompts:list",
    ]
    assert "invoice:delete" in roles["admin"]  # "*" written out
    assert document["condition_sets"] == [
        {
            "key": "small_refunds",
            "name": "small_refunds",
            "type": "resourceset",
            "resource_id": "mcp_server",
            "conditions": {
                "allOf": [
                    {"resource.arg_amount": {"less-than-equals": 100}},
                    {"resource.arg_currency": {"equals": "EUR"}},
                ]
            },
        },
        {
            "key": "finance",
            "name": "finance",
            "type": "userset",
            # A bare comparison is wrapped: Permit's condition sets start with allOf/anyOf.
            "conditions": {"allOf": [{"user.department": {"equals": "finance"}}]},
        },
    ]
    assert document["condition_set_rules"] == [
        {"user_set": "finance", "permission": "mcp_server:refund", "resource_set": "small_refunds"}
    ]
    assert document["user_attributes"] == [{"key": "department", "type": "string"}]
    assert document["users"] == [
        {"key": "alice"},
        {"key": "bob", "attributes": {"department": "finance"}},
        {"key": "eve"},
    ]
    assert document["role_assignments"] == [
        {"user": "alice", "role": "admin", "tenant": "default"},
        {"user": "bob", "role": "clerk", "tenant": "default"},
        {"user": "bob", "role": "owner", "tenant": "default", "resource_instance": "invoice:42"},
    ]
    resources = {r["key"]: r for r in document["resources"]}
    # The server's attributes, merged with those the conditions use.
    assert resources["mcp_server"]["attributes"]["arg_amount"] == {"type": "number"}
    assert resources["mcp_server"]["attributes"]["tool_name"] == {"type": "string"}


def test_a_role_on_a_resource_set_is_a_rule_on_the_role(
    exported: dict[tuple[str | None, str], dict[str, Any]],
) -> None:
    """A role's grant on a resource set is a condition set rule with is_role."""
    rules = exported[SEED]["condition_set_rules"]
    assert rules == [
        {
            "user_set": role,
            "permission": "mcp_server:conditional-greet",
            "resource_set": "big_greets",
            "is_role": True,
        }
        for role in ("admin", "user")
    ]
    # The documented example policy says the same, rule for rule.
    documented = json.loads((ROOT / "docs/example_policies/permit-api.json").read_text())
    assert [r["body"] for r in documented["requests"] if r["path"].endswith("set_rules")] == rules


def test_the_tracker_facts_in_permit_terms(
    exported: dict[tuple[str | None, str], dict[str, Any]],
) -> None:
    """Tenants, instances, per-tenant and per-instance assignments, tuples and derivations."""
    document = exported[TRACKER]
    assert document["tenants"] == [
        {"key": "acme", "name": "acme"},
        {"key": "globex", "name": "globex"},
    ]
    assert document["resource_instances"][2] == {
        "key": "acme-1",
        "resource": "project",
        "tenant": "acme",
        "attributes": {"archived": False},
    }
    assert document["role_assignments"][:2] == [
        {"user": "alice", "role": "editor", "tenant": "acme"},
        {
            "user": "alice",
            "role": "admin",
            "tenant": "acme",
            "resource_instance": "workspace:acme-hq",
        },
    ]
    assert document["relationship_tuples"][0] == {
        "subject": "workspace:acme-hq",
        "relation": "parent",
        "object": "project:acme-1",
        "tenant": "acme",
    }
    assert document["role_derivations"] == [
        {
            "resource": "project",
            "role": "owner",
            "body": {"role": "admin", "on_resource": "workspace", "linked_by_relation": "parent"},
        }
    ]
    assert document["resource_relations"] == [
        {
            "resource": "project",
            "body": {"key": "parent", "name": "parent", "subject_resource": "workspace"},
        }
    ]
    # The instances' attribute and the conditions' priority, typed.
    project = next(r for r in document["resources"] if r["key"] == "project")
    assert project["attributes"] == {"archived": {"type": "bool"}, "priority": {"type": "number"}}


def test_condition_attributes_are_typed_from_their_operators(tmp_path: Path) -> None:
    """Without a server, conditions' attributes are declared, typed from operator and operand."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "resources": {"doc": {"actions": ["read"]}},
                "resource_sets": {
                    "mine": {
                        "resource": "doc",
                        "condition": {
                            "allOf": [
                                {"resource.owner": {"equals": {"ref": "user.key"}}},
                                {"resource.size": {"less-than": 10}},
                                {"resource.tags": {"array_contains": "x"}},
                                {"resource.title": {"contains": "a"}},
                                {"resource.flag": {"equals": True}},
                                {"resource.either": {"equals": 1}},
                                {"resource.either": {"equals": "one"}},
                                {"resource.peer": {"equals": {"ref": "user.level"}}},
                                {"resource.key": {"equals": "k"}},
                            ]
                        },
                    }
                },
                "roles": {"reader": {"grants": {"mine": ["read"]}}},
            }
        )
    )
    document = json.loads(export("--policy", str(policy)))
    assert document["resources"][0]["attributes"] == {
        "either": {"type": "json"},  # typed two ways
        "flag": {"type": "bool"},
        "owner": {"type": "string"},  # compared with the user key
        "peer": {"type": "json"},  # compared with an attribute of no known type
        "size": {"type": "number"},
        "tags": {"type": "array"},
        "title": {"type": "string"},
    }
    assert document["user_attributes"] == [{"key": "level", "type": "json"}]


# -- the Terraform, checked by an HCL parser -------------------------------------------------------


def blocks(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Block type -> label -> attributes, as python-hcl2 reads the text."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in hcl2.loads(text, serialization_options=_HCL)["resource"]:
        for kind, labelled in entry.items():
            for label, body in labelled.items():
                assert label not in found.setdefault(kind, {}), (kind, label)
                found[kind][label] = body
    return found


def jsonencoded(expression: str) -> Any:
    """The value of a ``${jsonencode(...)}`` expression."""
    inner = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", expression, flags=re.DOTALL)
    assert inner is not None, expression
    return hcl2.loads(f"x = {inner.group(1)}", serialization_options=_HCL)["x"]


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_terraform_parses_and_holds_what_the_json_holds(
    exported: dict[tuple[str | None, str], dict[str, Any]], example: tuple[str | None, str]
) -> None:
    """One block per JSON item the provider has a resource for; references name real blocks."""
    text = export(*export_args(example, "terraform"))
    document = exported[example]
    found = blocks(text)
    for key, kind in BLOCKS.items():
        assert len(found.get(kind, {})) == len(document[key]), kind
    assert len(found.get("permitio_role", {})) == len(document["roles"]) + len(
        document["resource_roles"]
    )
    kinds = [s["type"] for s in document["condition_sets"]]
    assert len(found.get("permitio_resource_set", {})) == kinds.count("resourceset")
    assert len(found.get("permitio_user_set", {})) == kinds.count("userset")
    assignments = len(found.get("permitio_role_assignment", {})) + len(
        found.get("permitio_resource_instance_role_assignment", {})
    )
    assert assignments == len(document["role_assignments"])
    defined = {f"{kind}.{label}" for kind, labels in found.items() for label in labels}
    assert set(re.findall(r"\b(permitio_\w+\.[\w-]+)\.key\b", text)) <= defined
    # The gaps are said, and the users and tuples listed in comments.
    assert "no resource for users or relationship tuples" in text
    for user in document["users"]:
        assert re.search(rf"^#   .*\b{re.escape(user['key'])}\b", text, flags=re.MULTILINE)
    for t in document["relationship_tuples"]:
        assert f"#   {t['subject']} {t['relation']} {t['object']}\n" in text
    # Conditions and attributes are the JSON's, through jsonencode.
    sets = {**found.get("permitio_resource_set", {}), **found.get("permitio_user_set", {})}
    for condition_set in document["condition_sets"]:
        body = sets[condition_set["key"]]
        assert jsonencoded(body["conditions"]) == condition_set["conditions"]
    for instance in document["resource_instances"]:
        body = found["permitio_resource_instance"][f"{instance['resource']}__{instance['key']}"]
        assert body["key"] == instance["key"]
        if "attributes" in instance:
            assert jsonencoded(body["attributes"]) == instance["attributes"]


def test_terraform_rules_name_the_autogenerated_sets() -> None:
    """A role's rule names the role's user set, a user set's rule on a type the type's set."""
    found = blocks(export(*export_args(SEED, "terraform")))
    rule = found["permitio_condition_set_rule"]["admin_big_greets_mcp_server_conditional-greet"]
    assert rule == {
        "user_set": "__autogen_${permitio_role.admin.key}",
        "permission": "mcp_server:conditional-greet",
        "resource_set": "${permitio_resource_set.big_greets.key}",
    }
    assert found["permitio_role"]["admin"]["permissions"] == [
        "mcp_server:greet",
        "mcp_server:greet-jwt",
        "mcp_server_tools:list",
    ]


def test_terraform_of_the_tracker_assigns_roles_per_tenant_and_instance() -> None:
    """Tenants, instances and both kinds of role assignment are blocks that refer to each other."""
    found = blocks(export(*export_args(TRACKER, "terraform")))
    assert set(found["permitio_tenant"]) == {"acme", "globex"}
    assert found["permitio_resource_instance_role_assignment"][
        "alice__admin__workspace__acme-hq"
    ] == {
        "user": "alice",
        "role": "${permitio_role.workspace__admin.key}",
        "resource": "${permitio_resource.workspace.key}",
        "resource_instance": "${permitio_resource_instance.workspace__acme-hq.key}",
        "tenant": "${permitio_tenant.acme.key}",
    }
    assert found["permitio_role_assignment"]["carol__editor__globex"] == {
        "user": "carol",
        "role": "${permitio_role.editor.key}",
        "tenant": "${permitio_tenant.globex.key}",
    }


def test_a_user_set_on_a_whole_type_is_a_rule_on_the_types_set(tmp_path: Path) -> None:
    """A user set's grant on a resource type: is_resource in JSON, __autogen_<type> in Terraform."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "resources: {doc: {actions: [read, write]}}\n"
        "user_sets: {staff: {condition: {user.staff: {equals: true}}, grants: {doc: ['*']}}}\n"
    )
    rules = json.loads(export("--policy", str(policy)))["condition_set_rules"]
    assert rules == [
        {"user_set": "staff", "permission": f"doc:{a}", "resource_set": "doc", "is_resource": True}
        for a in ("read", "write")
    ]
    found = blocks(export("--policy", str(policy), "--format", "terraform"))
    assert found["permitio_condition_set_rule"]["staff_doc_doc_read"]["resource_set"] == (
        "__autogen_${permitio_resource.doc.key}"
    )


# -- the round trip: export, import, same decisions ------------------------------------------------


def _literals(condition: Any) -> Iterator[tuple[str, Any]]:
    """``(attribute, literal)`` of each comparison with a literal operand."""
    if isinstance(condition, Mapping):
        for key, value in condition.items():
            if key in ("allOf", "anyOf"):
                for part in value:
                    yield from _literals(part)
            elif key == "not":
                yield from _literals(value)
            else:
                for operand in value.values():
                    if not (isinstance(operand, Mapping) and "ref" in operand):
                        yield key, operand


def _variants(value: Any) -> list[Any]:
    """The literal and values next to it: on both sides of a bound, equal and not."""
    if isinstance(value, bool):
        return [value, not value]
    if isinstance(value, int | float):
        return [value, value + 1, value - 1]
    if isinstance(value, str):
        return [value, value + "x"]
    return [value]


def requests(policy: Mapping[str, Any]) -> list[AuthzRequest]:
    """Every user (and a stranger) x type x action x instance key x tenant x attribute values."""
    conditions = [s["condition"] for s in policy.get("resource_sets", {}).values()]
    conditions += [s["condition"] for s in policy.get("user_sets", {}).values()]
    found = [pair for c in conditions for pair in _literals(c)]
    user_values = [{}] + [
        {name.removeprefix("user."): v}
        for name, literal in found
        if name.startswith("user.")
        for v in _variants(literal)
    ]
    resource_values: list[dict[str, Any]] = [{}, {"mcp_method": "tools/list"}]
    resource_values += [
        {name.removeprefix("resource."): v}
        for name, literal in found
        if name.startswith("resource.")
        for v in _variants(literal)
    ]
    resource_values.append(
        {n.removeprefix("resource."): v for n, v in found if n.startswith("resource.")}
    )
    users = policy.get("users", {})
    tenants = [DEFAULT_TENANT, "elsewhere"]
    tenants += [t for u in users.values() if isinstance(u.get("roles"), dict) for t in u["roles"]]
    tenants += [
        i.get("tenant", DEFAULT_TENANT) for i in policy.get("resource_instances", {}).values()
    ]
    named = list(policy.get("resource_instances", {}))
    named += [i for u in users.values() for i in u.get("resource_roles", {})]
    named += [end for r in policy.get("relationships", []) for end in (r["subject"], r["object"])]
    made = []
    types = {**policy["resources"], "unknown_type": {"actions": []}}
    for type_name, resource in types.items():
        keys = [None, "zz"] + [n.partition(":")[2] for n in named if n.startswith(f"{type_name}:")]
        for user, user_attributes, action, key, tenant, attributes in itertools.product(
            [*users, "stranger"],
            user_values,
            [*resource["actions"], "nope"],
            dict.fromkeys(keys),
            dict.fromkeys(tenants),
            resource_values,
        ):
            made.append(
                AuthzRequest(
                    user=Principal(key=user, attributes=user_attributes),
                    action=action,
                    resource=Resource(
                        type=type_name, key=key, tenant=tenant, attributes=attributes
                    ),
                )
            )
    return made


def import_file(path: Path, *args: str) -> str:
    """Run ``permit-guard policy import`` in process; it must succeed."""
    result = CliRunner().invoke(app, ["policy", "import", str(path), *args])
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout


@pytest.mark.parametrize("example", [*EXAMPLES, (None, CLI_TRACKER[1])], ids=[*IDS, "no_server"])
def test_an_exported_policy_imported_back_decides_the_same(
    tmp_path: Path, example: tuple[str | None, str]
) -> None:
    """Original and export-then-import agree on allowed for every request of the table."""
    exported_file = tmp_path / "export.json"
    exported_file.write_text(export(*export_args(example)))
    imported = tmp_path / "imported.yaml"
    imported.write_text(import_file(exported_file))
    original_policy = yaml.safe_load((ROOT / example[1]).read_text())
    original = LocalPolicyEngine.from_file(ROOT / example[1])
    again = LocalPolicyEngine.from_file(imported)
    table = requests(original_policy)
    assert 500 < len(table) < 200_000
    differ = [r for r in table if original.decide(r).allowed != again.decide(r).allowed]
    assert differ == []
    assert any(original.decide(r).allowed for r in table)
    assert not all(original.decide(r).allowed for r in table)


def test_the_imported_yaml_reads_like_the_example(tmp_path: Path) -> None:
    """The import is YAML in the examples' form: short role lists, flow-style leaves."""
    exported_file = tmp_path / "export.json"
    exported_file.write_text(export("--policy", QUICKSTART[1]))
    text = import_file(exported_file)
    assert text.startswith(f"# Imported from {exported_file} by permit-guard policy import.\n")
    imported = yaml.safe_load(text)
    original = yaml.safe_load((ROOT / QUICKSTART[1]).read_text())
    assert imported["users"] == original["users"]
    assert imported["resources"] == original["resources"]
    assert imported["resource_sets"] == original["resource_sets"]
    assert imported["user_sets"]["finance"]["grants"] == {"small_refunds": ["refund"]}
    assert "    actions: [greet, refund, delete-invoice, debug-dump]\n" in text


def test_import_writes_the_output_file(tmp_path: Path) -> None:
    """--output writes the policy there (JSON for .json) and prints a summary."""
    exported_file = tmp_path / "export.json"
    exported_file.write_text(export("--policy", TRACKER[1]))
    out = tmp_path / "policy.json"
    summary = import_file(exported_file, "--output", str(out))
    assert summary == (
        f"{out}: 2 resource types, 2 resource sets, 0 user sets, 2 roles, 4 users, 1 relation, "
        "1 derivation, 4 resource instances, 2 relationship tuples\n"
    )
    LocalPolicyEngine.from_file(out)


# -- errors ----------------------------------------------------------------------------------------


def write_export(tmp_path: Path, **lists: Any) -> Path:
    """An export file with these lists."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(lists))
    return path


RESOURCES = [{"key": "doc", "name": "doc", "actions": {"read": {"name": "read"}}}]


@pytest.mark.parametrize(
    ("lists", "problem"),
    [
        (
            {"resources": RESOURCES, "roles": [{"key": "reader", "permissions": ["doc:raed"]}]},
            "roles[0].permissions[0]: unknown action 'raed' of 'doc' (did you mean 'read'?",
        ),
        (
            {
                "resources": RESOURCES,
                "roles": [{"key": "admin", "name": "admin"}],
                "users": [{"key": "bob"}],
                "role_assignments": [{"user": "bob", "role": "admn", "tenant": "default"}],
            },
            "role_assignments[0].role: unknown role 'admn' (did you mean 'admin'?",
        ),
        (
            {
                "resources": RESOURCES,
                "roles": [{"key": "admin"}],
                "role_assignments": [{"user": "zed", "role": "admin"}],
            },
            "role_assignments[0].user: unknown user 'zed' (known: none)",
        ),
        (
            {
                "resources": RESOURCES,
                "condition_set_rules": [
                    {"user_set": "staff", "permission": "doc:read", "resource_set": "doc"}
                ],
            },
            "condition_set_rules[0].user_set: unknown user set 'staff' (known: none)",
        ),
        (
            {
                "resources": RESOURCES,
                "roles": [{"key": "admin", "extends": ["viewer"]}],
            },
            "roles[0].extends: unknown field: permit-guard policy import cannot read it",
        ),
        ({"roles": [{"name": "admin"}]}, "roles[0].key: Field required"),
        ({"users": {"bob": {}}}, "users: Input should be a valid list"),
        (
            {
                "resources": RESOURCES,
                "resource_instances": [{"key": "1", "resource": "doc", "tenant": "acme"}],
            },
            "resource_instances[0].tenant: unknown tenant 'acme' (known: default)",
        ),
    ],
    ids=["action", "role", "user", "user-set", "extends", "missing", "not-a-list", "tenant"],
)
def test_invalid_imports_exit_2_naming_the_item(
    tmp_path: Path, lists: dict[str, Any], problem: str
) -> None:
    """A reference to something undeclared, or a wrong shape, exits 2 and names the item."""
    path = write_export(tmp_path, **lists)
    result = CliRunner().invoke(app, ["policy", "import", str(path)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"Error: cannot import {path}:\n  - ")
    assert problem in result.stderr


def test_import_of_a_file_that_is_not_json_exits_2(tmp_path: Path) -> None:
    """Not JSON, or not a JSON object, or not a .json file: exit 2, said with line and column."""
    broken = tmp_path / "export.json"
    broken.write_text('{"roles": [}')
    result = CliRunner().invoke(app, ["policy", "import", str(broken)])
    assert result.exit_code == 2
    assert "JSON syntax error at line 1, column 12" in result.stderr
    listed = write_export(tmp_path)
    listed.write_text("[]")
    result = CliRunner().invoke(app, ["policy", "import", str(listed)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert "top level: expected a JSON object, not list" in result.stderr
    result = CliRunner().invoke(app, ["policy", "import", "examples/policy.yaml"])
    assert result.exit_code == 2
    assert "expected the .json file permit-guard export writes" in result.stderr


def test_export_refuses_keys_permit_would_refuse(tmp_path: Path) -> None:
    """Keys Permit.io refuses (a URI, a space, two sets named alike): exit 2, each one named."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "resources: {doc: {actions: [read], roles: {owner: [read]}}}\n"
        "resource_sets: {staff: {resource: doc, condition: {resource.x: {equals: 1}}}}\n"
        "user_sets: {staff: {condition: {user.x: {equals: 1}}}}\n"
        "users: {'bob smith': {resource_roles: {'doc:file:///a.txt': [owner]}}}\n"
    )
    result = CliRunner().invoke(app, ["export", "--policy", str(policy)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "Error: cannot export to Permit.io:\n"
        "  - user set 'staff': Permit.io keeps resource sets and user sets in one namespace, and "
        "a resource set has this name: rename one of them\n"
        "  - user 'bob smith': Permit.io user keys hold only letters, digits and | @ + - . _\n"
        "  - resource instance 'doc:file:///a.txt': its key 'file:///a.txt' is not one: "
        "Permit.io keys hold only letters, digits, '-' and '_'\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Error: give SERVER, --policy FILE, or both\n"),
        (
            ("--policy", QUICKSTART[1], "--server-name", "x"),
            "Error: --server-name and --default-deny go with SERVER\n",
        ),
        (("--policy", QUICKSTART[1], "--format", "yaml"), "Error: --format must be json or "),
    ],
)
def test_export_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    """No SERVER and no --policy, a server option without SERVER, a bad --format: exit 2."""
    result = CliRunner().invoke(app, ["export", *args])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(message)


# -- through the console script --------------------------------------------------------------------


def test_export_and_import_through_the_console_script(tmp_path: Path) -> None:
    """The installed script exports a policy with its server and imports the JSON back."""
    run = cli("export", *export_args(QUICKSTART), script=True)
    assert (run.code, run.err) == (0, "")
    path = tmp_path / "export.json"
    path.write_text(run.out)
    imported = cli("policy", "import", str(path), script=True)
    assert (imported.code, imported.err) == (0, "")
    assert yaml.safe_load(imported.out)["users"]["bob"]["resource_roles"] == {
        "invoice:42": ["owner"]
    }


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (("export",), "Usage: permit-guard export [OPTIONS] [SERVER]"),
        (("policy", "import"), "Read a JSON export back into a local policy file"),
        (("policy",), "import"),
    ],
)
def test_help_shows_the_new_command_and_the_optional_server(
    command: tuple[str, ...], shown: str
) -> None:
    """--help shows SERVER as optional and documents policy import (in process)."""
    result = CliRunner().invoke(app, [*command, "--help"], prog_name="permit-guard")
    assert result.exit_code == 0
    assert shown in " ".join(result.output.split())


def test_import_reads_permits_autogenerated_sets(tmp_path: Path) -> None:
    """Rules as Permit.io lists them (__autogen_<role>, __autogen_<type>) import as grants."""
    path = write_export(
        tmp_path,
        resources=[
            {"key": "doc", "name": "doc", "actions": {"read": {}, "write": {}}},
        ],
        roles=[{"key": "admin", "name": "admin"}],
        condition_sets=[
            {"key": "staff", "name": "Staff", "type": "userset", "conditions": {"allOf": []}},
            {
                "key": "drafts",
                "name": "Drafts",
                "type": "resourceset",
                "resource_id": "doc",
                "conditions": {"allOf": [{"resource.draft": {"equals": True}}]},
            },
        ],
        condition_set_rules=[
            {"user_set": "__autogen_admin", "permission": "doc:write", "resource_set": "drafts"},
            {"user_set": "staff", "permission": "doc:read", "resource_set": "__autogen_doc"},
        ],
        users=[{"key": "ann", "email": "ann@example.com"}],
        role_assignments=[{"user": "ann", "role": "admin"}],
    )
    policy = yaml.safe_load(import_file(path))
    assert policy["roles"] == {"admin": {"grants": {"drafts": ["write"]}}}
    assert policy["user_sets"]["staff"]["grants"] == {"doc": ["read"]}
    assert policy["users"] == {
        "ann": {"roles": ["admin"], "attributes": {"email": "ann@example.com"}}
    }


def test_an_import_whose_policy_would_not_load_exits_2(tmp_path: Path) -> None:
    """A condition the engine refuses is reported as the imported policy's problem, exit 2."""
    path = write_export(
        tmp_path,
        resources=RESOURCES,
        condition_sets=[
            {
                "key": "s",
                "name": "s",
                "type": "resourceset",
                "resource_id": "doc",
                "conditions": {"resource.n": {"less-then": 3}},
            }
        ],
    )
    result = CliRunner().invoke(app, ["policy", "import", str(path)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"Error: the policy imported from {path} does not load:\n")
    assert "resource_sets.s.condition['resource.n']: unknown operator 'less-then'" in result.stderr
